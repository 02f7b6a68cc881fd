"""Runtime adaptations of basicsr 1.4.2 (and torchvision / CPU-only machines).

Nothing of basicsr's is edited on disk.  Each adaptation below names the
symptom it removes, is guarded so that it only applies where the upstream
behaviour is the broken one, and is recorded in :data:`APPLIED`.  The
original functions stay in :data:`ORIGINALS` so tests can show the symptom.

| adaptation          | symptom without it                                                     |
|---------------------|------------------------------------------------------------------------|
| torchvision alias   | ``import basicsr``: No module named 'torchvision.transforms.functional_tensor' |
| cpu_safe_resume     | ``--auto_resume`` / ``path.resume_state`` on CPU: Found no NVIDIA driver; ``--auto_resume``  |
|                     | takes the newest state even when its network file is torn or no longer fits ``network_g``, |
|                     | and starts over (moving the run aside) when no state is readable                        |
| dist_init_cpu       | ``torchrun ... --launcher pytorch`` on CPU: ZeroDivisionError           |
| dist_init_slurm_cpu | ``srun ... --launcher slurm`` on CPU: ZeroDivisionError                 |
| ddp_cpu             | DDP on CPU: Found no NVIDIA driver in ``model_to_device``               |
| output root         | ``python -m basicsr.train`` writes experiments/ into site-packages      |
| registry_errors     | unknown ``type`` names: bare KeyError without the valid names           |
| accum_loader        | ``train.accum_iter: N``: the loader delivers ``batch_size_per_gpu``, not N x it, per iteration |
| full_epochs         | a batch that does not divide the epoch: the run stops short of ``total_iter`` (33 of 40) |
| atomic_checkpoints  | a save killed or failing half-way leaves a torn ``net_g_N.pth`` / ``N.state``; a failed save |
|                     | is logged and ignored (exit 0), a full disk reported as a zip-writer error                |
| exponent_numbers    | ``lr: 2e-3`` (and ``--force_yml ...=2e-3``) read as text: dies inside ``torch.optim``       |

The output-root adaptation lives in :func:`output_root`, used by the entry
points (``glmha_plugin.commands.train`` / ``glmha_plugin.commands.test``), to which the import
hook redirects ``python -m basicsr.train`` / ``basicsr.test``.
"""
import inspect
import math
import os
import os.path as osp
import sysconfig

import glmha_plugin_common

from ..errors import CheckpointError, UsageError, unknown_name_message

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
    except Exception as exc:  # noqa: BLE001  any failure to read a state: the state is skipped, named
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ''
        raise CheckpointError(f'{osp.basename(path)} is not readable ({type(exc).__name__}: {first[:120]}); cut '
                              f'short by a crash while it was written?') from None
    if not isinstance(state, dict) or 'iter' not in state:
        raise CheckpointError(f'{osp.basename(path)} is not a basicsr training state (no "iter" entry)')
    return state


def resumed_networks(opt):
    """``(option key, file label)`` of the networks basicsr's ``check_resume`` reloads on resume."""
    ignored = opt['path'].get('ignore_resume_networks') or []
    return [(key, key[len('network_'):]) for key in opt if key.startswith('network_') and key not in ignored
            and isinstance(opt[key], dict)]


def _configured_network(opt, key, cache):
    """The network ``opt[key]`` builds, through the registry (basicsr's build_network would initialise its logger
    before train_pipeline sets it up)."""
    if key not in cache:
        from basicsr.utils.registry import ARCH_REGISTRY
        args = dict(opt[key])
        cache[key] = ARCH_REGISTRY.get(args.pop('type'))(**args)
    return cache[key]


def network_problem(opt, it, cache=None):
    """None when the network files of iteration ``it`` are intact and fit the configured networks, else
    ``(kind, text)``; kind ``'torn'`` (missing, empty, unreadable) or ``'changed'`` (keys or shapes differ)."""
    from .checkpoints import extract_state_dict, key_mismatch, load_checkpoint
    cache = {} if cache is None else cache
    for key, label in resumed_networks(opt):
        path = osp.join(opt['path']['models'], f'net_{label}_{it}.pth')
        name = osp.basename(path)
        if not osp.isfile(path):
            return 'torn', f'{name} is missing'
        if osp.getsize(path) == 0:
            return 'torn', f'{name} is empty'
        try:
            weights = extract_state_dict(load_checkpoint(path), 'params', name)
        except CheckpointError:
            return 'torn', f'{name} is not a readable checkpoint (cut short while it was written?)'
        report = key_mismatch(_configured_network(opt, key, cache).state_dict(), weights)
        if report:
            return 'changed', f'{name} does not fit {key} ({opt[key].get("type")}) as configured now: {report}'
    return None


