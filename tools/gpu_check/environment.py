"""Step ``environment``: the machine and the versions the check ran with.

Passes when the plugin imports with basicsr and its registrations are there;
``partial`` without CUDA (every later CUDA part then runs on CPU or not at all).
"""
import platform
import sys
from importlib import metadata

from . import FAIL, PARTIAL, PASS, StepResult, step_main, step_parser

PACKAGES = ('torch', 'torchvision', 'basicsr', 'mmengine', 'glmha-plugin', 'numpy', 'timm', 'opencv-python-headless',
            'opencv-python', 'scikit-image', 'lmdb', 'hdf5storage', 'addict', 'yapf')


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return '-'


def device_facts() -> dict:
    """What the report says about the accelerator (empty values without CUDA)."""
    import torch
    facts = {'cuda available': torch.cuda.is_available(), 'torch CUDA': torch.version.cuda or '-',
             'cuDNN': torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else '-',
             'matmul TF32 allowed (default)': torch.backends.cuda.matmul.allow_tf32,
             'cuDNN TF32 allowed (default)': torch.backends.cudnn.allow_tf32}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update({'GPU': torch.cuda.get_device_name(0), 'GPUs visible': torch.cuda.device_count(),
                      'compute capability': f'{props.major}.{props.minor}',
                      'memory GiB': round(props.total_memory / 2 ** 30, 1),
                      'multiprocessors': props.multi_processor_count,
                      'bf16 supported': torch.cuda.is_bf16_supported(), 'NCCL': _nccl_version()})
    return facts


def _nccl_version() -> str:
    try:
        import torch.cuda.nccl as nccl
        version = nccl.version()
    except Exception as exc:  # noqa: BLE001  a fact for the report, not a reason to fail the step
        return f'unknown ({type(exc).__name__})'
    return '.'.join(map(str, version)) if isinstance(version, tuple) else str(version)


def run(args) -> StepResult:
    import torch
    from basicsr.utils.registry import ARCH_REGISTRY

    import glmha_plugin
    from glmha_plugin.glue import compat
    facts = {'python': sys.version.split()[0], 'platform': platform.platform(), 'CPU threads (torch)':
             torch.get_num_threads(), 'plugin file': glmha_plugin.__file__}
    facts.update(device_facts())
    rows = [f'| {k} | {v} |' for k, v in facts.items()]
    rows += [f'| {d} | {_version(d)} |' for d in PACKAGES if _version(d) != '-']
    rows += [f'| compat adaptations applied | {", ".join(sorted(compat.APPLIED))} |']
    md = '| what | value |\n|---|---|\n' + '\n'.join(rows) + '\n'
    if 'GLMHARestormer' not in ARCH_REGISTRY:
        return StepResult(FAIL, "basicsr's ARCH_REGISTRY lacks GLMHARestormer after import glmha_plugin", md)
    where = f'{facts["GPU"]}, CUDA {facts["torch CUDA"]}' if facts['cuda available'] else 'no CUDA device'
    summary = f'torch {torch.__version__}, {where}, Python {facts["python"]}'
    return StepResult(PASS if facts['cuda available'] else PARTIAL,
                      summary if facts['cuda available'] else summary + ': the CUDA parts run on CPU or not at all', md)


if __name__ == '__main__':
    sys.exit(step_main(run, step_parser(__doc__.split('\n\n')[0])))
