"""Check an option file before basicsr creates anything.

basicsr 1.4.2 reports most mistakes late (after creating experiments/ and
archiving an existing folder of the same name) and cryptically (a bare
``KeyError``, an ``AssertionError`` from a folder scan, ``'NoneType' object
has no attribute 'astype'`` for an unreadable image).  :func:`check_options`
runs in the entry points first and raises :class:`OptionError` whose message
names the problem and the fix.  It checks, in order:

1. the keys basicsr needs are present (the declarations of
   :mod:`glmha_plugin.glue.option_schema` say which);
2. every ``type`` is registered (model, datasets, network, losses, metrics);
3. every declared block against its declaration: unknown keys (a misspelled
   one is named with the closest valid one; closed blocks, such as the
   plugin's datasets and ``train.mixing_augs``, refuse any unknown key),
   GPU-training options in the wrong block, and the type and range of every
   value (``lr: 2e-3``, which YAML 1.1 reads as text; ``total_iter: abc``;
   zero or negative frequencies); the forks' ``val.use_image: false`` fits
   the metrics; a ``model_type`` that implements the GPU-training options
   that are set (``docs/gpu_training.md``);
4. ``num_gpu`` against the visible GPUs; ``--launcher`` against the
   environment its launcher sets; a learning-rate schedule shorter than
   ``train.total_iter`` (basicsr's ``CosineAnnealingRestartLR`` would die with
   a TypeError past its periods);
5. ``network_g``: its keys and their types against the architecture's
   constructor signature, and the network builds;
6. dataset folders exist, are not empty and pair up; the first sample loads
   and its channel counts match the network's input and output channels;
   every file's header is sound and fits its partner and the network
   (:mod:`glmha_plugin.data.file_check`); validation / test metrics have
   ground truth to score against; one training iteration's batch fits in an
   epoch (:func:`check_epoch`);
7. ``path.pretrain_network_g`` is a safe, readable checkpoint whose keys and
   shapes fit the network (with ``strict_load_g``).
"""
import inspect
import logging
import math
import os
import os.path as osp
from contextlib import contextmanager
from copy import deepcopy
from typing import Optional

from ..errors import CheckpointError, OptionError, did_you_mean

INPUT_CHANNEL_KEYS = ('inp_channels', 'in_channels', 'in_nc', 'num_in_ch', 'in_dim')
OUTPUT_CHANNEL_KEYS = ('out_channels', 'out_nc', 'num_out_ch', 'out_dim')


def check_own_sections(opt: dict):
    """The keys of every declared block (unknown, misspelled, misplaced), without their values."""
    from .option_schema.blocks import blocks_of, check_keys
    for block, value in blocks_of(opt):
        check_keys(block, value)


UINT8_METRICS = frozenset({'calculate_psnr_matlab', 'calculate_ssim_matlab'})   # score 8-bit images only


def check_val_keys(opt: dict):
    """The ``val`` block's values (the forks' ``val.rgb2bgr``, ``val.use_image`` are booleans, ...), and
    ``use_image: false`` (float images) is not combined with a metric that scores 8-bit images only."""
    from .option_schema.basicsr_blocks import ValOptions
    from .option_schema.blocks import Block, check_values, model_parts
    val = opt.get('val') or {}
    check_values(Block('val', (ValOptions,) + model_parts('val')), val)
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


def _check_type(registry, kind: str, where: str, name):
    from ..errors import unknown_name_message
    if name not in registry:
        raise OptionError(f'{where}: {unknown_name_message(kind, name, registry.keys())}')


