"""Runtime adaptations of basicsr 1.4.2 (and torchvision / CPU-only machines).

Nothing of basicsr's is edited on disk.  Each adaptation below names the
symptom it removes, is guarded so that it only applies where the upstream
behaviour is the broken one, and is recorded in :data:`APPLIED`.  The
original functions stay in :data:`ORIGINALS` so tests can show the symptom.

| adaptation          | symptom without it                                                     |
|---------------------|------------------------------------------------------------------------|
| torchvision alias   | ``import basicsr``: No module named 'torchvision.transforms.functional_tensor' |
| cpu_safe_resume     | ``--auto_resume`` / ``path.resume_state`` on CPU: Found no NVIDIA driver |
| dist_init_cpu       | ``torchrun ... --launcher pytorch`` on CPU: ZeroDivisionError           |
| dist_init_slurm_cpu | ``srun ... --launcher slurm`` on CPU: ZeroDivisionError                 |
| ddp_cpu             | DDP on CPU: Found no NVIDIA driver in ``model_to_device``               |
| output root         | ``python -m basicsr.train`` writes experiments/ into site-packages      |
| registry_errors     | unknown ``type`` names: bare KeyError without the valid names           |
| accum_loader        | ``train.accum_iter: N``: the loader delivers ``batch_size_per_gpu``, not N x it, per iteration |

The output-root adaptation lives in :func:`output_root`, used by the entry
points (``glmha_plugin.commands.train`` / ``glmha_plugin.commands.test``), to which the import
hook redirects ``python -m basicsr.train`` / ``basicsr.test``.
"""
import inspect
import os
import os.path as osp
import sysconfig

import glmha_plugin_common

from ..errors import unknown_name_message

# Must precede the first import of basicsr (its degradations module imports
# torchvision.transforms.functional_tensor, removed in torchvision 0.17).
glmha_plugin_common.install_torchvision_alias()

import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402

APPLIED = {}
ORIGINALS = {}


def _upstream_source(func) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        return ''


def _replace(owner, attr: str, replacement, marker: str, key: str, note: str, original_key: str = '') -> None:
    """Set ``owner.attr = replacement`` when the upstream function's source still contains ``marker`` (the
    broken behaviour), keeping the original in ORIGINALS[original_key or key] and recording ``note`` in
    APPLIED[key]."""
    orig = getattr(owner, attr)
    if orig is replacement or marker not in _upstream_source(orig):
        return  # already replaced, or an upstream without the symptom
    ORIGINALS[original_key or key] = orig
    setattr(owner, attr, replacement)
    APPLIED[key] = note


# --------------------------------------------------------------------------
# cpu_safe_resume


def resume_map_location(opt):
    """Where resume states go: the model's device (basicsr's rule: cuda unless num_gpu == 0)."""
    if opt.get('num_gpu', 0) != 0 and torch.cuda.is_available():
        return torch.device('cuda', torch.cuda.current_device())
    return torch.device('cpu')


def training_states(opt):
    """``<iter>.state`` files of this experiment, newest (highest iteration) first."""
    from basicsr.utils import scandir
    state_dir = opt['path'].get('training_states') or osp.join('experiments', opt['name'], 'training_states')
    if not osp.isdir(state_dir):
        return []
    iters = sorted((int(name[:-len('.state')])
                    for name in scandir(state_dir, suffix='.state', recursive=False, full_path=False)
                    if name[:-len('.state')].isdigit()), reverse=True)
    return [osp.join(state_dir, f'{it}.state') for it in iters]


def _read_state(path, opt):
    try:
        state = torch.load(path, map_location=resume_map_location(opt), weights_only=True)
    except Exception as exc:
        raise RuntimeError(f'cannot read resume state {path!r} ({type(exc).__name__}: {exc}); delete it to '
                           f'resume from the previous one') from exc
    if not isinstance(state, dict) or 'iter' not in state:
        raise RuntimeError(f'{path!r} is not a basicsr training state (no "iter" entry)')
    return state


