"""basicsr 1.4.2's option blocks (``basicsr/train.py``, ``test.py``, ``utils/options.py``, ``data/__init__.py``,
``models/sr_model.py``, ...): top level, ``train``, ``val``, ``logger``, ``path``, the dataset loader keys,
basicsr's ``PairedImageDataset``, optimizer, scheduler, losses, metrics (the grammar: the package docstring).
"""
from dataclasses import dataclass
from typing import Annotated, ClassVar, Dict, List, Literal, Optional, Tuple, Union

from ...data.paired_image_dataset import IOBackendOptions

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
    param_key_g: Annotated[Optional[str], 'key of the weights in that file (params_ema: the EMA weights; ~: the file '
                           'is the state dict itself)'] = 'params'
    strict_load_g: Annotated[bool, 'every key and shape must fit network_g'] = True
    resume_state: Annotated[Optional[str], 'a .state file to resume training from (or use --auto_resume)'] = None
    pretrain_network_d: Annotated[Optional[str], "basicsr's GAN models: weights of the discriminator"] = None
    param_key_d: Annotated[Optional[str], "basicsr's GAN models: key of the discriminator's weights"] = 'params'
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