def _resume_candidate(path, opt, cache):
    """``(state, None)`` when ``path`` can be resumed, else ``(None, (kind, why))``."""
    try:
        state = _read_state(path, opt)
    except CheckpointError as exc:
        return None, ('torn', str(exc))
    problem = network_problem(opt, state['iter'], cache)
    return (None, problem) if problem else (state, None)


def _has_saved_run(opt, states):
    models = opt['path'].get('models')
    return bool(states) or bool(models and osp.isdir(models) and any(
        f.endswith('.pth') for f in os.listdir(models)))


def network_changes(opt) -> str:
    """``network_g`` keys that differ from the option file basicsr copied into the experiment when it was saved
    (``'rank_ratio 0.5 -> 0.25'``), or ``''`` when that copy is not found."""
    import glob

    from .option_files import read_option_file
    root = opt['path'].get('experiments_root') or osp.dirname(opt['path'].get('models') or '')
    copies = sorted(glob.glob(osp.join(root, '*.yml')), key=osp.getmtime, reverse=True)
    for copy in copies:
        try:
            saved = read_option_file(copy)[0].get('network_g')
        except UsageError:
            continue
        if not isinstance(saved, dict):
            continue
        now = opt.get('network_g') or {}
        diffs = [f'{k} {saved.get(k, "(unset)")} -> {now.get(k, "(unset)")}' for k in sorted(set(saved) | set(now))
                 if saved.get(k) != now.get(k)]
        return ', '.join(diffs)
    return ''


def _no_state_to_resume(opt, skipped):
    """The one-line refusal when every saved state of the experiment was skipped."""
    name, folder = opt['name'], osp.dirname(skipped[0][0]) if skipped else opt['path'].get('models')
    if skipped and all(kind == 'changed' for _, (kind, _) in skipped):
        why = skipped[0][1][1]
        changes = network_changes(opt)
        changed = f' ({changes})' if changes else ' (e.g. another rank_ratio)'
        return (f'--auto_resume: experiment {name!r} was saved with another network: {why}. The option file\'s '
                f'network_g changed since the run was saved{changed}; restore the network_g it was trained with to '
                f'resume, or start a new run under another name (the saved run is left as it is)')
    if not skipped:
        return (f'--auto_resume: experiment {name!r} has network files in {folder} but no training state to resume '
                f'from; move the experiment folder away (or give the run another name) to start over, or set '
                f'path.pretrain_network_g to one of its network files to fine-tune from it')
    listing = '; '.join(f'{osp.basename(p)}: {why}' for p, (_, why) in skipped[:3])
    more = f'; and {len(skipped) - 3} more' if len(skipped) > 3 else ''
    return (f'--auto_resume: none of the {len(skipped)} training states of experiment {name!r} in {folder} can be '
            f'resumed ({listing}{more}); nothing was changed: restore the broken files, or move the experiment folder '
            f'away (or give the run another name) to start over')