def load_resume_state(opt):
    """Drop-in for ``basicsr.train.load_resume_state`` that works without a GPU.

    Upstream maps the state onto ``torch.cuda.current_device()`` even for
    ``num_gpu: 0``; here it goes to the model's device.  The state is read with
    ``weights_only=True`` (a training state is tensors, numbers and containers).
    With ``--auto_resume`` the experiment's own ``training_states`` folder is
    searched (upstream looks in ``./experiments`` relative to the working
    directory: the same folder when the root is the working directory), and a
    newest state that cannot be read (a crash while it was written) is skipped
    with a warning in favour of the previous one.
    """
    import logging
    from basicsr.utils import check_resume
    state = None
    if opt['auto_resume']:
        for path in training_states(opt):
            try:
                state = _read_state(path, opt)
            except RuntimeError as exc:
                # Not basicsr's get_root_logger(): called before train_pipeline sets the logger up (level, log
                # file), it would initialise it without them, and the run would log nothing below WARNING.
                logging.getLogger('basicsr').warning(f'{exc}; trying an earlier state')
                continue
            opt['path']['resume_state'] = path
            break
    else:
        path = opt['path'].get('resume_state')
        if path:
            if not osp.isfile(path):
                raise FileNotFoundError(f'resume state {path!r} does not exist: fix path.resume_state, or use '
                                        f'--auto_resume to pick the latest state of experiment {opt["name"]!r}')
            state = _read_state(path, opt)
    if state is not None:
        check_resume(opt, state['iter'])
    return state


def _patch_resume():
    import basicsr.train as bt
    _replace(bt, 'load_resume_state', load_resume_state, 'torch.cuda.current_device()', 'cpu_safe_resume',
             'basicsr.train.load_resume_state maps states to the model device')


# --------------------------------------------------------------------------
# dist_init_cpu


def _init_dist_pytorch(backend='nccl', **kwargs):
    """Upstream with GPUs; without GPUs a gloo process group (upstream: ZeroDivisionError)."""
    if torch.cuda.device_count() > 0:
        return ORIGINALS['dist_init_cpu.pytorch'](backend, **kwargs)
    dist.init_process_group(backend='gloo', **kwargs)


