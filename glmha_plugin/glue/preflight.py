"""Check an option file before basicsr creates anything.

basicsr 1.4.2 reports most mistakes late (after creating experiments/ and
archiving an existing folder of the same name) and cryptically (a bare
``KeyError``, an ``AssertionError`` from a folder scan, ``'NoneType' object
has no attribute 'astype'`` for an unreadable image).  :func:`check_options`
runs in the entry points first and raises :class:`OptionError` whose message
names the problem and the fix.  It checks, in order:

1. the keys basicsr needs are present;
2. every ``type`` is registered (model, datasets, network, losses, metrics);
3. keys of the plugin's own option blocks (its datasets, ``train.mixing_augs``)
   and the network's constructor arguments are known (a misspelled one is
   named with the closest valid one), the forks' ``val.rgb2bgr`` /
   ``val.use_image`` fit the metrics, and the network builds;
4. dataset folders exist, are not empty and pair up; the first sample loads
   and its channel count matches the network's input channels;
5. ``path.pretrain_network_g`` is a safe, readable checkpoint whose keys and
   shapes fit the network (with ``strict_load_g``);
6. the GPU-training options (``docs/gpu_training.md``): misspelled or
   misplaced keys (closest name), their values, a model that implements
   them; ``num_gpu`` against the visible GPUs; a learning-rate schedule
   shorter than ``train.total_iter`` (basicsr's ``CosineAnnealingRestartLR``
   would die with a TypeError past its periods).
"""
import inspect
import logging
import os
import os.path as osp
from contextlib import contextmanager
from copy import deepcopy

from ..errors import CheckpointError, OptionError, did_you_mean

INPUT_CHANNEL_KEYS = ('inp_channels', 'in_channels', 'in_nc', 'num_in_ch', 'in_dim')
# Dataset-block keys that basicsr itself reads (parse_options, build_dataloader, train_pipeline).
LOADER_KEYS = frozenset({'name', 'type', 'phase', 'scale', 'use_shuffle', 'num_worker_per_gpu', 'batch_size_per_gpu',
                         'dataset_enlarge_ratio', 'prefetch_mode', 'pin_memory', 'persistent_workers'})


def check_known_keys(section: dict, allowed, where: str):
    """Misspelled keys in a block whose keys the plugin owns: name the key and the closest valid one."""
    for key in section:
        if key not in allowed:
            raise OptionError(f'{where}: unknown option {key!r}.{did_you_mean(key, sorted(allowed))} Valid options: '
                              f'{", ".join(sorted(allowed))}')


def check_own_sections(opt: dict):
    """Keys of the option blocks that belong to the plugin's own classes (datasets, recipe)."""
    from basicsr.utils.registry import DATASET_REGISTRY, MODEL_REGISTRY
    for phase, ds in (opt.get('datasets') or {}).items():
        cls = DATASET_REGISTRY._obj_map.get(ds.get('type')) if isinstance(ds, dict) else None
        if getattr(cls, 'option_keys', None):
            check_known_keys(ds, cls.option_keys | LOADER_KEYS, f'datasets.{phase} ({ds["type"]})')
    model = MODEL_REGISTRY._obj_map.get(opt.get('model_type'))
    mixing = (opt.get('train') or {}).get('mixing_augs')
    if getattr(model, 'mixing_augs_keys', None) and isinstance(mixing, dict):
        check_known_keys(mixing, model.mixing_augs_keys, 'train.mixing_augs')


UINT8_METRICS = frozenset({'calculate_psnr_matlab', 'calculate_ssim_matlab'})   # score 8-bit images only


