"""Every option block the plugin reads or checks, declared once: typed, with its default and one line each.

An option block is a standard-library dataclass; each field is one key::

    total_iter: Annotated[int, '>= 1', 'required to train', 'training length in iterations'] = None

The annotation holds the type and, as strings, the rules and the description:

* ``'>= N'``, ``'> N'``, ``'<= N'``, ``'< N'``: bounds of the numbers (of each number, for a list);
* ``'required'`` / ``'required to train'``: the key must be present (in a present block);
* ``'not empty'``: text that may not be ``''``;
* ``'also: a, b'``: other projects' names for the key (a hint names this key when a file uses them);
* any other string: the one-line description.

The default is the dataclass default; ``None`` with a type that does not allow ``None`` means "no default"
(the key is set where it is used).  Types: ``bool``, ``int`` (whole numbers; ``5000.0`` counts, as Restormer's
files write ``!!float 5e3``), ``float`` (any number), ``str``, ``Literal[...]``, ``Optional``/``Union``,
``List``/``Sequence``/``Tuple`` and ``Dict``; a field whose type is another dataclass is a nested block.

A dataclass may set ``unknown_keys`` (a ``ClassVar``) for keys it does not declare: ``'refuse'`` (the default:
a closed block, the plugin owns every key), ``'hint'`` (basicsr's blocks, whose forks read more: a key close
to a declared one is refused as a likely misspelling, others pass) or ``'pass'`` (blocks handed to the class
their ``type`` names, which checks its own keys).  A block assembled from several dataclasses takes the most
permissive setting of its parts.

Who declares what (each key once):

* this module: basicsr 1.4.2's blocks (top level, ``train``, ``val``, ``logger``, ``path``, the dataset
  loader keys, basicsr's ``PairedImageDataset``, optimizer, scheduler, losses, metrics);
* the plugin's models, in ``declared_options`` (``{block path: dataclass}``): the GPU-training options
  (:mod:`glmha_plugin.models.training`), Restormer's recipe keys (:mod:`~glmha_plugin.models.image_restoration_model`,
  :mod:`~glmha_plugin.models.mixing_augment`, :mod:`~glmha_plugin.models.progressive`);
* the plugin's datasets, in ``declared_options`` (``{'': dataclass}``, relative to their own block);
* ``network_g``: the constructor signature of the architecture ``type`` names (types and defaults from the
  signature, descriptions from its docstring); nothing is re-declared here.

:func:`check_declared` checks an option dict against the declarations (the pre-flight check,
:mod:`glmha_plugin.glue.preflight`, calls it); :func:`reference_markdown` writes the reference of every option
that ``docs/options.md`` carries (``glmha options reference``).
"""
import dataclasses
import inspect
from collections import abc
import math
import re
import typing
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Dict, Iterator, List, Literal, Optional, Sequence, Tuple, Union

from ..data.paired_image_dataset import IOBackendOptions
from ..errors import OptionError, did_you_mean

Annotated = typing.Annotated


# ------------------------------------------------------------------------------------------------------------
# basicsr 1.4.2's blocks (basicsr/train.py, test.py, utils/options.py, data/__init__.py, models/sr_model.py, ...)

@dataclass(frozen=True)
class OptimizerOptions:
    """``train.optim_g`` (and ``optim_d``): the optimizer; its other keys go to the optimizer class."""
    unknown_keys: ClassVar[str] = 'pass'
    type: Annotated[str, 'required', 'optimizer class: a torch.optim name (ImageCleanModel: any of them; '
                    "basicsr's SRModel: Adam, AdamW)"] = None
    lr: Annotated[float, '> 0', 'required', 'learning rate'] = None
    weight_decay: Annotated[float, '>= 0', 'weight decay'] = 0
    betas: Annotated[Tuple[float, float], '>= 0', '< 1', "Adam's coefficients of the running averages"] = (0.9, 0.999)


@dataclass(frozen=True)
class SchedulerOptions:
    """``train.scheduler``: the learning-rate schedule; its other keys go to the scheduler class."""
    unknown_keys: ClassVar[str] = 'pass'
    type: Annotated[str, 'required', "MultiStepLR, MultiStepRestartLR, CosineAnnealingRestartLR (basicsr) or "
                    "CosineAnnealingRestartCyclicLR (Restormer's)"] = None
    periods: Annotated[List[int], '>= 1', 'cosine schedules: iterations of each period (their sum should cover '
                       'train.total_iter)'] = None
    restart_weights: Annotated[List[float], '>= 0', 'cosine schedules: learning-rate factor at each restart'] = None
    eta_min: Annotated[float, '>= 0', 'CosineAnnealingRestartLR: the lowest learning rate'] = None
    eta_mins: Annotated[List[float], '>= 0', 'CosineAnnealingRestartCyclicLR: the lowest learning rate of each '
                        'period'] = None
    milestones: Annotated[List[int], '>= 1', 'MultiStepLR: iterations at which the learning rate drops'] = None
    gamma: Annotated[float, '> 0', 'MultiStepLR: factor of each drop'] = None


@dataclass(frozen=True)
class LossOptions:
    """``train.<name>_opt``: a loss (``pixel_opt``, ``perceptual_opt``, ...); its other keys go to the loss class."""
    unknown_keys: ClassVar[str] = 'pass'
    type: Annotated[str, 'required', 'registered loss, e.g. L1Loss, MSELoss, MRAELoss, RMSELoss'] = None
    loss_weight: Annotated[float, 'weight of this loss in the total'] = 1.0
    reduction: Annotated[Literal['none', 'mean', 'sum'], 'how the loss of a batch is reduced'] = 'mean'