def check_network_keys(net_opt: dict, where: str = 'network_g'):
    """The keys of a network block against its architecture's constructor signature (the declaration of
    ``network_g``): misplaced GPU-training options, the annotated types, and unknown keys with the closest name.
    ``GLMHASwap``'s ``base`` is checked as a network block of its own."""
    from basicsr.utils.registry import ARCH_REGISTRY

    from .option_schema.network import check_network_arguments
    name = net_opt.get('type')
    _check_type(ARCH_REGISTRY, 'arch', f'{where}.type', name)
    cls = ARCH_REGISTRY.get(name)
    check_network_arguments(net_opt, where)
    params = inspect.signature(cls).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        for key in net_opt:
            if key != 'type' and key not in params:
                raise OptionError(f'{where}: {name} has no option {key!r}.{did_you_mean(key, params)} Valid options: '
                                  f'{", ".join(params)}')
    base = net_opt.get('base')
    if name == 'GLMHASwap' and isinstance(base, dict) and base.get('type') in ARCH_REGISTRY:
        check_network_keys(base, f'{where}.base')


def build_network_checked(net_opt: dict, where: str = 'network_g'):
    """Build ``net_opt`` through basicsr after :func:`check_network_keys`, turning constructor errors into
    OptionError."""
    from basicsr.utils.registry import ARCH_REGISTRY
    check_network_keys(net_opt, where)
    net_opt = dict(net_opt)
    cls = ARCH_REGISTRY.get(net_opt.pop('type'))
    try:
        return cls(**net_opt)
    except (ValueError, TypeError) as exc:
        raise OptionError(f'{where} ({cls.__name__}): {exc}') from None


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


def check_dataset(phase: str, ds_opt: dict, in_channels=None, scale: int = 1, out_channels=None,
                  metrics: bool = False) -> int:
    """Folders, pairing, the first sample, its channel counts and every file's header for one dataset entry;
    ``metrics``: the entry's samples are scored (validation / test metrics), so they need ground truth.
    Returns the number of samples."""
    from basicsr.utils.registry import DATASET_REGISTRY

    from ..data.file_check import DataFileError, check_dataset_files
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
    except Exception as exc:  # noqa: BLE001  basicsr reports these as asserts / attribute errors
        bad = _unreadable_images(dataset)
        if bad:
            raise OptionError(f'{where}: cannot decode image {bad!r} (corrupt or not an image): replace or '
                              f'remove it (and its partner)') from None
        raise OptionError(f'{where}: cannot read the data ({type(exc).__name__}: {exc})') from None
    sample = sample if isinstance(sample, dict) else {}
    lq, gt = sample.get('lq'), sample.get('gt')
    if in_channels is not None and hasattr(lq, 'shape') and lq.dim() == 3 and lq.shape[0] != in_channels:
        raise OptionError(f'{where}: samples have {lq.shape[0]} channels but network_g expects {in_channels}; '
                          f'set network_g.inp_channels (or in_channels) to {lq.shape[0]}, or convert the data')
    if out_channels is not None and hasattr(gt, 'shape') and gt.dim() == 3 and gt.shape[0] != out_channels:
        raise OptionError(f'{where}: targets have {gt.shape[0]} channels but network_g puts out {out_channels}; set '
                          f'network_g.out_channels (or out_dim) to {gt.shape[0]}, or use data with {out_channels}')
    if metrics and gt is None:
        raise OptionError(f'{where}: val.metrics are set but this dataset has no ground truth to score against (its '
                          f'samples have no "gt"); remove val.metrics to only save the outputs, or give the targets '
                          f'(e.g. dataroot_gt)')
    _check_value_range(dataset, gt, where)
    bands = out_channels if type(dataset).__name__ in ('ARAD1KDataset', 'CASSIDataset') else None
    try:
        check_dataset_files(dataset, opt, where, scale, bands)
    except DataFileError as exc:
        raise OptionError(str(exc)) from None
    return len(dataset)


def _check_value_range(dataset, gt, where: str):
    """CASSI cubes divided by ``data_range`` must lie in [0, 1] (the first scene's values; the types of all scenes
    are checked from their headers)."""
    if type(dataset).__name__ != 'CASSIDataset' or gt is None:
        return
    top = float(gt.max())
    if top > 1.001:
        raise OptionError(f'{where}: {osp.basename(dataset.paths[0])} divided by data_range {dataset.data_range:g} '
                          f'reaches {top:g}, not [0, 1]; set data_range to the full scale of the data (e.g. '
                          f'{dataset.data_range * 2 ** math.ceil(math.log2(top)):g})')


