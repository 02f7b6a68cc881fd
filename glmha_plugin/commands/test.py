"""``glmha-test`` / ``python -m glmha_plugin.commands.test -opt X``.

Runs basicsr's unmodified ``test_pipeline`` with the working directory as
root (results/ lands where the command is run), after checking that the
option file names trained weights: upstream silently evaluates a randomly
initialised network when ``path.pretrain_network_g`` is missing.
"""
import os

from ..errors import UsageError
from ..glue import compat, outputs
from ..glue.preflight import apply_overrides, check_options
from . import cli


def check_weights(opt):
    """Raise UsageError unless ``path.pretrain_network_g`` is set."""
    if not (opt.get('path') or {}).get('pretrain_network_g'):
        raise UsageError('refusing to test without trained weights: set path.pretrain_network_g in the option '
                         'file (or --force_yml path:pretrain_network_g=PATH); without it basicsr would '
                         'evaluate a randomly initialised network')


def _test(argv, root):
    from basicsr.test import test_pipeline
    if cli.asks_for_help(argv):   # basicsr's parser prints -opt, --launcher, ... and exits
        with cli.argv_as(argv):
            test_pipeline(root)
        return
    argv = cli.resolve_option_file(argv)
    opt_path, overrides = cli.option_file_from_argv(argv)
    opt = apply_overrides(cli.load_options(opt_path), overrides)
    check_weights(opt)
    check_options(opt, is_train=False, launcher=cli.launcher_from_argv(argv))
    results = os.path.join(root, 'results')
    outputs.check_output_folder(results, what='results')
    with outputs.run_lock(results, cli.run_name(opt, argv), 'test run'), cli.argv_as(argv):
        test_pipeline(root)


def main(argv=None, redirected_from=None):
    """Entry point. ``redirected_from`` is set when reached through ``python -m basicsr.test``."""
    root = compat.output_root(compat.basicsr_main_root()) if redirected_from else compat.output_root()
    return cli.run(lambda a: _test(a, root), argv)


if __name__ == '__main__':
    main()
