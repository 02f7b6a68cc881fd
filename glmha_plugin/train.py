"""``glmha-train`` / ``python -m glmha_plugin.train -opt X [--auto_resume] [--launcher pytorch]``.

A thin wrapper: import the plugin (registrations + compat), then run basicsr's
unmodified ``train_pipeline`` with the working directory as root, so
experiments/ and tb_logger/ land where the command is run.  The import hook
sends ``python -m basicsr.train`` here too.

``GLMHA_DETERMINISTIC=1`` asks for deterministic kernels (for CUDA runs; CPU
training is already bitwise repeatable for a fixed seed): see
:func:`request_deterministic_kernels`.
"""
import os

from . import cli, compat

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


def _train(argv, root):
    from basicsr.train import train_pipeline
    cli.effective_options(argv, is_train=True)  # fail fast, before basicsr creates any folder
    if os.environ.get(DETERMINISTIC_ENV, '0').strip().lower() in ('1', 'true', 'yes'):
        request_deterministic_kernels()
    with cli.argv_as(argv):
        train_pipeline(root)


def main(argv=None, redirected_from=None):
    """Entry point. ``redirected_from`` is set when reached through ``python -m basicsr.train``."""
    root = compat.output_root(compat.basicsr_main_root()) if redirected_from else compat.output_root()
    return cli.run(lambda a: _train(a, root), argv)


if __name__ == '__main__':
    main()