@dataclass(frozen=True)
class TrainOptions:
    """``train``: the training settings."""
    unknown_keys: ClassVar[str] = 'hint'
    total_iter: Annotated[int, '>= 1', 'required to train', 'training length in iterations (optimizer steps)'] = None
    optim_g: Annotated[OptimizerOptions, 'required to train', "the network's optimizer"] = None
    scheduler: Annotated[SchedulerOptions, 'required to train', 'the learning-rate schedule'] = None
    warmup_iter: Annotated[int, '>= -1', 'iterations of linear learning-rate warm-up; -1: none'] = -1
    ema_decay: Annotated[float, '>= 0', '< 1', 'decay of the EMA copy of the network (validated and saved as '
                         'params_ema); 0: no EMA'] = 0
    pixel_opt: Annotated[Optional[LossOptions], 'the pixel loss'] = None
    perceptual_opt: Annotated[Optional[LossOptions], "a perceptual loss (basicsr's PerceptualLoss)"] = None
    gan_opt: Annotated[Optional[LossOptions], "basicsr's GAN models: the adversarial loss"] = None
    optim_d: Annotated[Optional[OptimizerOptions], "basicsr's GAN models: the discriminator's optimizer"] = None
    net_d_iters: Annotated[int, '>= 1', "basicsr's GAN models: generator steps per discriminator step"] = 1
    net_d_init_iters: Annotated[int, '>= 0', "basicsr's GAN models: discriminator-only iterations first"] = 0


@dataclass(frozen=True)
class MetricOptions:
    """``val.metrics.<name>``: one metric; its other keys go to the metric function."""
    unknown_keys: ClassVar[str] = 'pass'
    type: Annotated[str, 'required', 'registered metric, e.g. calculate_psnr, calculate_ssim_matlab, '
                    'calculate_mrae'] = None
    crop_border: Annotated[int, '>= 0', 'pixels cut from each border before scoring'] = None
    test_y_channel: Annotated[bool, 'score the Y channel of YCbCr instead of RGB'] = False
    better: Annotated[Literal['higher', 'lower'], 'which way the best value is tracked (MRAE, RMSE, SAM: '
                      'lower)'] = 'higher'


@dataclass(frozen=True)
class ValOptions:
    """``val``: validation during training, and the settings of a test run."""
    unknown_keys: ClassVar[str] = 'hint'
    val_freq: Annotated[int, '>= 1', 'training: iterations between validations'] = None
    save_img: Annotated[bool, 'required', 'save the restored images (spectral models: .mat cubes)'] = None
    suffix: Annotated[Optional[str], 'suffix of saved image names in a test run (default: the experiment '
                      'name)'] = None
    pbar: Annotated[bool, 'show a progress bar'] = False
    metrics: Annotated[Optional[Dict[str, MetricOptions]], 'metrics by name (omit to only save images)'] = None


@dataclass(frozen=True)
class WandbOptions:
    """``logger.wandb``: Weights & Biases logging (basicsr's)."""
    unknown_keys: ClassVar[str] = 'hint'
    project: Annotated[Optional[str], 'project name; ~: off'] = None
    resume_id: Annotated[Optional[str], 'run id to resume'] = None


@dataclass(frozen=True)
class LoggerOptions:
    """``logger``: logging and checkpoints during training."""
    unknown_keys: ClassVar[str] = 'hint'
    print_freq: Annotated[int, '>= 1', 'required to train', 'iterations between log lines'] = None
    save_checkpoint_freq: Annotated[int, '>= 1', 'required to train', 'iterations between saved weights and '
                                    'training states'] = None
    use_tb_logger: Annotated[bool, 'required to train', 'TensorBoard logging (tb_logger/<name>)'] = None
    wandb: Annotated[Optional[WandbOptions], 'Weights & Biases logging (needs use_tb_logger: true)'] = None


@dataclass(frozen=True)
class PathOptions:
    """``path``: weights to start from and where a run writes (basicsr adds the output folders)."""
    unknown_keys: ClassVar[str] = 'hint'
    pretrain_network_g: Annotated[Optional[str], 'weights to load into network_g (checked before the run)'] = None
    param_key_g: Annotated[str, 'key of the weights in that file (params_ema: the EMA weights)'] = 'params'
    strict_load_g: Annotated[bool, 'every key and shape must fit network_g'] = True
    resume_state: Annotated[Optional[str], 'a .state file to resume training from (or use --auto_resume)'] = None
    pretrain_network_d: Annotated[Optional[str], "basicsr's GAN models: weights of the discriminator"] = None
    param_key_d: Annotated[str, "basicsr's GAN models: key of the discriminator's weights"] = 'params'
    strict_load_d: Annotated[bool, "basicsr's GAN models: strict loading of the discriminator"] = True
    experiments_root: Annotated[Optional[str], 'set by basicsr: experiments/<name>'] = None
    results_root: Annotated[Optional[str], 'set by basicsr: results/<name> (testing)'] = None
    models: Annotated[Optional[str], 'set by basicsr: where weights are saved'] = None
    training_states: Annotated[Optional[str], 'set by basicsr: where training states are saved'] = None
    log: Annotated[Optional[str], 'set by basicsr: where the log file goes'] = None
    visualization: Annotated[Optional[str], 'set by basicsr: where images are saved'] = None


@dataclass(frozen=True)
class DistParamsOptions:
    """``dist_params``: the process group of ``--launcher pytorch|slurm`` (basicsr's ``init_dist``)."""
    unknown_keys: ClassVar[str] = 'pass'
    backend: Annotated[str, 'torch.distributed backend (the plugin uses gloo on machines without a GPU)'] = 'nccl'
    port: Annotated[int, '>= 1', '--launcher slurm: the master port'] = 29500


@dataclass(frozen=True)
class NetworkOptions:
    """``network_g``: the architecture; its other keys are the arguments of its constructor (listed below)."""
    unknown_keys: ClassVar[str] = 'pass'   # the constructor's signature decides (preflight.build_network_checked)
    type: Annotated[str, 'required', 'registered architecture'] = None


