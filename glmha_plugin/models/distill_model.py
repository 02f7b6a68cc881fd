"""``DistillModel``: train a network (the student) to reproduce a frozen trained network (the teacher).

Made for compressing a trained channel-attention network into a GLMHA one (``glmha compress``), usable for
any student/teacher pair with the same input and output.  Options (besides :class:`ImageCleanModel`'s)::

    model_type: DistillModel
    network_g: {type: GLMHASwap, base: {type: Restormer, ...}, rank: {...}}   # the student
    network_teacher: {type: Restormer, ...}          # a registered name or module.path:ClassName, with options
    path:
      pretrain_network_g: warm_start.pth             # the student's start (e.g. the SVD warm start)
      pretrain_network_teacher: deraining.pth        # required: the teacher's trained weights
      param_key_teacher: params                      # checkpoint entry (params, params_ema, state_dict, ...)
      strict_load_teacher: true
      ignore_resume_networks: [network_teacher]      # --auto_resume keeps this teacher (basicsr's option)
    train:
      distill_opt: {type: L1Loss, loss_weight: 1.0}  # student output vs teacher output (required)
      feature_opt: {type: MSELoss, loss_weight: 0.1, layers: [...]}  # optional: attention outputs vs the teacher's
      pixel_opt: {type: L1Loss, loss_weight: 1.0}    # optional: vs the ground truth, for batches that carry one
      trainable: all                                 # or attention: only the student's attention layers learn

The training data needs no targets (``UnpairedImageDataset``); a paired dataset (``Dataset_PairedImage``)
mixes the ground truth in through ``pixel_opt`` (and ``perceptual_opt``).  The teacher runs without
gradients on each micro-batch, under the same autocast as the student.  ``feature_opt.layers`` are module
paths present in both networks; by default every attention layer of the student (the plugin's CSA / GLMHA /
MS-MSA layers) whose path exists in the teacher; their outputs keep the channels, so they are compared
directly.

Everything of :class:`ImageCleanModel` applies (``use_amp``, ``accum_iter``, ``use_compile``, channels-last,
the non-finite guard, EMA, gradient clipping, progressive crops, DDP / slurm through basicsr's
``train_pipeline``, ``--auto_resume``); ``mixing_augs`` (mixup) needs targets and is refused.

Validation reports each configured metric (``val.metrics``, e.g. ``psnr``, ``ssim``) of the student against
the teacher's output as ``<metric>_teacher``, and against the ground truth as ``<metric>`` when the
validation set has one; it also logs one line ``Distillation validation {json}`` per validation (iteration,
dataset, values) for tools that read the log.
"""
import json
import os.path as osp
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, ClassVar, Dict, List, Literal, Optional

import torch
from basicsr.losses import build_loss
from basicsr.metrics import calculate_metric
from basicsr.utils import get_root_logger, imwrite, tensor2img
from basicsr.utils.registry import MODEL_REGISTRY
from tqdm import tqdm

from ..errors import OptionError
from ..layers import ChannelAttention, SpectralMSA, pad_to_multiple
from .image_restoration_model import ImageCleanModel

VALIDATION_LOG = 'Distillation validation '
TEACHER_SUFFIX = '_teacher'
TRAINABLE = ('all', 'attention')


def check_teacher_options(opt: dict) -> None:
    """``network_teacher`` and ``path.pretrain_network_teacher`` are given (and the file exists)."""
    block = opt.get('network_teacher')
    path = (opt.get('path') or {}).get('pretrain_network_teacher')
    if not isinstance(block, dict) or 'type' not in block:
        raise OptionError('DistillModel needs network_teacher: the trained network\'s block (type and options)')
    if not path:
        raise OptionError('DistillModel needs path.pretrain_network_teacher: the teacher\'s trained weights')
    if not osp.isfile(path):
        hint = ''
        if osp.basename(path).startswith('net_teacher_'):
            hint = (' (basicsr\'s resume points every network_* at its own checkpoint, and the teacher is never '
                    'saved: add path.ignore_resume_networks: [network_teacher])')
        raise OptionError(f'path.pretrain_network_teacher {path!r} does not exist{hint}')


@dataclass(frozen=True)
class TeacherNetworkOptions:
    """``network_teacher``: the trained network; its other keys are the arguments of its constructor."""
    unknown_keys: ClassVar[str] = 'pass'
    type: Annotated[str, 'required', 'a registered architecture or module.path:ClassName'] = None


