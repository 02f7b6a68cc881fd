"""``ImageCleanModel``: Restormer's training recipe as a model for basicsr 1.4.2's pipelines.

Registered under Restormer's own name, so ``model_type: ImageCleanModel`` in
an upstream Restormer YAML keeps working.  Built on basicsr's ``SRModel``
(network building, pretrained loading, EMA, pixel/perceptual losses,
uint8 validation with registered metrics, checkpoints) and adds what
Restormer's fork of BasicSR had:

* optimizers by name from ``torch.optim`` (``Adam``, ``AdamW``, ...);
* ``CosineAnnealingRestartCyclicLR`` besides basicsr's schedulers;
* ``use_grad_clip``: gradient-norm clipping before every optimizer step
  (max norm ``grad_clip_norm``, default 0.01, Restormer's value);
* ``mixing_augs``: mixup of training pairs (:mod:`.mixing_augment`);
* progressive learning from the train dataset options (:mod:`.progressive`),
  applied in ``feed_data`` because ``train_pipeline`` calls ``feed_data``;
* validation padded (reflect) to a multiple of ``val.window_size`` and
  cropped back, scored on uint8 images like Restormer;
* mixed precision, channels-last, ``torch.compile``, gradient accumulation
  and the non-finite-loss guard (:mod:`.training`, ``docs/gpu_training.md``).
"""
import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY

from ..layers import pad_to_multiple
from .lr_scheduler import CosineAnnealingRestartCyclicLR
from .mixing_augment import MixingAugment
from .progressive import ProgressiveSchedule
from .training import GPUTrainingMixin

BASICSR_SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')
RESTORMER_GRAD_CLIP_NORM = 0.01


def _optimizer_names():
    return sorted(n for n, c in vars(torch.optim).items()
                  if isinstance(c, type) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer)