def check_val_keys(opt: dict):
    """The forks' validation switches (``val.rgb2bgr``, ``val.use_image``) are booleans, and ``use_image: false``
    (float images) is not combined with a metric that scores 8-bit images only."""
    val = opt.get('val') or {}
    for key in ('rgb2bgr', 'use_image'):
        if key in val and not isinstance(val[key], bool):
            raise OptionError(f'val.{key} must be true or false, got {val[key]!r}')
    if val.get('use_image', True) is False:
        for name, metric in (val.get('metrics') or {}).items():
            if isinstance(metric, dict) and metric.get('type') in UINT8_METRICS:
                raise OptionError(f'val.metrics.{name}: {metric["type"]} scores 8-bit images, but val.use_image: false '
                                  f'gives it the float output; set use_image: true, or use calculate_psnr / '
                                  f'calculate_ssim (or the _lowlight metrics)')


def apply_overrides(opt: dict, overrides) -> dict:
    """``--force_yml a:b=v`` entries applied like basicsr's parse_options (existing keys only)."""
    from basicsr.utils.options import _postprocess_yml_value
    opt = deepcopy(opt)
    for entry in overrides:
        keys, sep, value = entry.partition('=')
        if not sep:
            raise OptionError(f'--force_yml {entry!r}: expected key:subkey=value')
        node, parts = opt, [k.strip() for k in keys.split(':')]
        if parts == ['manual_seed']:
            raise OptionError('--force_yml manual_seed=... has no effect in basicsr 1.4.2 (parse_options seeds '
                              'the generators before applying overrides); set manual_seed in the option file')
        for key in parts[:-1]:
            if not isinstance(node, dict) or key not in node:
                raise OptionError(f'--force_yml {entry!r}: no option {":".join(parts)!r} in the file '
                                  f'(basicsr only overrides existing keys)')
            node = node[key]
        leaf = parts[-1]
        if isinstance(node, dict) and leaf not in node:
            hint = did_you_mean(leaf, node, 0.8, prefix=':'.join(parts[:-1] + ['']))
            if hint:  # a new key is allowed (basicsr creates it) unless it looks like a typo
                raise OptionError(f'--force_yml {entry!r}: no option {":".join(parts)!r}.{hint}')
        node[leaf] = _postprocess_yml_value(value.strip())
    return opt


def _require(opt: dict, dotted: str):
    node = opt
    for key in dotted.split('.'):
        if not isinstance(node, dict) or key not in node:
            raise OptionError(f'option {dotted!r} is missing (basicsr needs it)')
        node = node[key]
    return node


def _check_type(registry, kind: str, where: str, name):
    from ..errors import unknown_name_message
    if name not in registry:
        raise OptionError(f'{where}: {unknown_name_message(kind, name, registry.keys())}')


def build_network_checked(net_opt: dict, where: str = 'network_g'):
    """Build ``net_opt`` through basicsr, turning constructor errors into OptionError."""
    from basicsr.utils.registry import ARCH_REGISTRY
    net_opt = dict(net_opt)
    name = net_opt.pop('type')
    _check_type(ARCH_REGISTRY, 'arch', f'{where}.type', name)
    cls = ARCH_REGISTRY.get(name)
    params = inspect.signature(cls).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        for key in net_opt:
            if key not in params:
                raise OptionError(f'{where}: {name} has no option {key!r}.{did_you_mean(key, params)} Valid options: '
                                  f'{", ".join(params)}')
    try:
        return cls(**net_opt)
    except (ValueError, TypeError) as exc:
        raise OptionError(f'{where} ({name}): {exc}') from None


def _check_folder(path: str, where: str):
    if not osp.exists(path):
        raise OptionError(f'{where}: folder {path!r} does not exist (relative paths are read from '
                          f'{os.getcwd()!r})')
    if osp.isdir(path) and not any(True for _ in os.scandir(path)):
        raise OptionError(f'{where}: folder {path!r} is empty')