def network_channels(net_opt: dict, keys, net=None) -> Optional[int]:
    """The first of ``keys`` in a network block, else the network class's default for it, else (MST: the
    band count is ``dim``) the built network ``net``'s own input / output convolution (None: not known)."""
    from basicsr.utils.registry import ARCH_REGISTRY

    from ..archs.spectral_unet import SpectralUNet
    for key in keys:
        if key in net_opt:
            return net_opt[key]
    cls = ARCH_REGISTRY._obj_map.get(net_opt.get('type'))
    params = inspect.signature(cls).parameters if inspect.isclass(cls) else {}
    for key in keys:
        if key in params and isinstance(params[key].default, int):
            return params[key].default
    if isinstance(net, SpectralUNet):
        return net.embedding.in_channels if keys is INPUT_CHANNEL_KEYS else net.mapping.out_channels
    return None


def world_size(launcher: str) -> int:
    """Processes that share the training set: what torchrun / srun set, 1 without a launcher."""
    var = {'pytorch': 'WORLD_SIZE', 'slurm': 'SLURM_NTASKS'}.get(launcher)
    try:
        return max(1, int(os.environ.get(var, '1'))) if var else 1
    except ValueError:
        return 1


def check_epoch(opt: dict, samples: int, launcher: str = 'none'):
    """One iteration's batch must fit in an epoch: basicsr's loader drops an incomplete batch, so a batch larger
    than the epoch gives epochs without iterations and a run that "ends" at iteration 0 with random weights."""
    import torch
    train, ds = opt['train'], opt['datasets']['train']
    ratio = int(ds.get('dataset_enlarge_ratio', 1))
    world = world_size(launcher)
    accum = int(train.get('accum_iter', 1) or 1)
    num_gpu = torch.cuda.device_count() if opt.get('num_gpu') == 'auto' else int(opt.get('num_gpu') or 0)
    parallel = num_gpu if launcher == 'none' and num_gpu > 1 else 1          # DataParallel: one loader, n GPUs
    batch = int(ds['batch_size_per_gpu']) * accum * parallel
    per_rank = math.ceil(samples * ratio / world)
    if batch <= per_rank:
        return
    parts = [f'batch_size_per_gpu {ds["batch_size_per_gpu"]}'] + ([f'train.accum_iter {accum}'] if accum > 1 else []) \
        + ([f'{parallel} GPUs (DataParallel)'] if parallel > 1 else [])
    epoch = f'{samples} samples' + (f' x dataset_enlarge_ratio {ratio}' if ratio != 1 else '') \
        + (f' / {world} processes' if world > 1 else '')
    raise OptionError(f'datasets.train ({ds.get("name", "?")}): one iteration takes {" x ".join(parts)} = {batch} '
                      f'samples, but an epoch has only {per_rank} ({epoch}); basicsr drops an incomplete batch, so no '
                      f'iteration would ever run. Lower batch_size_per_gpu{" or accum_iter" if accum > 1 else ""}, or '
                      f'set dataset_enlarge_ratio: {math.ceil(batch * world / samples)}')


