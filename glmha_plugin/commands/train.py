"""``glmha-train`` / ``python -m glmha_plugin.commands.train -opt X [--auto_resume] [--launcher pytorch]``.

A thin wrapper: import the plugin (registrations + compat), then run basicsr's
unmodified ``train_pipeline`` with the working directory as root, so
experiments/ and tb_logger/ land where the command is run.  The import hook
sends ``python -m basicsr.train`` here too.

An option file that names a wandb project (``logger.wandb.project``, as
Retinexformer's do) while wandb is not installed trains without wandb, with a
note, instead of failing in basicsr's ``init_wandb_logger``: Retinexformer's
fork never starts wandb, so that is how its option files ran upstream.

Before basicsr runs: the option file is checked (:mod:`glmha_plugin.glue.preflight`), the
output folder must take files and hold a checkpoint, and no other run of the
same name may be running (:mod:`glmha_plugin.glue.outputs`).

``GLMHA_DETERMINISTIC=1`` asks for deterministic kernels (for CUDA runs; CPU
training is already bitwise repeatable for a fixed seed): see
:func:`request_deterministic_kernels`.
"""
import os

from ..glue import compat, outputs
from . import cli

DETERMINISTIC_ENV = 'GLMHA_DETERMINISTIC'


def request_deterministic_kernels():
    """``torch.use_deterministic_algorithms(True)``, cuDNN deterministic, cuBLAS workspace config.

    An op without a deterministic implementation then raises instead of
    silently varying.  basicsr's ``train_pipeline`` still switches
    ``cudnn.benchmark`` on, so cuDNN autotunes among deterministic kernels.
    """
    import torch
    os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic = True
    print(f'{DETERMINISTIC_ENV}=1: deterministic algorithms requested', flush=True)


def without_missing_wandb(opt, argv):
    """``argv`` plus ``--force_yml logger:wandb:project=~`` when ``opt`` names a wandb project but wandb is missing."""
    import importlib.util
    project = ((opt.get('logger') or {}).get('wandb') or {}).get('project')
    if project is None or importlib.util.find_spec('wandb') is not None:
        return list(argv)
    print(f'note: logger.wandb.project is {project!r} but wandb is not installed: training without wandb (as '
          f"Retinexformer's fork, which never starts it); pip install wandb to log there", flush=True)
    _, overrides = cli.option_file_from_argv(argv)   # a second --force_yml replaces the first: repeat them
    return list(argv) + ['--force_yml', *overrides, 'logger:wandb:project=~']


def _train(argv, root):
    from basicsr.train import train_pipeline
    if cli.asks_for_help(argv):   # basicsr's parser prints -opt, --launcher, ... and exits
        with cli.argv_as(argv):
            train_pipeline(root)
        return
    argv = cli.resolve_option_file(argv)
    opt, net = cli.checked_options(argv, is_train=True)  # fail fast, before basicsr creates any folder
    argv = without_missing_wandb(opt, argv)
    experiments = os.path.join(root, 'experiments')
    outputs.check_output_folder(experiments, cli.checkpoint_bytes(net), 'experiments')
    if os.environ.get(DETERMINISTIC_ENV, '0').strip().lower() in ('1', 'true', 'yes'):
        request_deterministic_kernels()
    with outputs.run_lock(experiments, cli.run_name(opt, argv)), cli.argv_as(argv):
        train_pipeline(root)


def main(argv=None, redirected_from=None):
    """Entry point. ``redirected_from`` is set when reached through ``python -m basicsr.train``."""
    root = compat.output_root(compat.basicsr_main_root()) if redirected_from else compat.output_root()
    return cli.run(lambda a: _train(a, root), argv)


if __name__ == '__main__':
    main()