def _check_paired_names(ds: dict, where: str):
    """basicsr's ``paired_paths_from_folder`` rule: input ``filename_tmpl.format(stem) + ext`` of each target."""
    lq, gt = ds['dataroot_lq'], ds['dataroot_gt']
    if not (osp.isdir(lq) and osp.isdir(gt)):
        return
    tmpl = ds.get('filename_tmpl', '{}')
    lq_names = {f for f in os.listdir(lq) if not f.startswith('.')}
    gt_names = {f for f in os.listdir(gt) if not f.startswith('.')}
    wanted = {f'{tmpl.format(osp.splitext(g)[0])}{osp.splitext(g)[1]}': g for g in gt_names}
    no_lq = sorted(g for n, g in wanted.items() if n not in lq_names)
    no_gt = sorted(n for n in lq_names if n not in wanted)
    if no_lq or no_gt:
        msg = [f'{where}: input and target images do not pair up (filename_tmpl {tmpl!r})']
        if no_lq:
            msg.append(f'{len(no_lq)} target image(s) without input in {lq}: {", ".join(no_lq[:5])}')
        if no_gt:
            msg.append(f'{len(no_gt)} input image(s) without target in {gt}: {", ".join(no_gt[:5])}')
        raise OptionError('; '.join(msg))


def _unreadable_images(dataset):
    """The first image path of sample 0 that OpenCV cannot decode (basicsr datasets keep ``paths``)."""
    import cv2
    paths = getattr(dataset, 'paths', None)
    first = paths[0] if paths else None
    candidates = first.values() if isinstance(first, dict) else [first]
    for path in candidates:
        if isinstance(path, str) and osp.isfile(path) and cv2.imread(path, cv2.IMREAD_UNCHANGED) is None:
            return path
    return None


def check_dataset(phase: str, ds_opt: dict, in_channels=None, scale: int = 1):
    """Folders, pairing, the first sample and its channel count for one dataset entry."""
    from basicsr.utils.registry import DATASET_REGISTRY
    where = f'datasets.{phase} ({ds_opt.get("name", "?")})'
    _check_type(DATASET_REGISTRY, 'dataset', f'{where}.type', ds_opt.get('type'))
    backend = (ds_opt.get('io_backend') or {}).get('type', 'disk')
    roots = [k for k in ds_opt if k.startswith('dataroot') and ds_opt[k] is not None]
    for key in roots:
        _check_folder(osp.expanduser(str(ds_opt[key])), f'{where}.{key}')
    basicsr_pairing = not getattr(DATASET_REGISTRY.get(ds_opt['type']), 'own_pairing', False)
    if (backend == 'disk' and basicsr_pairing and {'dataroot_lq', 'dataroot_gt'} <= set(roots)
            and not ds_opt.get('meta_info_file')):
        _check_paired_names(ds_opt, where)
    opt = deepcopy(ds_opt)
    opt.setdefault('phase', phase.split('_')[0])
    opt.setdefault('scale', scale)
    dataset = None
    try:
        dataset = DATASET_REGISTRY.get(opt['type'])(opt)
        if len(dataset) == 0:
            raise OptionError(f'{where}: no samples found')
        sample = dataset[0]
    except OptionError:
        raise
    except Exception as exc:  # basicsr reports these as asserts / attribute errors
        bad = _unreadable_images(dataset)
        if bad:
            raise OptionError(f'{where}: cannot decode image {bad!r} (corrupt or not an image): replace or '
                              f'remove it (and its partner)') from None
        raise OptionError(f'{where}: cannot read the data ({type(exc).__name__}: {exc})') from None
    lq = sample.get('lq') if isinstance(sample, dict) else None
    if in_channels is not None and hasattr(lq, 'shape') and lq.dim() == 3 and lq.shape[0] != in_channels:
        raise OptionError(f'{where}: samples have {lq.shape[0]} channels but network_g expects {in_channels}; '
                          f'set network_g.inp_channels (or in_channels) to {lq.shape[0]}, or convert the data')