@dataclass(frozen=True)
class DistillTopOptions:
    """DistillModel's keys at the top level."""
    network_teacher: Annotated[Optional[TeacherNetworkOptions], 'DistillModel (required there): the trained network '
                               'the student learns to reproduce'] = None


@dataclass(frozen=True)
class DistillPathOptions:
    """DistillModel's keys in ``path``."""
    pretrain_network_teacher: Annotated[Optional[str], "DistillModel (required there): the teacher's weights"] = None
    param_key_teacher: Annotated[Optional[str], "key of the teacher's weights in that file"] = 'params'
    strict_load_teacher: Annotated[bool, 'every key and shape must fit network_teacher'] = True
    ignore_resume_networks: Annotated[Optional[List[str]], "basicsr's: networks whose pretrain path --auto_resume "
                                      'keeps (DistillModel: [network_teacher], the teacher is never saved)'] = None


@dataclass(frozen=True)
class DistillTrainOptions:
    """DistillModel's keys in ``train`` (its losses: ``distill_opt``, ``feature_opt`` with ``layers``)."""
    trainable: Annotated[Literal['all', 'attention'], "DistillModel: what learns: the whole student, or its "
                         'attention layers alone'] = 'all'


@MODEL_REGISTRY.register()
class DistillModel(ImageCleanModel):
    """A student trained against a frozen teacher's outputs (module docstring)."""

    # the options it reads besides ImageCleanModel's, by block (glmha_plugin.glue.option_schema)
    declared_options = {'': DistillTopOptions, 'path': DistillPathOptions, 'train': DistillTrainOptions}

    cri_feature = None     # set by init_training_settings (training only)

    def __init__(self, opt):
        if (opt.get('train') or {}).get('mixing_augs', {}).get('mixup') and opt.get('is_train'):
            raise OptionError('DistillModel: train.mixing_augs (mixup) needs targets for every batch; remove it')
        check_teacher_options(opt)
        if opt.get('is_train') and not (opt.get('train') or {}).get('distill_opt'):
            raise OptionError('DistillModel needs train.distill_opt: the loss between the student\'s and the '
                              'teacher\'s outputs (e.g. {type: L1Loss, loss_weight: 1.0})')
        teacher = self.build_teacher(opt)   # a teacher that does not fit fails here, before the student is set up
        self._feature_store: Optional[Dict[str, torch.Tensor]] = None
        self._hooks = []
        super().__init__(opt)
        for p in teacher.parameters():
            p.requires_grad_(False)
        self.net_teacher = self.prepare_network(teacher).eval()
        if self.is_train and self.cri_feature is not None:
            self._hook_features()

    def build_teacher(self, opt: dict) -> torch.nn.Module:
        """``network_teacher`` with ``path.pretrain_network_teacher`` loaded by basicsr's ``load_network``
        (``param_key_teacher``, ``strict_load_teacher``); a checkpoint that does not fit names the keys."""
        from ..archs.blocks import build_from_block
        block, path = opt['network_teacher'], opt['path']['pretrain_network_teacher']
        try:
            net = build_from_block(block)
        except ValueError as exc:
            raise OptionError(f'network_teacher: {exc}') from None
        param_key = opt['path'].get('param_key_teacher', 'params')
        if opt['path'].get('resume_state') and param_key == 'params':
            # basicsr's check_resume turns every path.param_key* that says params_ema into params (meant for the
            # resumed network_g, saved with params); the teacher's checkpoint is not one of those
            keys = torch.load(path, map_location='cpu', weights_only=True).keys()
            if 'params' not in keys and 'params_ema' in keys:
                param_key = 'params_ema'
                get_root_logger().info('Resuming: the teacher keeps param_key_teacher params_ema (basicsr\'s resume '
                                       'changed it to params, which its checkpoint does not have)')
        try:
            self.load_network(net, path, opt['path'].get('strict_load_teacher', True), param_key)
        except (RuntimeError, KeyError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            detail = '; '.join(lines[1:6]) if len(lines) > 1 else (lines[0] if lines else type(exc).__name__)
            raise OptionError(f'path.pretrain_network_teacher {path!r} does not fit network_teacher '
                              f'({block["type"]}): {detail}. Check network_teacher and param_key_teacher') from None
        return net

    # ------------------------------------------------------------------ what trains

    def model_to_device(self, net):
        """``train.trainable: attention`` freezes everything but the attention layers, before DDP wraps the
        network (DDP registers the parameters that need gradients when it is built)."""
        train_opt = self.opt.get('train') or {}
        trainable = train_opt.get('trainable', DistillTrainOptions.trainable)
        if trainable not in TRAINABLE:
            raise OptionError(f'train.trainable {trainable!r}: use one of {", ".join(TRAINABLE)}')
        if self.opt.get('is_train') and trainable == 'attention' and net is not getattr(self, 'net_teacher', None):
            attention = [m for m in net.modules() if isinstance(m, (ChannelAttention, SpectralMSA))]
            if not attention:
                raise OptionError('train.trainable: attention, but network_g has no attention layer of the plugin '
                                  '(CSA / GLMHA / MS-MSA)')
            net.requires_grad_(False)
            for m in attention:
                m.requires_grad_(True)
        return super().model_to_device(net)

    # ------------------------------------------------------------------ losses

    def init_training_settings(self):
        train_opt = self.opt['train']
        self.cri_distill = build_loss(dict(train_opt['distill_opt'])).to(self.device)
        feature_opt = dict(train_opt.get('feature_opt') or {})
        self.feature_layers: Optional[List[str]] = feature_opt.pop('layers', None)
        self.cri_feature = build_loss(feature_opt).to(self.device) if feature_opt else None
        if train_opt.get('pixel_opt') or train_opt.get('perceptual_opt'):
            super().init_training_settings()
            return
        # basicsr's SRModel insists on a pixel or perceptual loss (against targets); here the distillation loss
        # is the training signal, so SRModel sets up EMA, optimizers and schedulers with it standing in, and
        # the target loss is then switched off.
        self.opt['train'] = dict(train_opt, pixel_opt=train_opt['distill_opt'])
        try:
            super().init_training_settings()
        finally:
            self.opt['train'] = train_opt
        self.cri_pix = None

    def _hook_features(self):
        student = self.get_bare_model(self.net_g)
        teacher_modules = dict(self.net_teacher.named_modules())
        names = self.feature_layers
        if names is None:
            names = [n for n, m in student.named_modules()
                     if isinstance(m, (ChannelAttention, SpectralMSA)) and n in teacher_modules]
        student_modules = dict(student.named_modules())
        missing = [n for n in names if n not in student_modules or n not in teacher_modules]
        if missing or not names:
            raise OptionError(f'train.feature_opt.layers: {missing or "none found"} not module paths of both the '
                              f'student and the teacher; e.g. {[n for n in student_modules if n][:5]}')
        self.feature_layers = list(names)
        for name in names:
            for owner, module in (('student', student_modules[name]), ('teacher', teacher_modules[name])):
                self._hooks.append(module.register_forward_hook(self._store(owner, name)))

    def _store(self, owner: str, name: str):
        def hook(module, inputs, output):
            if self._feature_store is not None and isinstance(output, torch.Tensor):
                self._feature_store[f'{owner}:{name}'] = output
        return hook

    def _features(self, fn):
        """Run ``fn()`` with the feature hooks recording; returns (its result, the recorded outputs)."""
        self._feature_store = {}
        try:
            out = fn()
            return out, self._feature_store
        finally:
            self._feature_store = None

    def net_forward(self, net):
        if self.cri_feature is None or not torch.is_grad_enabled():
            return net(self.lq)
        out, self._student_features = self._features(lambda: net(self.lq))
        return out

    def teacher_output(self) -> torch.Tensor:
        """The teacher on ``self.lq`` (no gradients, the configured autocast), float32."""
        lq = self.lq
        if self.use_channels_last and lq.dim() == 4:
            lq = lq.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), self.precision.autocast(), self.compile_errors():
            return self.net_teacher(lq).float()

    def compute_losses(self, output: torch.Tensor):
        losses = OrderedDict()
        if self.cri_feature is not None:
            teacher, feats = self._features(self.teacher_output)
            student = getattr(self, '_student_features', {})
            terms = [self.cri_feature(student[f'student:{n}'].float(), feats[f'teacher:{n}'].float())
                     for n in self.feature_layers if f'student:{n}' in student and f'teacher:{n}' in feats]
            self._student_features = {}
            if terms:
                losses['l_feature'] = sum(terms) / len(terms)
        else:
            teacher = self.teacher_output()
        losses['l_distill'] = self.cri_distill(output, teacher)
        if getattr(self, 'gt', None) is not None:   # targets given: the recipe's own pixel / perceptual terms too
            losses.update(super().compute_losses(output)[1])
        total = 0
        for value in losses.values():
            total = total + value
        return total, losses

    # ------------------------------------------------------------------ data

    def feed_data(self, data):
        """Batches with targets: as :class:`ImageCleanModel`; training batches without: the inputs alone
        (progressive crops applied to them)."""
        if 'gt' in data or not self.is_train or self._validating:
            if 'gt' not in data and hasattr(self, 'gt'):
                del self.gt
            return super().feed_data(data)
        lq = data['lq']
        if hasattr(self, 'gt'):
            del self.gt
        if self.progressive is not None:
            if self.current_iter is None:
                raise RuntimeError('DistillModel.feed_data: progressive learning needs the iteration; call '
                                   'update_learning_rate(current_iter) before feed_data (train_pipeline does)')
            self._log_stage()
            dp_gpus = 1 if self.opt['dist'] else max(1, self.opt['num_gpu'])
            lq, _ = self.progressive.crop(lq, lq, self.current_iter, 1, dp_gpus * self.accum_iter)
        self.lq = lq.to(self.device)

    # ------------------------------------------------------------------ validation

    def _teacher_test(self) -> torch.Tensor:
        """The teacher on ``self.lq`` as :meth:`test` runs the student (padded to ``val.window_size``)."""
        window = int((self.opt.get('val') or {}).get('window_size', 0) or 0)
        lq = self.lq
        h, w = lq.shape[-2:]
        if window > 1:
            self.lq = pad_to_multiple(lq, window)
        try:
            out = self.teacher_output()
        finally:
            self.lq = lq
        scale = self.opt.get('scale', 1)
        return out[..., :h * scale, :w * scale]

    def _image(self, tensor: torch.Tensor, rgb2bgr: bool, use_image: bool):
        return tensor2img([tensor], rgb2bgr=rgb2bgr) if use_image else self._float_image(tensor, rgb2bgr)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        """Each metric of ``val.metrics`` against the teacher's output (``<name>_teacher``) and, where the
        validation set has targets, against them (``<name>``)."""
        self._note_fork_keys()
        val = self.opt['val']
        rgb2bgr, use_image = bool(val.get('rgb2bgr', True)), bool(val.get('use_image', True))
        dataset_name = dataloader.dataset.opt['name']
        metrics = val.get('metrics') or {}
        sums: Dict[str, float] = OrderedDict()
        count = 0
        pbar = tqdm(total=len(dataloader), unit='image') if val.get('pbar', False) else None
        for val_data in dataloader:
            img_name = osp.splitext(osp.basename(val_data['lq_path'][0]))[0]
            self.feed_data(val_data)
            self.test()
            teacher = self._teacher_test()
            student_img = self._image(self.output.detach().cpu(), rgb2bgr, use_image)
            teacher_img = self._image(teacher.detach().cpu(), rgb2bgr, use_image)
            gt_img = self._image(self.gt.detach().cpu(), rgb2bgr, use_image) if hasattr(self, 'gt') else None
            for name, metric_opt in metrics.items():
                key = name + TEACHER_SUFFIX
                sums[key] = sums.get(key, 0.0) + float(calculate_metric({'img': student_img, 'img2': teacher_img},
                                                                        metric_opt))
                if gt_img is not None:
                    sums[name] = sums.get(name, 0.0) + float(calculate_metric({'img': student_img, 'img2': gt_img},
                                                                              metric_opt))
            if save_img:
                img = student_img if use_image else tensor2img([self.output.detach().cpu()], rgb2bgr=rgb2bgr)
                imwrite(img, self._image_path(dataset_name, img_name, current_iter))
            if hasattr(self, 'gt'):
                del self.gt
            del self.lq, self.output
            count += 1
            if pbar is not None:
                pbar.update(1)
                pbar.set_description(f'Test {img_name}')
        if pbar is not None:
            pbar.close()
        if not sums:
            return
        self.metric_results = OrderedDict((k, v / max(count, 1)) for k, v in sums.items())
        self._best_records(dataset_name, metrics)
        for name, value in self.metric_results.items():
            self._update_best_metric_result(dataset_name, name, value, current_iter)
        self._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        get_root_logger().info(VALIDATION_LOG + json.dumps(
            {'iter': current_iter, 'dataset': dataset_name, 'images': count, **self.metric_results}))

    def _best_records(self, dataset_name: str, metrics: dict):
        if not hasattr(self, 'best_metric_results'):
            self.best_metric_results = {}
        record = self.best_metric_results.setdefault(dataset_name, {})
        for name in self.metric_results:
            base = name[:-len(TEACHER_SUFFIX)] if name.endswith(TEACHER_SUFFIX) and name not in metrics else name
            better = (metrics.get(base) or {}).get('better', 'higher')
            record.setdefault(name, dict(better=better, val=float('-inf') if better == 'higher' else float('inf'),
                                         iter=-1))