def check_launcher(launcher: str):
    """``--launcher pytorch`` / ``slurm`` need the environment torchrun / srun set (basicsr: KeyError 'RANK')."""
    needs = {'pytorch': ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT'),
             'slurm': ('SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_NODELIST')}.get(launcher, ())
    missing = [v for v in needs if v not in os.environ]
    if not missing:
        return
    if launcher == 'pytorch':
        raise OptionError(f'--launcher pytorch: {", ".join(missing)} not set: start the command with torchrun '
                          f'(torchrun --nproc_per_node=N -m basicsr.train -opt ... --launcher pytorch), or drop '
                          f'--launcher for one process')
    raise OptionError(f'--launcher slurm: {", ".join(missing)} not set: start the command with srun inside a slurm '
                      f'allocation, or use torchrun ... --launcher pytorch, or drop --launcher for one process')


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
    skips the checks that read the data sets and weights the file names (6 and 7), e.g. for a shipped
    option file whose data the user has yet to download.  Returns the network ``network_g`` builds.
    """
    with _basicsr_logger_untouched():
        return _check_options(opt, is_train, launcher, files)


def _check_options(opt: dict, is_train: bool, launcher: str = 'none', files: bool = True):
    from basicsr.utils.registry import LOSS_REGISTRY, METRIC_REGISTRY, MODEL_REGISTRY

    from .option_schema.blocks import blocks_of, check_keys, check_values, missing_required
    missing = missing_required(opt, is_train)
    if missing:
        raise OptionError(missing)
    if not isinstance(opt['path'], dict):
        raise OptionError("option 'path' must be a mapping (use 'path: {}' when empty)")
    check_launcher(launcher)
    _check_type(MODEL_REGISTRY, 'model', 'model_type', opt['model_type'])
    for key, loss in (opt.get('train') or {}).items():
        if key.endswith('_opt') and isinstance(loss, dict) and 'type' in loss:
            _check_type(LOSS_REGISTRY, 'loss', f'train.{key}.type', loss['type'])
    for key, metric in ((opt.get('val') or {}).get('metrics') or {}).items():
        _check_type(METRIC_REGISTRY, 'metric', f'val.metrics.{key}.type', metric.get('type'))

    for block, value in blocks_of(opt):
        check_keys(block, value)
        check_values(block, value)
    check_val_keys(opt)
    check_gpu_training(opt, is_train)
    check_num_gpu(opt['num_gpu'], launcher)
    if is_train:
        check_schedule_length(opt['train'])
    net = build_network_checked(opt['network_g'])
    net_opt = opt['network_g']
    if net_opt.get('type') == 'GLMHASwap' and isinstance(net_opt.get('base'), dict):
        net_opt = net_opt['base']   # the swapped network's own options
    in_channels = network_channels(net_opt, INPUT_CHANNEL_KEYS, net)
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
        return net
    out_channels = network_channels(net_opt, OUTPUT_CHANNEL_KEYS, net)
    metrics = bool((opt.get('val') or {}).get('metrics'))
    for phase, ds in datasets.items():
        samples = check_dataset(phase, ds, in_channels, opt.get('scale', 1), out_channels,
                                metrics=metrics and phase.split('_')[0] in ('val', 'test'))
        if is_train and phase == 'train':
            check_epoch(opt, samples, launcher)
    check_pretrained(opt, net)
    return net


# --------------------------------------------------------------------------
# GPU-training options, num_gpu, schedule length

def check_gpu_training(opt: dict, is_train: bool):
    """A ``model_type`` that implements the GPU-training options that are set (not at their defaults); their keys
    and values are declared in :mod:`glmha_plugin.models.training` and checked with every other block."""
    from basicsr.utils.registry import MODEL_REGISTRY

    from ..models.training import GPUTrainingMixin
    from .option_schema.blocks import model_blocks
    from .option_schema.values import declared
    used = []
    for path, part in GPUTrainingMixin.declared_options.items():
        if path == 'train' and not is_train:
            continue
        block = opt if path == '' else (opt.get(path) or {})
        for key, option in declared(part).items():
            if block.get(key) is not None and block[key] != option.default:
                used.append(f'{path}.{key}' if path else key)
    model = MODEL_REGISTRY._obj_map.get(opt.get('model_type'))
    implemented = all(part in model_blocks(model).get(path, ()) for path, part in
                      GPUTrainingMixin.declared_options.items())
    if used and model is not None and not implemented:
        them = 'it' if len(used) == 1 else 'them'
        raise OptionError(f'{", ".join(used)}: model_type {opt["model_type"]} does not implement {them} and would '
                          f'ignore {them}; use model_type ImageCleanModel (image restoration; the same training as '
                          f'SRModel plus these options), SpectralReconModel or CASSIModel')


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