def check_pretrained(opt: dict, net):
    from .checkpoints import extract_state_dict, key_mismatch, load_checkpoint
    path = (opt.get('path') or {}).get('pretrain_network_g')
    if not path:
        return
    path = osp.expanduser(str(path))
    if not osp.isfile(path):
        raise OptionError(f'path.pretrain_network_g {path!r} does not exist')
    try:
        state = extract_state_dict(load_checkpoint(path), opt['path'].get('param_key_g', 'params'), path)
    except CheckpointError as exc:
        raise OptionError(f'path.pretrain_network_g: {exc}') from None
    if opt['path'].get('strict_load_g', True):
        report = key_mismatch(net.state_dict(), state)
        if report:
            raise OptionError(f'path.pretrain_network_g {path!r} does not fit network_g '
                              f'({opt["network_g"]["type"]}): {report}. Use the checkpoint of this architecture '
                              f'and configuration, or set strict_load_g: false to load the matching keys only.')


@contextmanager
def _basicsr_logger_untouched():
    """Leave basicsr's root logger as it was: it attaches its log file only on first initialisation, so a
    check that logs (datasets do) before ``train_pipeline`` would otherwise lose the run's log file."""
    from basicsr.utils import logger as blog
    was_initialized = 'basicsr' in blog.initialized_logger
    handlers = list(logging.getLogger('basicsr').handlers)
    try:
        yield
    finally:
        if not was_initialized:
            blog.initialized_logger.pop('basicsr', None)
            log = logging.getLogger('basicsr')
            for h in log.handlers[:]:
                if h not in handlers:
                    log.removeHandler(h)


def check_options(opt: dict, is_train: bool = True, launcher: str = 'none', files: bool = True):
    """Raise OptionError for the first problem found (see the module docstring).

    ``launcher`` is the command line's ``--launcher`` (``none`` | ``pytorch`` | ``slurm``).  ``files=False``
    skips the checks that read the data sets and weights the file names (4 and 5), e.g. for a shipped
    option file whose data the user has yet to download.
    """
    with _basicsr_logger_untouched():
        _check_options(opt, is_train, launcher, files)


def _check_options(opt: dict, is_train: bool, launcher: str = 'none', files: bool = True):
    from basicsr.utils.registry import LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY
    for key in ('name', 'model_type', 'num_gpu', 'datasets', 'network_g.type', 'path'):
        _require(opt, key)
    if not isinstance(opt['path'], dict):
        raise OptionError("option 'path' must be a mapping (use 'path: {}' when empty)")
    if is_train:
        for key in ('train.total_iter', 'train.optim_g', 'train.scheduler', 'logger.print_freq',
                    'logger.save_checkpoint_freq'):
            _require(opt, key)
    _check_type(MODEL_REGISTRY, 'model', 'model_type', opt['model_type'])
    for key, loss in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(loss, dict) and 'type' in loss:
            _check_type(LOSS_REGISTRY, 'loss', f'train.{key}.type', loss['type'])
    for key, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        _check_type(METRIC_REGISTRY, 'metric', f'val.metrics.{key}.type', metric.get('type'))

    check_own_sections(opt)
    check_val_keys(opt)
    check_gpu_training(opt, is_train)
    check_num_gpu(opt['num_gpu'], launcher)
    if is_train:
        check_schedule_length(opt['train'])
    net = build_network_checked(opt['network_g'])
    net_opt = opt['network_g']
    if net_opt.get('type') == 'GLMHASwap' and isinstance(net_opt.get('base'), dict):
        net_opt = net_opt['base']   # the swapped network's own options
    in_channels = next((net_opt[k] for k in INPUT_CHANNEL_KEYS if k in net_opt), None)
    datasets = opt['datasets']
    if not isinstance(datasets, dict) or not datasets:
        raise OptionError('option datasets is empty: add a train (and val) or test entry')
    for phase in datasets:
        if phase.split('_')[0] not in ('train', 'val', 'test'):
            raise OptionError(f'datasets.{phase}: entry names must start with train, val or test '
                              f'(e.g. train, val, test_1)')
    if is_train and 'train' not in datasets:
        raise OptionError('training needs datasets.train')
    if not files:
        return
    for phase, ds in datasets.items():
        check_dataset(phase, ds, in_channels, opt.get('scale', 1))
    check_pretrained(opt, net)