def load_resume_state(opt):
    """Drop-in for ``basicsr.train.load_resume_state`` that works without a GPU and resumes only what fits.

    Upstream maps the state onto the current CUDA device even for
    ``num_gpu: 0``; here it goes to the model's device.  The state is read with
    ``weights_only=True`` (a training state is tensors, numbers and containers).
    With ``--auto_resume`` the experiment's own ``training_states`` folder is
    searched (upstream looks in ``./experiments`` relative to the working
    directory: the same folder when the root is the working directory), newest
    first, and the first state is taken whose file reads and whose network
    files (``net_g_<iter>.pth``, which basicsr loads next) are intact and fit
    the configured networks; each state passed over is named in a warning.
    When the experiment has saved states (or network files) and none can be
    resumed, CheckpointError says why (the run is neither restarted nor moved
    aside); an experiment without any starts at iteration 0, as upstream.
    ``path.resume_state`` names one state: it is used, or refused with the
    reason, without a fallback.
    """
    import logging

    from basicsr.utils import check_resume
    state, cache = None, {}
    if opt['auto_resume']:
        states = training_states(opt)
        skipped = []
        for path in states:
            state, problem = _resume_candidate(path, opt, cache)
            if state is not None:
                break
            skipped.append((path, problem))
        # Not basicsr's get_root_logger(): called before train_pipeline sets the logger up (level, log file), it
        # would initialise it without them, and the run would log nothing below WARNING.
        if state is None:
            if _has_saved_run(opt, states):
                raise CheckpointError(_no_state_to_resume(opt, skipped))   # lists what was skipped
            return None
        opt['path']['resume_state'] = path
        log = logging.getLogger('basicsr')
        for passed, (_, why) in skipped:
            log.warning(f'--auto_resume: skipped {passed}: {why}')
        if skipped:
            log.warning(f'--auto_resume: resuming from {path} (iteration {state["iter"]})')
    else:
        path = opt['path'].get('resume_state')
        if path:
            if not osp.isfile(path):
                raise CheckpointError(f'resume state {path!r} does not exist: fix path.resume_state, or use '
                                      f'--auto_resume to pick the latest state of experiment {opt["name"]!r}')
            try:
                state = _read_state(path, opt)
            except CheckpointError as exc:
                raise CheckpointError(f'path.resume_state: {exc}; name another state, or use --auto_resume to '
                                      f'take the newest one that can be resumed') from None
            problem = network_problem(opt, state['iter'], cache)
            if problem:
                raise CheckpointError(f'path.resume_state {path!r}: {problem[1]}; '
                                      + ('restore the network_g it was trained with' if problem[0] == 'changed' else
                                         'name another state, or use --auto_resume to take the newest one that can '
                                         'be resumed'))
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
    """Upstream, with the train loader built for ``accum_iter x batch_size_per_gpu`` samples per iteration
    (accum_loader) and enough epochs for ``total_iter`` (full_epochs).

    One iteration is one optimizer step on ``accum_iter`` micro-batches of
    ``batch_size_per_gpu`` (glmha_plugin.models.training), so the loader
    delivers them together; the option itself is restored for the model.
    Upstream counts ``ceil(samples / batch)`` iterations per epoch, but its
    loader drops an incomplete last batch: when the batch does not divide the
    epoch, its epochs end ``total_iter`` early (33 of 40 iterations, 7 of 12).
    The epoch count here comes from the loader's real length.
    """
    from ..models.training import accum_iter
    n, train = accum_iter(opt), (opt.get('datasets') or {}).get('train')
    if n == 1 or train is None:
        result = ORIGINALS['accum_loader'](opt, logger)
    else:
        micro = train['batch_size_per_gpu']
        train['batch_size_per_gpu'] = micro * n
        try:
            result = ORIGINALS['accum_loader'](opt, logger)
        finally:
            train['batch_size_per_gpu'] = micro
        logger.info(f'Gradient accumulation: one iteration = one optimizer step on train.accum_iter {n} micro-batches '
                    f'of batch_size_per_gpu {micro}: the loader delivers {n * micro} samples per GPU per iteration '
                    f'(the "Batch size per gpu" above); {n * micro * opt.get("world_size", 1)} per step in total')
    if 'full_epochs' in APPLIED and train is not None:
        result = _full_epochs(result, logger)
    return result


def _full_epochs(result, logger):
    """``result`` of create_train_val_dataloader with ``total_epochs`` from the loader's length (docstring above)."""
    loader, sampler, val_loaders, total_epochs, total_iters = result
    per_epoch = len(loader)
    if per_epoch == 0:   # glmha_plugin.glue.preflight refuses this before anything is created; a guard for direct calls
        raise UsageError(f'the training loader has no complete batch of {loader.batch_size} in an epoch of '
                         f'{len(sampler)} samples: no iteration would run; lower batch_size_per_gpu (or accum_iter) '
                         f'or raise dataset_enlarge_ratio')
    needed = math.ceil(total_iters / per_epoch)
    dropped = len(sampler) - per_epoch * loader.batch_size
    logger.info(f'Epochs as the loader runs them: {len(sampler)} samples per GPU per epoch, {per_epoch} iterations of '
                f'{loader.batch_size}' + (f' ({dropped} samples left out per epoch: the loader drops an incomplete '
                                          f'batch; the sampler reshuffles every epoch, so other ones each time)'
                                          if dropped else '')
                + f'; {needed} epochs for {total_iters} iterations' + (
                    f' (upstream counted {total_epochs}, which would have stopped at iteration '
                    f'{min(total_iters, (total_epochs + 1) * per_epoch)})' if needed > total_epochs + 1 else ''))
    return loader, sampler, val_loaders, max(needed, total_epochs), total_iters


def _patch_accum_loader():
    import basicsr.train as bt
    upstream = _upstream_source(ORIGINALS.get('accum_loader', bt.create_train_val_dataloader))
    _replace(bt, 'create_train_val_dataloader', _create_train_val_dataloader, "dataset_opt['batch_size_per_gpu']",
             'accum_loader', 'the train loader delivers train.accum_iter x batch_size_per_gpu per iteration')
    if bt.create_train_val_dataloader is _create_train_val_dataloader and 'num_iter_per_epoch = math.ceil(' in upstream:
        APPLIED['full_epochs'] = 'epochs counted from the loader\'s length (it drops an incomplete last batch)'


