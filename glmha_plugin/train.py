"""``glmha-train`` / ``python -m glmha_plugin.train -opt X [--auto_resume] [--launcher pytorch]``.

A thin wrapper: import the plugin (registrations + compat), then run basicsr's
unmodified ``train_pipeline`` with the working directory as root, so
experiments/ and tb_logger/ land where the command is run.  The import hook
sends ``python -m basicsr.train`` here too.
"""
import glmha_plugin_autoload

from . import cli, compat


def _train(argv, root):
    from basicsr.train import train_pipeline
    cli.effective_options(argv, is_train=True)  # fail fast, before basicsr creates any folder
    with cli.argv_as(argv):
        train_pipeline(root)


def main(argv=None, redirected_from=None):
    """Entry point. ``redirected_from`` is set when reached through ``python -m basicsr.train``."""
    root = compat.output_root()
    if redirected_from:
        glmha_plugin_autoload.restore_redirected_spec(redirected_from)
        root = compat.output_root(compat.basicsr_main_root())
    return cli.run(lambda a: _train(a, root), argv)


if __name__ == '__main__':
    main()