# --------------------------------------------------------------------------
# 6. GPU-training options, num_gpu, schedule length

# Top-level keys basicsr and the plugin read (parse_options adds the run-time ones).
TOP_LEVEL_KEYS = frozenset({
    'name', 'model_type', 'scale', 'num_gpu', 'manual_seed', 'datasets', 'network_g', 'network_d', 'path', 'train',
    'val', 'logger', 'dist_params', 'find_unused_parameters', 'is_train', 'dist', 'rank', 'world_size',
    'auto_resume', 'root_path'})
# Keys of the train block that basicsr, Restormer's recipe and the plugin read.
TRAIN_BLOCK_KEYS = frozenset({
    'ema_decay', 'optim_g', 'optim_d', 'scheduler', 'total_iter', 'warmup_iter', 'pixel_opt', 'perceptual_opt',
    'gan_opt', 'net_d_iters', 'net_d_init_iters', 'use_grad_clip', 'grad_clip_norm', 'mixing_augs'})
# Other projects' names for the same options.
ECOSYSTEM_ALIASES = {'bfloat16': 'amp_bf16', 'use_bf16': 'amp_bf16', 'amp': 'use_amp',
                     'channels_last': 'use_channels_last', 'compile': 'use_compile', 'accum_iters': 'accum_iter',
                     'grad_accum': 'accum_iter', 'gradient_accumulation_steps': 'accum_iter'}
PLACES = {'use_checkpoint': 'network_g', 'accum_iter': 'train', 'max_nonfinite_steps': 'train'}


def _hint(key: str, names, prefix: str = '') -> str:
    """:func:`did_you_mean` for an option name, knowing other projects' names for ours."""
    if key in ECOSYSTEM_ALIASES and ECOSYSTEM_ALIASES[key] in names:
        return f' Did you mean {prefix + ECOSYSTEM_ALIASES[key]!r}?'
    return did_you_mean(key, sorted(names), 0.8, prefix)


def _misplaced(key: str, where: str):
    """OptionError for a known option in the wrong block (e.g. traiNNer-redux's datasets.train.accum_iter)."""
    raise OptionError(f'{key} {where} is a {PLACES[key]} option here; move it to {PLACES[key]}.{key}')


def check_gpu_training(opt: dict, is_train: bool):
    """Keys and values of the GPU-training options, and a model_type that implements them."""
    from basicsr.utils.registry import MODEL_REGISTRY
    from ..models.training import COMPILE_MODES, OPTION_KEYS, TRAIN_KEYS
    for key in opt:
        if key in PLACES:
            _misplaced(key, 'at the top level')
        if key not in TOP_LEVEL_KEYS and key not in OPTION_KEYS:
            hint = _hint(key, OPTION_KEYS)
            if hint:
                raise OptionError(f'unknown top-level option {key!r}.{hint} (GPU-training options: '
                                  f'{", ".join(OPTION_KEYS)}; docs/gpu_training.md)')
    train = opt.get('train') or {}
    for key in train:
        if key not in TRAIN_BLOCK_KEYS and key not in TRAIN_KEYS and not key.endswith('_opt'):
            if key in PLACES and PLACES[key] != 'train':
                _misplaced(key, 'in train')
            hint = _hint(key, TRAIN_BLOCK_KEYS | set(TRAIN_KEYS), prefix='train.')
            if hint:
                raise OptionError(f'train.{key}: unknown option.{hint}')
    train_ds = (opt.get('datasets') or {}).get('train') or {}
    for key in ('accum_iter', 'use_checkpoint'):
        if key in train_ds:
            _misplaced(key, 'in datasets.train')
    for key in ('use_amp', 'amp_bf16', 'use_channels_last', 'use_compile'):
        if key in opt and not isinstance(opt[key], bool):
            raise OptionError(f'{key} must be true or false, got {opt[key]!r}')
    if opt.get('compile_mode') is not None and opt['compile_mode'] not in COMPILE_MODES:
        raise OptionError(f'compile_mode {opt["compile_mode"]!r} is not a torch.compile mode.'
                          f'{_hint(str(opt["compile_mode"]), COMPILE_MODES)} Valid: {", ".join(COMPILE_MODES)}')
    for key in TRAIN_KEYS:
        value = train.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise OptionError(f'train.{key} must be a whole number >= 1, got {value!r}')
    used = [k for k in ('use_amp', 'use_channels_last', 'use_compile') if opt.get(k)]
    if is_train:
        used += [f'train.{k}' for k in TRAIN_KEYS if k in train and not (k == 'accum_iter' and train[k] == 1)]
    model = MODEL_REGISTRY._obj_map.get(opt.get('model_type'))
    if used and model is not None and not getattr(model, 'training_levers', False):
        them = 'it' if len(used) == 1 else 'them'
        raise OptionError(f'{", ".join(used)}: model_type {opt["model_type"]} does not implement {them} and would '
                          f'ignore {them}; use model_type ImageCleanModel (image restoration; the same training as SRModel plus '
                          f'these options), SpectralReconModel or CASSIModel')