@dataclass(frozen=True)
class DatasetOptions:
    """``datasets.<phase>``: the keys basicsr itself reads from every dataset block."""
    name: Annotated[str, 'required', 'name of the data set in logs and result folders'] = None
    type: Annotated[str, 'required', 'registered dataset'] = None
    batch_size_per_gpu: Annotated[int, '>= 1', 'train: samples per GPU per iteration (per micro-batch with '
                                  'train.accum_iter)'] = None
    num_worker_per_gpu: Annotated[int, '>= 0', 'train: DataLoader worker processes per GPU'] = None
    use_shuffle: Annotated[bool, 'train: shuffle the samples'] = True
    dataset_enlarge_ratio: Annotated[int, '>= 1', 'train: each epoch repeats the data this many times'] = 1
    prefetch_mode: Annotated[Optional[Literal['cpu', 'cuda']], 'train: ~, cpu or cuda (cuda needs '
                             'pin_memory: true)'] = None
    pin_memory: Annotated[bool, 'page-locked host memory for the batches'] = False
    persistent_workers: Annotated[bool, 'keep DataLoader workers between epochs'] = False
    num_prefetch_queue: Annotated[int, '>= 1', 'prefetch_mode cpu: batches prefetched'] = 1
    phase: Annotated[Optional[str], 'set by basicsr: train, val or test'] = None
    scale: Annotated[Optional[int], '>= 1', 'set by basicsr: the top-level scale'] = None


@dataclass(frozen=True)
class BasicsrPairedImageOptions:
    """``datasets.<phase>`` with ``type: PairedImageDataset`` (basicsr's paired images)."""
    unknown_keys: ClassVar[str] = 'hint'
    dataroot_gt: Annotated[str, 'required', 'target images (folder or .lmdb)'] = None
    dataroot_lq: Annotated[str, 'required', 'input images (folder or .lmdb)'] = None
    io_backend: Annotated[IOBackendOptions, 'required', 'how the images are read'] = None
    filename_tmpl: Annotated[str, 'input name from the target name (same extension)'] = '{}'
    meta_info_file: Annotated[Optional[str], 'a list of the image names to use'] = None
    gt_size: Annotated[int, '>= 1', 'train: patch side (random crop)'] = None
    use_hflip: Annotated[bool, 'train: random horizontal flips'] = False
    use_rot: Annotated[bool, 'train: random rotations (90 degrees, and vertical flips)'] = False
    mean: Annotated[Optional[List[float]], 'per-channel mean subtracted from the images'] = None
    std: Annotated[Optional[List[float]], 'per-channel standard deviation the images are divided by'] = None
    color: Annotated[Optional[Literal['y']], 'y: the Y channel only'] = None


@dataclass(frozen=True)
class OtherDatasetOptions:
    """``datasets.<phase>`` of a dataset the plugin does not declare: its keys go to its class."""
    unknown_keys: ClassVar[str] = 'pass'


@dataclass(frozen=True)
class TopLevelOptions:
    """The top level of an option file."""
    unknown_keys: ClassVar[str] = 'hint'
    name: Annotated[str, 'required', 'not empty', 'experiment name: experiments/<name> (training), results/<name> '
                    '(testing)'] = None
    model_type: Annotated[str, 'required', 'registered model, e.g. ImageCleanModel'] = None
    num_gpu: Annotated[Union[Literal['auto'], int], '>= 0', 'required', 'GPUs: auto (every visible GPU, the CPU '
                       'when there is none) or a number (0: the CPU)'] = None
    datasets: Annotated[Dict[str, DatasetOptions], 'required', 'the data: one block per phase (train, val, val_*, '
                        'test_*)'] = None
    network_g: Annotated[NetworkOptions, 'required', 'the network: type and its constructor arguments'] = None
    path: Annotated[PathOptions, 'required', 'weights to load, resume state (use path: {} when empty)'] = None
    train: Annotated[TrainOptions, 'required to train', 'the training settings'] = None
    logger: Annotated[LoggerOptions, 'required to train', 'logging and checkpoints'] = None
    val: Annotated[Optional[ValOptions], 'validation (training) and the scoring of a test run'] = None
    scale: Annotated[int, '>= 1', 'upscaling factor (1 for restoration); basicsr copies it into each '
                     'dataset'] = 1
    manual_seed: Annotated[Optional[int], '>= 0', 'random seed (basicsr draws one when it is absent)'] = None
    dist_params: Annotated[Optional[DistParamsOptions], 'distributed training with --launcher pytorch|slurm'] = None
    find_unused_parameters: Annotated[bool, 'DDP: find parameters without gradients'] = False
    network_d: Annotated[Optional[dict], "basicsr's GAN models: the discriminator (not used by the plugin's "
                         'models)'] = None
    is_train: Annotated[Optional[bool], 'set by basicsr: training or testing'] = None
    dist: Annotated[Optional[bool], 'set by basicsr: distributed run'] = None
    rank: Annotated[Optional[int], 'set by basicsr: rank of this process'] = None
    world_size: Annotated[Optional[int], 'set by basicsr: number of processes'] = None
    auto_resume: Annotated[Optional[bool], 'set by basicsr: --auto_resume'] = None
    root_path: Annotated[Optional[str], 'set by basicsr: the folder experiments/ and results/ go under'] = None


# Blocks whose dataclass depends on a key of the option file rather than on a field type.
DATASET_BLOCK = 'datasets.<phase>'
LOSS_SUFFIX = '_opt'          # train.<name>_opt: a loss block (basicsr's convention)
BASICSR_DATASETS = {'PairedImageDataset': BasicsrPairedImageOptions}


# ------------------------------------------------------------------------------------------------------------
# Reading the declarations

@dataclass(frozen=True)
class Option:
    """One declared key."""
    key: str
    type: Any                       # the annotation without its Annotated strings
    default: Any
    doc: str
    bounds: Tuple[Tuple[str, float], ...] = ()
    required: str = ''              # '' | 'always' | 'train'
    not_empty: bool = False
    aliases: Tuple[str, ...] = ()
    owner: Any = None               # the dataclass (None: a constructor argument)

    @property
    def has_default(self) -> bool:
        return not self.required and (self.default is not None or allows_none(self.type))

    def child(self):
        """The dataclass of a nested block (``X``, ``Optional[X]``), the ``Dict`` value dataclass, or None."""
        return nested_block(self.type)


BOUND = re.compile(r'^(>=|>|<=|<)\s*(-?[0-9.]+(?:e-?[0-9]+)?)$')