def slurm_environment(port=None) -> dict:
    """The variables basicsr's slurm init sets for this task: MASTER_ADDR/PORT, WORLD_SIZE, RANK, LOCAL_RANK.

    As upstream: the rank is ``SLURM_PROCID``, the world size ``SLURM_NTASKS``,
    the master the first host ``scontrol show hostname $SLURM_NODELIST``
    prints, the port ``port`` (``dist_params.port`` of the YAML), else
    ``MASTER_PORT``, else 29500.  ``LOCAL_RANK`` is ``SLURM_LOCALID`` (upstream:
    ``SLURM_PROCID`` modulo the GPUs, which it cannot compute without one).
    """
    import subprocess
    missing = [k for k in ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST') if k not in os.environ]
    if missing:
        raise RuntimeError(f'--launcher slurm: {", ".join(missing)} not set; start the command with srun inside a '
                           f'slurm allocation, or use torchrun ... --launcher pytorch')
    nodes = os.environ['SLURM_NODELIST']
    try:
        proc = subprocess.run(['scontrol', 'show', 'hostname', nodes], capture_output=True, text=True)
    except FileNotFoundError:
        raise RuntimeError('--launcher slurm: no scontrol command on PATH (needed to find the master host of '
                           f'SLURM_NODELIST={nodes!r}); run on a slurm node, or use torchrun ... --launcher pytorch') \
            from None
    hosts = proc.stdout.split()
    if proc.returncode != 0 or not hosts:
        raise RuntimeError(f'--launcher slurm: `scontrol show hostname {nodes}` failed (exit {proc.returncode}): '
                           f'{proc.stderr.strip() or "no host printed"}')
    return {'MASTER_ADDR': hosts[0],
            'MASTER_PORT': str(port) if port is not None else os.environ.get('MASTER_PORT', '29500'),
            'WORLD_SIZE': os.environ['SLURM_NTASKS'], 'RANK': os.environ['SLURM_PROCID'],
            'LOCAL_RANK': os.environ.get('SLURM_LOCALID', '0')}


def _init_dist_slurm(backend='nccl', port=None):
    """Upstream with GPUs; without GPUs the same environment set-up and a gloo group (upstream: ZeroDivisionError)."""
    if torch.cuda.device_count() > 0:
        return ORIGINALS['dist_init_cpu.slurm'](backend, port)
    os.environ.update(slurm_environment(port))
    dist.init_process_group(backend='gloo')


def _patch_dist_init():
    from basicsr.utils import dist_util
    for name, launcher, replacement, what in (
            ('dist_init_cpu', 'pytorch', _init_dist_pytorch, 'torchrun'),
            ('dist_init_slurm_cpu', 'slurm', _init_dist_slurm, 'slurm')):
        _replace(dist_util, f'_init_dist_{launcher}', replacement, 'torch.cuda.set_device', name,
                 f'{what} distributed init uses gloo when no GPU is present', original_key=f'dist_init_cpu.{launcher}')


# --------------------------------------------------------------------------
# ddp_cpu


def _model_to_device(self, net):
    """Upstream, except DDP on CPU is built without ``device_ids`` (upstream asks CUDA for them)."""
    if self.opt['dist'] and self.device.type == 'cpu':
        from torch.nn.parallel import DistributedDataParallel
        return DistributedDataParallel(
            net.to(self.device), find_unused_parameters=self.opt.get('find_unused_parameters', False))
    return ORIGINALS['ddp_cpu'](self, net)


def _patch_ddp():
    from basicsr.models.base_model import BaseModel
    _replace(BaseModel, 'model_to_device', _model_to_device, 'device_ids=[torch.cuda.current_device()]', 'ddp_cpu',
             'BaseModel.model_to_device builds DDP without device_ids on CPU')


# --------------------------------------------------------------------------
# registry_errors


class RegistryKeyError(KeyError):
    """KeyError whose message prints readably (KeyError quotes its message)."""

    def __str__(self):
        return str(self.args[0])


def _registry_get(self, name, suffix='basicsr'):
    """Upstream lookup (``name`` or ``name_suffix``) with a useful error; no stray print."""
    if name in self._obj_map:
        return self._obj_map[name]
    alt = f'{name}_{suffix}'
    if alt in self._obj_map:
        return self._obj_map[alt]
    raise RegistryKeyError(unknown_name_message(self._name, name, self._obj_map.keys()))


def _patch_registry():
    from basicsr.utils.registry import Registry
    _replace(Registry, 'get', _registry_get, "No object named '{name}' found", 'registry_errors',
             'registry lookups name the valid and the closest names')


# --------------------------------------------------------------------------
# accum_loader


def _create_train_val_dataloader(opt, logger):
    """Upstream, with the train loader built for ``accum_iter x batch_size_per_gpu`` samples per iteration.

    One iteration is one optimizer step on ``accum_iter`` micro-batches of
    ``batch_size_per_gpu`` (glmha_plugin.models.training), so the loader
    delivers them together; upstream's epoch count, computed from the same
    option, stays right.  The option itself is restored for the model.
    """
    from ..models.training import accum_iter
    n, train = accum_iter(opt), (opt.get('datasets') or {}).get('train')
    if n == 1 or train is None:
        return ORIGINALS['accum_loader'](opt, logger)
    micro = train['batch_size_per_gpu']
    train['batch_size_per_gpu'] = micro * n
    try:
        result = ORIGINALS['accum_loader'](opt, logger)
    finally:
        train['batch_size_per_gpu'] = micro
    logger.info(f'Gradient accumulation: one iteration = one optimizer step on train.accum_iter {n} micro-batches '
                f'of batch_size_per_gpu {micro}: the loader delivers {n * micro} samples per GPU per iteration (the '
                f'"Batch size per gpu" above); {n * micro * opt.get("world_size", 1)} per step in total')
    return result


def _patch_accum_loader():
    import basicsr.train as bt
    _replace(bt, 'create_train_val_dataloader', _create_train_val_dataloader, "dataset_opt['batch_size_per_gpu']",
             'accum_loader', 'the train loader delivers train.accum_iter x batch_size_per_gpu per iteration')


# --------------------------------------------------------------------------
# output root


def installed_site_dirs():
    paths = sysconfig.get_paths()
    return {osp.realpath(paths[k]) for k in ('purelib', 'platlib') if k in paths}


def output_root(upstream_root=None):
    """Root folder for experiments/, tb_logger/, results/.

    ``upstream_root`` is what basicsr's ``__main__`` would use (two levels
    above ``basicsr/train.py``).  That is right for a BasicSR source checkout
    but, for a pip-installed basicsr, it is site-packages: then (and when no
    upstream root is given) the current working directory is used.
    """
    if upstream_root is None or osp.realpath(upstream_root) in installed_site_dirs():
        return os.getcwd()
    return upstream_root


def basicsr_main_root():
    """The root basicsr's own ``__main__`` computes: two levels above ``basicsr/train.py``."""
    import basicsr.train as bt
    return osp.abspath(osp.join(bt.__file__, osp.pardir, osp.pardir))


# --------------------------------------------------------------------------


def apply():
    """Apply every adaptation whose guard holds (idempotent)."""
    import basicsr  # noqa: F401  (after the torchvision alias)
    if glmha_plugin_common.alias_needed():
        APPLIED['torchvision_alias'] = 'torchvision.transforms.functional_tensor served from functional'

    _patch_resume()
    _patch_dist_init()
    _patch_ddp()
    _patch_registry()
    _patch_accum_loader()
    return dict(APPLIED)