# --------------------------------------------------------------------------
# atomic_checkpoints


def _save_network(self, net, net_label, current_iter, param_key='params'):
    """Upstream's file (``{param_key: state_dict}`` per network, ``module.`` stripped, on the CPU), written by
    :func:`glmha_plugin.models.saving.atomic_save`: whole or not at all, and a failure stops training."""
    from ..models.saving import atomic_save
    nets = net if isinstance(net, list) else [net]
    keys = param_key if isinstance(param_key, list) else [param_key]
    if len(nets) != len(keys):
        raise ValueError(f'save_network: {len(nets)} networks but {len(keys)} param keys')
    save = {}
    for one, key in zip(nets, keys, strict=True):
        state = self.get_bare_model(one).state_dict()
        save[key] = {(k[len('module.'):] if k.startswith('module.') else k): v.cpu() for k, v in state.items()}
    label = 'latest' if current_iter == -1 else current_iter
    atomic_save(save, osp.join(self.opt['path']['models'], f'{net_label}_{label}.pth'))


def _save_training_state(self, epoch, current_iter):
    """Upstream's ``<iter>.state`` (epoch, iter, optimizers, schedulers), written by
    :func:`glmha_plugin.models.saving.atomic_save`."""
    from ..models.saving import atomic_save
    if current_iter == -1:
        return
    state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
             'schedulers': [s.state_dict() for s in self.schedulers]}
    atomic_save(state, osp.join(self.opt['path']['training_states'], f'{current_iter}.state'))


def _patch_atomic_checkpoints():
    from basicsr.models.base_model import BaseModel
    from basicsr.utils.dist_util import master_only
    for attr, replacement in (('save_network', _save_network), ('save_training_state', _save_training_state)):
        current = getattr(BaseModel, attr)
        if getattr(current, '__wrapped__', None) is replacement:
            continue
        _replace(BaseModel, attr, master_only(replacement), 'Just ignore it', f'atomic_checkpoints.{attr}',
                 f'BaseModel.{attr} writes whole files (temporary file, then rename) and stops on a failed save')
    if any(k.startswith('atomic_checkpoints.') for k in APPLIED):
        APPLIED['atomic_checkpoints'] = 'checkpoints are written whole (temporary file, then rename)'


# --------------------------------------------------------------------------
# exponent_numbers

_EXPONENT_LOADERS = {}


def _exponent_loader(base):
    """``base`` (basicsr's YAML loader) that reads ``2e-3`` / ``2.0e3`` as numbers, as YAML 1.2 does."""
    if base not in _EXPONENT_LOADERS:
        from .option_files import EXPONENT_FIRST, EXPONENT_NUMBER
        loader = type(f'ExponentNumber{base.__name__}', (base,), {})
        loader.add_implicit_resolver('tag:yaml.org,2002:float', EXPONENT_NUMBER, EXPONENT_FIRST)
        _EXPONENT_LOADERS[base] = loader
    return _EXPONENT_LOADERS[base]


def _ordered_yaml():
    """Upstream's (Loader, Dumper) pair, the loader reading exponent numbers as numbers."""
    loader, dumper = ORIGINALS['exponent_numbers.ordered_yaml']()
    return _exponent_loader(loader), dumper


def _postprocess_yml_value(value):
    """Upstream's ``--force_yml`` value parser; a number in exponent notation is a number, not text."""
    from .option_files import EXPONENT_NUMBER
    out = ORIGINALS['exponent_numbers.postprocess'](value)
    if isinstance(out, str) and EXPONENT_NUMBER.match(out.strip()):
        return float(out.strip().replace('_', ''))
    return out


def _patch_exponent_numbers():
    import yaml
    from basicsr.utils import options as bo
    if bo.ordered_yaml is not _ordered_yaml and yaml.load('x: 2e-3', Loader=bo.ordered_yaml()[0])['x'] == '2e-3':
        ORIGINALS['exponent_numbers.ordered_yaml'] = bo.ordered_yaml
        bo.ordered_yaml = _ordered_yaml
        APPLIED['exponent_numbers.yaml'] = 'basicsr reads option files with 2e-3-style numbers as numbers'
    if bo._postprocess_yml_value is not _postprocess_yml_value and bo._postprocess_yml_value('2e-3') == '2e-3':
        ORIGINALS['exponent_numbers.postprocess'] = bo._postprocess_yml_value
        bo._postprocess_yml_value = _postprocess_yml_value
        APPLIED['exponent_numbers.force_yml'] = 'basicsr reads --force_yml 2e-3-style values as numbers'


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
    _patch_atomic_checkpoints()
    _patch_exponent_numbers()
    return dict(APPLIED)