def parse_annotation(key: str, hint, default=None, owner=None) -> Option:
    """An :class:`Option` from a field's (possibly ``Annotated``) annotation; see the module docstring."""
    if typing.get_origin(hint) is not Annotated:
        return Option(key, hint, default, '', owner=owner)
    tp, *marks = typing.get_args(hint)
    docs, bounds, required, not_empty, aliases = [], [], '', False, ()
    for mark in marks:
        if not isinstance(mark, str):
            continue
        bound = BOUND.match(mark)
        if bound:
            bounds.append((bound.group(1), float(bound.group(2))))
        elif mark in ('required', 'required to train'):
            required = 'always' if mark == 'required' else 'train'
        elif mark == 'not empty':
            not_empty = True
        elif mark.startswith('also: '):
            aliases = tuple(a.strip() for a in mark[len('also: '):].split(','))
        else:
            docs.append(mark)
    if len(docs) != 1:
        raise TypeError(f'{getattr(owner, "__qualname__", owner)}.{key}: declare exactly one description string, '
                        f'got {docs}')
    return Option(key, tp, default, docs[0], tuple(bounds), required, not_empty, aliases, owner)


@lru_cache(maxsize=None)
def declared(cls) -> Dict[str, Option]:
    """The options a block dataclass declares, in declaration order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: parse_annotation(f.name, hints[f.name], f.default, cls) for f in dataclasses.fields(cls)}


def unknown_keys_mode(parts: Sequence[type]) -> str:
    """How a block made of ``parts`` treats keys none of them declares (module docstring)."""
    modes = {getattr(p, 'unknown_keys', None) for p in parts}
    for mode in ('pass', 'hint', 'refuse'):
        if mode in modes:
            return mode
    return 'refuse'


def allows_none(tp) -> bool:
    return tp is Any or tp is type(None) or (typing.get_origin(tp) is Union and type(None) in typing.get_args(tp))


def nested_block(tp):
    """The dataclass of a nested block type (``X``, ``Optional[X]``, ``Dict[str, X]``), else None."""
    if dataclasses.is_dataclass(tp):
        return tp
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is Union:
        found = [nested_block(a) for a in args if a is not type(None)]
        return found[0] if len(found) == 1 else None
    if _is_subclass(origin, abc.Mapping) and len(args) == 2 and dataclasses.is_dataclass(args[1]):
        return args[1]
    return None


def is_mapping_of_blocks(tp) -> bool:
    """``Dict[str, X]`` with X a dataclass (``datasets``, ``val.metrics``): a block per entry."""
    tp = _strip_none(tp)
    args = typing.get_args(tp)
    return _is_subclass(typing.get_origin(tp), abc.Mapping) and len(args) == 2 and dataclasses.is_dataclass(args[1])


def _strip_none(tp):
    if typing.get_origin(tp) is Union:
        arms = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(arms) == 1:
            return arms[0]
    return tp


# ------------------------------------------------------------------------------------------------------------
# Values against types

def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def _whole(v) -> bool:
    return _number(v) and not math.isinf(v) and float(v).is_integer()


def _in_bounds(v, bounds) -> bool:
    ops = {'>=': lambda a, b: a >= b, '>': lambda a, b: a > b, '<=': lambda a, b: a <= b, '<': lambda a, b: a < b}
    return all(ops[op](v, b) for op, b in bounds)


def conforms(value, tp, bounds=(), not_empty=False) -> bool:
    """Whether ``value`` (as YAML gives it) is of type ``tp`` within ``bounds``; unknown types accept anything."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object or isinstance(tp, (str, typing.TypeVar)):
        return True
    if tp is type(None):
        return value is None
    if origin is Union:
        return any(conforms(value, a, bounds, not_empty) for a in args)
    if origin is Literal:
        return any(value == a and type(value) is type(a) for a in args)
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return _whole(value) and _in_bounds(value, bounds)
    if tp is float:
        return _number(value) and _in_bounds(value, bounds)
    if tp is str:
        return isinstance(value, str) and not (not_empty and value == '')
    if dataclasses.is_dataclass(tp) or tp is dict:
        return isinstance(value, dict)
    if _is_subclass(origin, abc.Mapping):
        if not isinstance(value, dict):
            return False
        if len(args) == 2:
            return all(conforms(k, args[0]) and conforms(v, args[1], bounds) for k, v in value.items())
        return True
    if tp in (list, tuple):
        return isinstance(value, (list, tuple))
    if _is_subclass(origin, abc.Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        if origin is tuple and args and args[-1] is not Ellipsis:
            return len(value) == len(args) and all(conforms(v, a, bounds) for v, a in zip(value, args))
        return all(conforms(v, args[0], bounds) for v in value) if args else True
    return True   # a type this reader does not know (e.g. a class): the constructor checks it


def _is_subclass(origin, base) -> bool:
    """``origin`` (of a generic alias: ``list`` for ``List[int]``) is a ``base`` other than text."""
    return isinstance(origin, type) and issubclass(origin, base) and not issubclass(origin, (str, bytes))


def _bound_words(bounds) -> str:
    return ' and '.join(f'{op} {b:g}' for op, b in bounds)


def describe(tp, bounds=(), not_empty=False) -> str:
    """What a value of type ``tp`` is, in words: ``a whole number >= 1``, ``true or false``, ..."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    within = f' {_bound_words(bounds)}' if bounds else ''
    if tp is Any or tp is object:
        return 'anything'
    if tp is type(None):
        return '~'
    if origin is Union:
        arms = [a for a in args if a is not type(None)]
        if int in arms and float in arms:
            arms.remove(int)
        words = []
        for a in arms:
            w = describe(a, bounds, not_empty)
            if w not in words:
                words.append(w)
        return ' or '.join(words) if words else '~'
    if origin is Literal:
        return str(args[0]) if len(args) == 1 else 'one of ' + ', '.join(str(a) for a in args)
    if tp is bool:
        return 'true or false'
    if tp is int:
        return 'a whole number' + within
    if tp is float:
        return 'a number' + within
    if tp is str:
        return 'text, not empty' if not_empty else 'text'
    if dataclasses.is_dataclass(tp) or tp is dict or _is_subclass(origin, abc.Mapping):
        if len(args) == 2 and not dataclasses.is_dataclass(args[1]) and args[1] is not Any:
            return f'a mapping of names to {_plural(describe(args[1], bounds))}'
        return 'a mapping'
    if tp in (list, tuple):
        return 'a list'
    if _is_subclass(origin, abc.Sequence):
        if origin is tuple and args and args[-1] is not Ellipsis:
            kinds = {describe(a, bounds) for a in args}
            if len(kinds) == 1:
                return f'a list of {len(args)} values, each {kinds.pop()}'
            return 'a list of ' + ', '.join(describe(a, bounds) for a in args)
        return f'a list of values, each {describe(args[0], bounds)}' if args else 'a list'
    return getattr(tp, '__name__', str(tp).replace('typing.', ''))


def _plural(words: str) -> str:
    return words[2:] + 's' if words.startswith('a ') and ' ' not in words[2:] else words


def yaml_text(value) -> str:
    """A value as an option file writes it."""
    if value is None:
        return '~'
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, float):
        return yaml_float(value)
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(yaml_text(v) for v in value) + ']'
    if isinstance(value, str):
        return repr(value) if value == '' or not re.match(r'^[A-Za-z_][\w./-]*$', value) else value
    return str(value)


def yaml_float(x: float) -> str:
    """``x`` as YAML 1.1 (PyYAML, so basicsr) reads a float: ``0.002``, ``1.0e-06`` (not ``1e-06``, which is text)."""
    text = repr(float(x))
    if 'e' in text:
        mantissa, exp = text.split('e')
        if '.' not in mantissa:
            mantissa += '.0'
        if exp[0] not in '+-':
            exp = '+' + exp
        text = f'{mantissa}e{exp}'
    return text


# a number YAML 1.1 reads as text: an exponent without a dot in the mantissa or without a sign
EXPONENT_TEXT = re.compile(r'^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$')


def _wants(tp, kind) -> bool:
    origin = typing.get_origin(tp)
    if origin is Union:
        return any(_wants(a, kind) for a in typing.get_args(tp))
    return tp is kind or (kind is float and tp is int)


def value_error(key: str, value, option: Option) -> Optional[str]:
    """The one-line message for a value that breaks its declaration (None when it conforms)."""
    if conforms(value, option.type, option.bounds, option.not_empty):
        return None
    expect = describe(option.type, option.bounds, option.not_empty)
    got = 'nothing (~)' if value is None else repr(value)
    leaf = key.rsplit('.', 1)[-1]
    fix = ''
    if isinstance(value, str) and (_wants(option.type, float) or _wants(option.type, int)):
        try:
            number = float(value.replace('_', ''))
        except ValueError:
            number = None
        if number is not None:
            fixed = int(number) if _wants(option.type, int) and _whole(number) and not _wants(option.type, float) \
                else number
            if conforms(fixed, option.type, option.bounds):
                written = yaml_text(fixed)
                fix = (f'write {leaf}: {written} (YAML 1.1, which PyYAML and basicsr follow, reads {value} as text)'
                       if EXPONENT_TEXT.match(value.strip()) else f'write {leaf}: {written} without quotes')
    elif isinstance(value, str) and _wants(option.type, bool) and value.strip().lower() in ('true', 'false'):
        fix = f'write {leaf}: {value.strip().lower()} without quotes'
    elif isinstance(value, str) and typing.get_origin(_strip_none(option.type)) is Literal:
        return (f'{key} must be {expect}, got {got}.'
                f'{did_you_mean(value, [str(a) for a in typing.get_args(_strip_none(option.type))], 0.6)}')
    if not fix:
        fix = (f'remove it for the default ({yaml_text(option.default)})' if option.has_default
               else f'{leaf}: {option.doc}' if option.doc else f'see {key} in docs/options.md')
    return f'{key} must be {expect}, got {got}; {fix}'


# ------------------------------------------------------------------------------------------------------------
# The blocks of an option file

def plugin_models() -> Dict[str, type]:
    """Registered models that declare options (the plugin's), by name."""
    from basicsr.utils.registry import MODEL_REGISTRY
    return {n: c for n, c in sorted(MODEL_REGISTRY._obj_map.items()) if model_blocks(c)}


def model_blocks(model_cls) -> Dict[str, Tuple[type, ...]]:
    """``{block path: dataclasses}`` that a model class and its bases declare in ``declared_options``."""
    blocks: Dict[str, Tuple[type, ...]] = {}
    for klass in reversed(getattr(model_cls, '__mro__', ())):
        for path, part in (vars(klass).get('declared_options') or {}).items():
            if part not in blocks.get(path, ()):
                blocks[path] = blocks.get(path, ()) + (part,)
    return blocks


def model_parts(path: str) -> Tuple[type, ...]:
    """The dataclasses the plugin's models add to the block at ``path`` (all models: a key is known whichever model
    reads it; whether the chosen model implements a lever is checked apart)."""
    parts: List[type] = []
    for model in plugin_models().values():
        for part in model_blocks(model).get(path, ()):
            if part not in parts:
                parts.append(part)
    return tuple(parts)


def dataset_parts(ds_type) -> Tuple[type, ...]:
    """The dataclasses of a dataset block's own keys, by its ``type``."""
    from basicsr.utils.registry import DATASET_REGISTRY
    cls = DATASET_REGISTRY._obj_map.get(ds_type)
    own = (getattr(cls, 'declared_options', None) or {}).get('')
    if own is not None:
        return (own, )
    return (BASICSR_DATASETS.get(ds_type, OtherDatasetOptions), )


@dataclass(frozen=True)
class Block:
    """An option block as the check sees it: where it is and the dataclasses that declare its keys."""
    path: str                        # dotted path in the file ('' is the top level)
    parts: Tuple[type, ...]
    label: str = ''                  # how messages name it (default: the path)

    @property
    def options(self) -> Dict[str, Option]:
        merged: Dict[str, Option] = {}
        for part in self.parts:
            for key, option in declared(part).items():
                merged.setdefault(key, option)
        return merged

    @property
    def mode(self) -> str:
        return unknown_keys_mode(self.parts)

    @property
    def name(self) -> str:
        return self.label or self.path or 'the top level'


def _join(path: str, key: str) -> str:
    return f'{path}.{key}' if path else str(key)


def blocks_of(opt: dict) -> Iterator[Tuple[Block, dict]]:
    """Every declared block present in ``opt`` with its value, parents first (``network_g``'s arguments are the
    architecture's and not walked here)."""
    yield from _walk(Block('', (TopLevelOptions,) + model_parts('')), opt)


def _walk(block: Block, value: dict) -> Iterator[Tuple[Block, dict]]:
    yield block, value
    options = block.options
    for key, sub in value.items():
        option = options.get(key)
        path = _join(block.path, key)
        if option is None:
            if block.path == 'train' and str(key).endswith(LOSS_SUFFIX) and isinstance(sub, dict):
                yield from _walk(Block(path, (LossOptions,)), sub)
            continue
        if not isinstance(sub, dict):
            continue
        child = option.child()
        if child is None:
            continue
        if is_mapping_of_blocks(option.type):
            for name, entry in sub.items():
                if not isinstance(entry, dict):
                    continue
                entry_path = _join(path, name)
                if child is DatasetOptions:
                    parts = (DatasetOptions,) + dataset_parts(entry.get('type')) + model_parts(entry_path)
                    label = f'{entry_path} ({entry.get("type")})'
                    yield from _walk(Block(entry_path, parts, label), entry)
                else:
                    yield from _walk(Block(entry_path, (child,) + model_parts(entry_path)), entry)
        elif child is not NetworkOptions:
            yield from _walk(Block(path, (child,) + model_parts(path)), sub)


# ------------------------------------------------------------------------------------------------------------
# The check

def lever_places() -> Dict[str, str]:
    """Where each GPU-training option goes (``{key: block path}``): a lever found in another block is named as
    misplaced (traiNNer-redux puts ``accum_iter`` under ``datasets.train``)."""
    from ..models.training import GPUTrainingMixin
    places = {key: path for path, part in GPUTrainingMixin.declared_options.items() for key in declared(part)}
    places['use_checkpoint'] = 'network_g'   # every plugin architecture's constructor argument
    return places


def misplaced_message(key: str, path: str) -> Optional[str]:
    place = lever_places().get(key)
    if place is None or place == path:
        return None
    where = f'in {path}' if path else 'at the top level'
    target = _join(place, key)
    return f'{key} {where} is a {place or "top-level"} option here; move it to {target}'


def hint(key: str, options: Dict[str, Option], prefix: str = '', cutoff: float = 0.8) -> str:
    """`` Did you mean ...?`` for a misspelt key: other projects' names first, then difflib."""
    for name, option in options.items():
        if key in option.aliases:
            return f' Did you mean {prefix + name!r}?'
    return did_you_mean(key, sorted(options), cutoff, prefix)


def check_keys(block: Block, value: dict):
    """OptionError for a key ``block`` does not declare, as its ``unknown_keys`` mode says."""
    options, mode = block.options, block.mode
    for key in value:
        if key in options or (block.path == 'train' and str(key).endswith(LOSS_SUFFIX)):
            continue
        moved = misplaced_message(str(key), block.path)
        if moved:
            raise OptionError(moved)
        if mode == 'refuse':
            raise OptionError(f'{block.name}: unknown option {key!r}.{hint(str(key), options, cutoff=0.6)} Valid '
                              f'options: {", ".join(sorted(options))}')
        if mode == 'hint':
            if block.path == '':
                close = hint(str(key), options)
                if close:
                    raise OptionError(f'unknown top-level option {key!r}.{close} (every option: docs/options.md, '
                                      f'glmha options reference)')
            else:
                close = hint(str(key), options, prefix=block.path + '.')
                if close:
                    raise OptionError(f'{block.path}.{key}: unknown option.{close}')


def check_values(block: Block, value: dict):
    """OptionError for the first value in ``block`` that breaks its declaration."""
    options = block.options
    for key, sub in value.items():
        option = options.get(key)
        if option is None:
            continue
        message = value_error(_join(block.path, key), sub, option)
        if message:
            raise OptionError(message)


def missing_required(opt: dict, is_train: bool) -> Optional[str]:
    """The first required key that is absent (declaration order, parents first), as a dotted path."""
    for block, value in blocks_of(opt):
        for key, option in block.options.items():
            if option.required == 'always' or (option.required == 'train' and is_train):
                if key not in value:
                    return _join(block.path, key)
                if option.type is NetworkOptions and isinstance(value[key], dict) and 'type' not in value[key]:
                    return _join(_join(block.path, key), 'type')
    return None


def check_declared(opt: dict, is_train: bool = True):
    """OptionError for the first declared rule ``opt`` breaks: required keys, then, block by block, unknown keys
    (module docstring) and values.  ``network_g``'s arguments: :func:`check_network_arguments`."""
    missing = missing_required(opt, is_train)
    if missing:
        raise OptionError(f'option {missing!r} is missing (basicsr needs it)')
    for block, value in blocks_of(opt):
        check_keys(block, value)
        check_values(block, value)


# ------------------------------------------------------------------------------------------------------------
# network_g: the constructor's signature is the declaration

def _callable_of(cls):
    return cls.__init__ if inspect.isclass(cls) else cls


def network_arguments(cls) -> Dict[str, Option]:
    """The constructor arguments of an architecture as options: type and default from the signature, the
    description from the docstrings of the class and its bases (:func:`argument_docs`)."""
    try:
        hints = typing.get_type_hints(_callable_of(cls))
    except Exception:   # annotations that do not resolve: checked by the constructor alone
        hints = {}
    docs = argument_docs(cls)
    args = {}
    for name, p in inspect.signature(cls).parameters.items():
        if p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
            continue
        tp = hints.get(name, Any)
        default = None if p.default is p.empty else p.default
        args[name] = Option(name, tp, default, docs.get(name, ''), required='always' if p.default is p.empty else '')
    return args


def check_network_arguments(net_opt: dict, where: str = 'network_g'):
    """The keys of a network block against its architecture's signature: misplaced GPU-training options, then
    the types the signature declares (keys the signature lacks: :func:`~.preflight.build_network_checked`)."""
    from basicsr.utils.registry import ARCH_REGISTRY
    cls = ARCH_REGISTRY._obj_map.get(net_opt.get('type'))
    if cls is None:
        return
    args = network_arguments(cls)
    for key, value in net_opt.items():
        if key == 'type':
            continue
        if key not in args:
            moved = misplaced_message(str(key), where)
            if moved:
                raise OptionError(moved)
            continue
        message = value_error(f'{where}.{key}', value, args[key])
        if message:
            raise OptionError(message)


ARGS_HEADER = re.compile(r'^\s*Args(?:\s*\(([^)]*)\))?:\s*(.*)$')
ARG_LINE = re.compile(r'^(\s+)(\w+(?:\s*/\s*\w+)*):\s+(.*)$')


def _clean(text: str) -> str:
    """One line of docstring text in Markdown: rst roles and literals as code, whitespace collapsed."""
    text = re.sub(r':\w+:`~?(?:[\w.]+\.)?([\w]+)`', r'`\1`', text)
    text = text.replace('``', '`')
    return ' '.join(text.split()).rstrip(';,.')


def _split_items(text: str) -> List[str]:
    """Top-level comma/semicolon separated items (not inside parentheses or backquotes)."""
    items, depth, quoted, current = [], 0, False, ''
    for ch in text:
        if ch == '`':
            quoted = not quoted
        elif not quoted and ch == '(':
            depth += 1
        elif not quoted and ch == ')':
            depth -= 1
        if ch in ',;' and depth == 0 and not quoted:
            items.append(current)
            current = ''
        else:
            current += ch
    return items + [current]


def _item_docs(text: str, group: str) -> Dict[str, Tuple[str, str]]:
    """``name (description)`` items of an inline ``Args (group): a, b (desc), c / d (desc).`` paragraph."""
    docs = {}
    for item in _split_items(text.strip().rstrip('.')):
        m = re.match(r'^\s*(\w+(?:\s*/\s*\w+)*)\s*(?:\((.*)\))?\s*$', item, re.S)
        if not m:
            continue
        for name in re.split(r'\s*/\s*', m.group(1)):
            docs[name] = (_clean(m.group(2) or ''), group)
    return docs


def argument_docs(cls) -> Dict[str, str]:
    """Descriptions of constructor arguments from ``Args`` sections of the docstrings of ``cls`` and its bases:
    Google style (``name: text`` lines, ``a / b: text`` for several) or inline (``Args (group): a, b (text)``).
    An argument listed without a text (or with its default value only) gets its group: ``Restormer's own
    argument``."""
    found: Dict[str, Tuple[str, str]] = {}
    for klass in getattr(cls, '__mro__', (cls,)):
        for name, entry in _docstring_args(inspect.getdoc(klass) or '').items():
            found.setdefault(name, entry)
    params = inspect.signature(cls).parameters
    docs = {}
    for name, (text, group) in found.items():
        default = params[name].default if name in params else inspect.Parameter.empty
        if default is not inspect.Parameter.empty and text in (str(default), yaml_text(default)):
            text = ''
        docs[name] = text or (f'{group} argument' if group else '')
    return docs


def _docstring_args(doc: str) -> Dict[str, Tuple[str, str]]:
    docs: Dict[str, Tuple[str, str]] = {}
    paragraphs, current = [], []
    for line in doc.splitlines():
        if not line.strip():
            if current:
                paragraphs.append(current)
            current = []
        else:
            current.append(line)
    if current:
        paragraphs.append(current)
    in_args, group = False, ''
    for para in paragraphs:
        header = ARGS_HEADER.match(para[0])
        if header:
            in_args = True
            group, rest = header.group(1) or '', header.group(2)
            lines = para[1:]
            if rest and ARG_LINE.match('    ' + rest):
                lines = ['    ' + rest] + lines
            elif rest:
                for name, entry in _item_docs(' '.join([rest] + [ln.strip() for ln in lines]), group).items():
                    docs.setdefault(name, entry)
                continue
        elif not in_args or not para[0].startswith(' '):
            in_args = False
            continue
        else:
            lines = para
        entry, names, indent = '', [], None
        for line in lines:
            m = ARG_LINE.match(line)
            if m and (indent is None or len(m.group(1)) <= indent):
                for name in names:
                    docs.setdefault(name, (_clean(entry), group))
                indent, names, entry = len(m.group(1)), re.split(r'\s*/\s*', m.group(2)), m.group(3)
            elif names:
                entry += ' ' + line.strip()
        for name in names:
            docs.setdefault(name, (_clean(entry), group))
    return docs


# ------------------------------------------------------------------------------------------------------------
# The reference (docs/options.md)

BEGIN = '<!-- BEGIN option reference: generated by `glmha options reference`; edit the declarations, not this -->'
END = '<!-- END option reference -->'

MODES = {'refuse': 'closed', 'hint': 'open', 'pass': 'passed on'}
LEGEND = ('Unknown keys: a **closed** block refuses a key it does not declare and names the closest one; an **open** '
          "block (basicsr's own: basicsr and its forks read more) refuses a key close to a declared one, as a likely "
          'misspelling, and lets others pass; a block **passed on** to the class or function that reads it (an '
          'optimizer, a loss, a metric) checks the declared values only. A GPU-training option in the wrong block '
          'is refused with the block it belongs to.')


def _cell(text: str) -> str:
    return text.replace('|', '\\|').replace('\n', ' ')


def _type_cell(option: Option) -> str:
    words = describe(option.type, option.bounds, option.not_empty)
    return words[2:] if words.startswith('a ') else words[3:] if words.startswith('an ') else words


def _default_cell(option: Option) -> str:
    if option.required:
        return 'required' if option.required == 'always' else 'required to train'
    if option.default is None and not allows_none(option.type):
        return ''
    return f'`{yaml_text(option.default)}`'


def _table(options: Sequence[Option], first: str = 'option') -> List[str]:
    lines = [f'| {first} | type | default | description |', '|---|---|---|---|']
    for o in options:
        doc = o.doc + (f' (other projects: {", ".join(f"`{a}`" for a in o.aliases)})' if o.aliases else '')
        lines.append(f'| `{o.key}` | {_cell(_type_cell(o))} | {_default_cell(o)} | {_cell(doc)} |')
    return lines


def _summary(part) -> str:
    """The first sentence of a block dataclass's docstring, without its final full stop."""
    return _clean((part.__doc__ or part.__name__).split('\n\n')[0])


def _owner(part) -> str:
    return f'`{part.__module__}.{part.__qualname__}`'


def _readers(part, path: str) -> List[str]:
    return [n for n, m in plugin_models().items() if part in model_blocks(m).get(path, ())]


def _section(title: str, path: str, parts: Sequence[type], out: List[str], note: str = '', mode: bool = True):
    """One block: its first part's table, then a table for each part the plugin's models add."""
    head = _summary(parts[0]) + '.'
    if mode:
        head += f' Unknown keys: {MODES[unknown_keys_mode(parts)]}.'
    out += ['', f'### {title}', '', head + (f' {note}' if note else ''), '']
    out += _table(list(declared(parts[0]).values()))
    out.append(f'\nDeclared in {_owner(parts[0])}.')
    for part in parts[1:]:
        out += ['', f'{_summary(part)}: read by {", ".join(_readers(part, path))}; declared in {_owner(part)}.', '']
        out += _table(list(declared(part).values()))


def reference_markdown() -> str:
    """The reference of every option (``docs/options.md``, between :data:`BEGIN` and :data:`END`)."""
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY
    out = [BEGIN, '',
           'Generated from the declarations (`glmha_plugin/glue/option_schema.py` and the classes it names), which '
           'the pre-flight check of `glmha-train` / `glmha-test` reads: required keys, unknown keys and the type and '
           'range of every value below are checked before basicsr creates anything. A whole number may be written '
           '`5000.0` (Restormer writes `!!float 5e3`); YAML 1.1, which PyYAML and basicsr follow, reads `2e-3` as '
           'text: write `2.0e-3`. Print it with `glmha options reference`.', '', LEGEND]
    _section('Top level', '', (TopLevelOptions,) + model_parts(''), out)
    _section('`datasets.<phase>`', DATASET_BLOCK, (DatasetOptions,), out,
             'Phases: `train`, `val`, and names starting with `val_` or `test_`. Each dataset type adds its own keys '
             '(below); unknown keys: as its type says.', mode=False)
    plugin_datasets = {n: c for n, c in sorted(DATASET_REGISTRY._obj_map.items())
                       if (getattr(c, 'declared_options', None) or {}).get('')}
    for name, cls in plugin_datasets.items():
        _section(f'`datasets.<phase>` with `type: {name}`', DATASET_BLOCK, (cls.declared_options[''],), out)
    for name, part in BASICSR_DATASETS.items():
        _section(f'`datasets.<phase>` with `type: {name}` (basicsr)', DATASET_BLOCK, (part,), out)
    for part in model_parts('datasets.train'):
        _section('`datasets.train`: ' + _summary(part).split(':')[0].split(' (')[0].lower(), 'datasets.train',
                 (part,), out, f'Read by {", ".join(_readers(part, "datasets.train"))} from the train dataset, '
                               'whatever its type.', mode=False)
    _section('`datasets.<phase>.io_backend`', '', (IOBackendOptions,), out)
    _network_section(out, ARCH_REGISTRY)
    for path in ('path', 'train', 'train.optim_g', 'train.scheduler', 'train.<name>_opt', 'val',
                 'val.metrics.<name>', 'logger', 'logger.wandb', 'dist_params'):
        extra = model_parts(path)
        _section(f'`{path}`', path, (_static_part(path),) + extra, out)
        for p in extra:
            for o in declared(p).values():
                if o.child():
                    _section(f'`{path}.{o.key}`', _join(path, o.key), (o.child(),), out,
                             f'Read by {", ".join(_readers(p, path))}.')
    out += ['', END]
    return '\n'.join(out) + '\n'


def _static_part(path: str):
    if path == 'train.<name>_opt':
        return LossOptions
    part = TopLevelOptions
    for key in path.replace('.<name>', '').split('.'):
        part = declared(part)[key].child()
    return part


def _network_section(out: List[str], registry):
    archs = {n: c for n, c in sorted(registry._obj_map.items(), key=lambda kv: kv[0].lower())
             if getattr(c, '__module__', '').startswith('glmha_plugin.')}
    out += ['', '### `network_g`', '',
            '`type` names a registered architecture; the other keys are the arguments of its constructor, read from '
            'its signature (type, default) and docstring (description): a key the signature lacks is refused with '
            'the closest name, and values are checked against the annotated types. The plugin\'s architectures:']
    groups: Dict[str, List[str]] = {}
    for name, cls in archs.items():
        groups.setdefault(str(inspect.signature(cls)), []).append(name)
    for names in groups.values():
        cls = archs[names[0]]
        out += ['', f'#### {", ".join(f"`{n}`" for n in names)}', '']
        for n in names:
            first = _clean((inspect.getdoc(archs[n]) or '').split('\n\n')[0])
            out.append(f'- `{n}`: {first}')
        out.append('')
        out += _table(list(network_arguments(cls).values()), 'argument')


def replace_reference(text: str, reference: str) -> str:
    """``text`` (a Markdown page) with the part between :data:`BEGIN` and :data:`END` replaced by ``reference``."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f'no generated option reference in the text (the lines {BEGIN!r} ... {END!r})')
    return text[:start] + reference.rstrip('\n') + text[end + len(END):]
