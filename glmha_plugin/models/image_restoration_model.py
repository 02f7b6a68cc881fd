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
* the validation keys of Restormer's and Retinexformer's forks of BasicSR:
  ``val.rgb2bgr`` (channel order of the saved images and of the images the
  metrics get; default true, basicsr's), ``val.use_image`` (true: metrics on
  the 8-bit images, basicsr's default; false: on the float output, clamped
  to [0, 1] and scaled to [0, 255] without rounding, basicsr's metric
  convention), and ``val.max_minibatch``, which the forks define but never
  read: accepted with a logged note.
* mixed precision, channels-last, ``torch.compile``, gradient accumulation
  and the non-finite-loss guard (:mod:`.training`, ``docs/gpu_training.md``).
"""
import os.path as osp
from dataclasses import dataclass
from typing import Annotated, Optional

import numpy as np
import torch
from basicsr.metrics import calculate_metric
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY
from tqdm import tqdm

from ..layers import pad_to_multiple
from .lr_scheduler import CosineAnnealingRestartCyclicLR
from .mixing_augment import MixingAugment, MixingAugsOptions
from .progressive import ProgressiveOptions, ProgressiveSchedule
from .training import GPUTrainingMixin

BASICSR_SCHEDULERS = ('MultiStepLR', 'MultiStepRestartLR', 'CosineAnnealingRestartLR')


@dataclass(frozen=True)
class RecipeTrainOptions:
    """Restormer's recipe in the ``train`` block."""
    use_grad_clip: Annotated[bool, 'clip the gradient norm before every optimizer step'] = False
    grad_clip_norm: Annotated[float, '> 0', 'the largest gradient norm (Restormer\'s value)'] = 0.01
    mixing_augs: Annotated[Optional[MixingAugsOptions], 'mixup of training pairs'] = None


@dataclass(frozen=True)
class ForkValOptions:
    """The ``val`` keys of Restormer's and Retinexformer's forks of BasicSR."""
    window_size: Annotated[int, '>= 0', 'pad inputs (reflect) to a multiple of it and crop the output back; 0: '
                           'none'] = 0
    rgb2bgr: Annotated[bool, 'channel order of the saved images and of the images the metrics get'] = True
    use_image: Annotated[bool, 'metrics on the 8-bit images (true) or on the float output in [0, 255] '
                         '(false)'] = True
    max_minibatch: Annotated[int, '>= 1', 'accepted and ignored (the forks define it but never read it)'] = None


def _optimizer_names():
    return sorted(n for n, c in vars(torch.optim).items()
                  if isinstance(c, type) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer)


@MODEL_REGISTRY.register()
class ImageCleanModel(GPUTrainingMixin, SRModel):
    """Restormer's image-restoration model (see the module docstring for the options)."""

    # the options it reads besides GPUTrainingMixin's, by block (glmha_plugin.glue.option_schema)
    declared_options = {'train': RecipeTrainOptions, 'val': ForkValOptions, 'datasets.train': ProgressiveOptions}

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
        if opt['is_train'] and mixing.get('mixup', MixingAugsOptions.mixup):
            self.mixing_augmentation = MixingAugment(mixing.get('mixup_beta', MixingAugsOptions.mixup_beta),
                                                     mixing.get('use_identity', MixingAugsOptions.use_identity),
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
        if train_opt.get('use_grad_clip', RecipeTrainOptions.use_grad_clip):
            max_norm = float(train_opt.get('grad_clip_norm', RecipeTrainOptions.grad_clip_norm))
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
        window = int((self.opt.get('val') or {}).get('window_size', ForkValOptions.window_size) or 0)
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

    def _note_fork_keys(self):
        val = self.opt.get('val') or {}
        if 'max_minibatch' in val and not getattr(self, '_noted_max_minibatch', False):
            self._noted_max_minibatch = True
            get_root_logger().info(f'val.max_minibatch: {val["max_minibatch"]} accepted; it changes nothing (the '
                                   f'Restormer/Retinexformer forks of BasicSR define it but never read it; '
                                   f'validation runs one image at a time)')

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """basicsr's validation, with ``val.rgb2bgr`` and ``val.use_image`` (module docstring) honoured."""
        self._note_fork_keys()
        val = self.opt['val']
        rgb2bgr = bool(val.get('rgb2bgr', ForkValOptions.rgb2bgr))
        use_image = bool(val.get('use_image', ForkValOptions.use_image))
        if rgb2bgr and use_image:
            return super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        dataset_name = dataloader.dataset.opt['name']
        metrics = val.get('metrics') or {}
        if metrics:
            if not hasattr(self, 'metric_results'):
                self.metric_results = {name: 0 for name in metrics}
            self._initialize_best_metric_results(dataset_name)
            self.metric_results = {name: 0 for name in self.metric_results}
        pbar = tqdm(total=len(dataloader), unit='image') if val.get('pbar', False) else None
        count = 0
        for val_data in dataloader:
            img_name = osp.splitext(osp.basename(val_data['lq_path'][0]))[0]
            self.feed_data(val_data)
            self.test()
            visuals = self.get_current_visuals()
            sr_img = tensor2img([visuals['result']], rgb2bgr=rgb2bgr)
            data = {'img': sr_img if use_image else self._float_image(visuals['result'], rgb2bgr)}
            if 'gt' in visuals:
                data['img2'] = tensor2img([visuals['gt']], rgb2bgr=rgb2bgr) if use_image else \
                    self._float_image(visuals['gt'], rgb2bgr)
                del self.gt
            del self.lq, self.output
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            if save_img:
                imwrite(sr_img, self._image_path(dataset_name, img_name, current_iter))
            for name, metric_opt in metrics.items():
                self.metric_results[name] += calculate_metric(data, metric_opt)
            count += 1
            if pbar is not None:
                pbar.update(1)
                pbar.set_description(f'Test {img_name}')
        if pbar is not None:
            pbar.close()
        if metrics:
            for name in self.metric_results:
                self.metric_results[name] /= max(count, 1)
                self._update_best_metric_result(dataset_name, name, self.metric_results[name], current_iter)
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)

    @staticmethod
    def _float_image(tensor: torch.Tensor, rgb2bgr: bool) -> np.ndarray:
        """H x W x C float64 in [0, 255], not rounded (basicsr's metric scale), from a 1 x C x H x W tensor."""
        return tensor2img([tensor], rgb2bgr=rgb2bgr, out_type=np.float64) * 255.0

    def _image_path(self, dataset_name: str, img_name: str, current_iter) -> str:
        """Where basicsr's SRModel saves a validation / test image."""
        vis = self.opt['path']['visualization']
        if self.opt['is_train']:
            return osp.join(vis, img_name, f'{img_name}_{current_iter}.png')
        suffix = self.opt['val'].get('suffix') or self.opt['name']
        return osp.join(vis, dataset_name, f'{img_name}_{suffix}.png')