@MODEL_REGISTRY.register()
class ImageCleanModel(GPUTrainingMixin, SRModel):
    """Restormer's image-restoration model (see the module docstring for the options)."""

    # Keys of ``train.mixing_augs`` (checked by glmha_plugin.validate).
    mixing_augs_keys = frozenset({'mixup', 'mixup_beta', 'use_identity'})

    def __init__(self, opt):
        self.current_iter = None   # set by update_learning_rate, i.e. by the training loop each iteration
        self._validating = False
        self._logged_stage = None
        train_opt = opt.get('train') or {}
        mixing = train_opt.get('mixing_augs') or {}
        self.mixing_augmentation = None
        self.progressive = None
        if opt['is_train']:
            self.progressive = ProgressiveSchedule.from_dataset_opt(opt['datasets']['train'])
        super().__init__(opt)
        if self.progressive is not None:
            self._check_stage_lengths(int(train_opt.get('total_iter', 0)))
        if opt['is_train'] and mixing.get('mixup', False):
            self.mixing_augmentation = MixingAugment(mixing.get('mixup_beta', 1.2), mixing.get('use_identity', False),
                                                     self.device)

    def _check_stage_lengths(self, total_iter: int):
        logger = get_root_logger()
        end = self.progressive.boundaries[-1]
        if end > total_iter:
            unreached = [j + 1 for j in range(len(self.progressive)) if self.progressive.stage(total_iter).index < j]
            logger.warning(f'Progressive learning: the stages end at iteration {end} but total_iter is {total_iter}; '
                           f'stage(s) {unreached} will not be reached')
        elif end < total_iter:
            logger.info(f'Progressive learning: the last stage runs from iteration {end} to total_iter {total_iter}')

    # ------------------------------------------------------------------ optimisation

    def get_optimizer(self, optim_type, params, lr, **kwargs):
        cls = getattr(torch.optim, str(optim_type), None)
        if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
            raise ValueError(f'train.optim_g.type {optim_type!r} is not a torch.optim optimizer; valid: '
                             f'{", ".join(_optimizer_names())}')
        return cls(params, lr, **kwargs)

    def setup_optimizers(self):
        super().setup_optimizers()
        train_opt = self.opt['train']
        if train_opt.get('use_grad_clip', False):
            max_norm = float(train_opt.get('grad_clip_norm', RESTORMER_GRAD_CLIP_NORM))
            params = [p for p in self.net_g.parameters() if p.requires_grad]

            def clip(optimizer, args, kwargs):
                torch.nn.utils.clip_grad_norm_(params, max_norm)

            self.optimizer_g.register_step_pre_hook(clip)

    def setup_schedulers(self):
        sched_opt = self.opt['train']['scheduler']
        sched_type = sched_opt.get('type')
        if sched_type == 'CosineAnnealingRestartCyclicLR':
            kwargs = {k: v for k, v in sched_opt.items() if k != 'type'}
            for optimizer in self.optimizers:
                self.schedulers.append(CosineAnnealingRestartCyclicLR(optimizer, **kwargs))
        elif sched_type in BASICSR_SCHEDULERS:
            super().setup_schedulers()
        else:
            raise ValueError(f'train.scheduler.type {sched_type!r} is not supported; valid: '
                             f'CosineAnnealingRestartCyclicLR, {", ".join(BASICSR_SCHEDULERS)}')

    def update_learning_rate(self, current_iter, warmup_iter=-1):
        """basicsr's update, remembering the iteration for progressive learning (the loop calls this first)."""
        self.current_iter = current_iter
        super().update_learning_rate(current_iter, warmup_iter)

    # ------------------------------------------------------------------ data

    def feed_data(self, data):
        """Training batches: progressive crop, then mixup; validation/test batches: as given."""
        if not self.is_train or self._validating:
            return super().feed_data(data)
        lq, gt = data['lq'], data['gt']
        if self.progressive is not None:
            if self.current_iter is None:
                raise RuntimeError('ImageCleanModel.feed_data: progressive learning needs the iteration; call '
                                   'update_learning_rate(current_iter) before feed_data (train_pipeline does)')
            self._log_stage()
            dp_gpus = 1 if self.opt['dist'] else max(1, self.opt['num_gpu'])  # DataParallel splits one batch
            # the batch holds accum_iter micro-batches (per GPU), each reduced to the stage's batch size
            lq, gt = self.progressive.crop(lq, gt, self.current_iter, self.opt.get('scale', 1),
                                           dp_gpus * self.accum_iter)
        self.lq, self.gt = lq.to(self.device), gt.to(self.device)
        if self.mixing_augmentation is not None:
            self.gt, self.lq = self.mixing_augmentation(self.gt, self.lq)

    def _log_stage(self):
        stage = self.progressive.stage(self.current_iter)
        if stage.index != self._logged_stage:  # logging only; the stage itself is derived from the iteration
            self._logged_stage = stage.index
            world = self.opt.get('world_size', 1) if self.opt['dist'] else max(1, self.opt['num_gpu'])
            accum = f' x accum_iter {self.accum_iter} micro-batches' if self.accum_iter > 1 else ''
            get_root_logger().info(
                f'Progressive learning: stage {stage.index + 1}/{len(self.progressive)} from iter {stage.first_iter}: '
                f'patch {stage.patch_size}x{stage.patch_size}, batch {stage.batch_size} per GPU{accum} '
                f'({stage.batch_size * world * self.accum_iter} in total)')

    # ------------------------------------------------------------------ evaluation

    def test(self):
        """Inference on ``self.lq``, padded (reflect) to a multiple of ``val.window_size`` and cropped back."""
        window = int((self.opt.get('val') or {}).get('window_size', 0) or 0)
        lq = self.lq
        h, w = lq.shape[-2:]
        if window > 1:
            self.lq = pad_to_multiple(lq, window)
        try:
            super().test()
        finally:
            self.lq = lq
        scale = self.opt.get('scale', 1)
        self.output = self.output[..., :h * scale, :w * scale]

    def validation(self, dataloader, current_iter, tb_logger, save_img=False):
        self._validating = True
        try:
            super().validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self._validating = False