def check_num_gpu(num_gpu, launcher: str = 'none'):
    """``num_gpu`` against the visible GPUs (basicsr trusts it: without a GPU it dies in CUDA initialisation)."""
    import torch
    if num_gpu == 'auto':
        return
    if isinstance(num_gpu, bool) or not isinstance(num_gpu, int) or num_gpu < 0:
        raise OptionError(f'num_gpu must be auto or a whole number >= 0, got {num_gpu!r}; set num_gpu: auto')
    visible = torch.cuda.device_count()
    if num_gpu <= visible:
        return
    if visible == 0:
        raise OptionError(f'num_gpu: {num_gpu}, but no GPU is visible on this machine (basicsr would stop with '
                          f'"Found no NVIDIA driver"); set num_gpu: auto (all visible GPUs, the CPU when there are '
                          f'none) or num_gpu: 0')
    if launcher == 'none':
        raise OptionError(f'num_gpu: {num_gpu}, but only {visible} GPU(s) are visible: basicsr would load '
                          f'{num_gpu} x batch_size_per_gpu per iteration for DataParallel over {visible}; set '
                          f'num_gpu: auto (or {visible})')
    logging.getLogger('basicsr').warning(
        f'num_gpu: {num_gpu} but {visible} GPU(s) are visible; with --launcher {launcher} each process uses one GPU '
        f'and basicsr only checks num_gpu != 0; set num_gpu: auto')


def check_schedule_length(train: dict):
    """A schedule shorter than ``total_iter``: refused for basicsr's cosine (it dies), a warning for ours (it holds)."""
    sched = train.get('scheduler') or {}
    kind, periods, total = sched.get('type'), sched.get('periods'), train.get('total_iter')
    if kind not in ('CosineAnnealingRestartLR', 'CosineAnnealingRestartCyclicLR') or not periods or total is None:
        return
    length, total = sum(int(p) for p in periods), int(total)
    # iteration i runs scheduler step i - 1 (basicsr steps from iteration 2 on): the last valid one is length + 1
    if total <= length + 1:
        return
    if kind == 'CosineAnnealingRestartLR':
        raise OptionError(f'train.total_iter ({total}) is longer than the learning-rate schedule: '
                          f'train.scheduler.periods {list(periods)} sum to {length}, and basicsr\'s '
                          f'CosineAnnealingRestartLR stops with "TypeError: list indices must be integers or slices, '
                          f'not NoneType" at iteration {length + 2}; make the periods sum to total_iter ({total}) or '
                          f'set total_iter: {length}')
    logging.getLogger('basicsr').warning(
        f'train.total_iter ({total}) is longer than the learning-rate schedule (train.scheduler.periods sum to '
        f'{length}): CosineAnnealingRestartCyclicLR holds its last eta_min for the last {total - length - 1} '
        f'iterations')
