"""Training at GPU scale, shared by :class:`ImageCleanModel`, :class:`SpectralReconModel` and :class:`CASSIModel`.

:class:`GPUTrainingMixin` goes before basicsr's ``SRModel`` in a model's
bases and replaces its training step, its test forward and its training
state with versions that read these options (``docs/gpu_training.md``):

* ``use_amp`` / ``amp_bf16`` (top level): autocast in training, validation
  and testing (:mod:`.precision`); float16 with a ``GradScaler``, unscaled
  before gradient clipping, its state saved in the ``.state`` file and
  restored on resume.  Losses are computed on the float32 output.
* ``use_channels_last``: the network's weights and inputs in channels-last layout.
* ``use_compile`` / ``compile_mode``: ``torch.compile`` of the network (and
  its EMA copy, which validation uses), compiled in place so checkpoints keep
  their keys.  A compile failure stops with :class:`CompileError`.
* ``train.accum_iter`` N: one iteration is one optimizer step on N
  micro-batches of ``batch_size_per_gpu`` each (traiNNer-redux's meaning).
  basicsr's loader delivers N x ``batch_size_per_gpu`` samples per iteration
  (:mod:`glmha_plugin.glue.compat`, ``accum_loader``); the step splits the batch
  in N equal parts, scales each loss by 1/N and, under DDP, all-reduces the
  gradients once (``no_sync`` for the first N - 1).  Everything that counts
  iterations (``total_iter``, schedulers, warm-up, EMA, progressive stages,
  logging, checkpoints, validation) counts optimizer steps.
* ``train.max_nonfinite_steps`` (default 10): a step whose loss or gradients
  are NaN/Inf is skipped (no optimizer step, no EMA update; a float16 scaler
  only lowers its scale) and logged; that many in a row stop training with
  :class:`NonFiniteLossError`, before anything non-finite is saved.
"""
import os
from collections import OrderedDict
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Annotated, Dict, List, Literal, Optional

import torch
import torch.distributed as dist
from basicsr.utils import get_root_logger
from basicsr.utils.dist_util import master_only
from torch.nn.parallel import DistributedDataParallel

from ..errors import UsageError
from .amp import Precision, resolve_precision
from .saving import atomic_save


@dataclass(frozen=True)
class GPUTrainingOptions:
    """GPU-training options (top level; ``docs/gpu_training.md``)."""
    use_amp: Annotated[bool, 'also: amp', 'torch.amp.autocast in training, validation and testing (Retinexformer\'s '
                       'and traiNNer-redux\'s name)'] = False
    amp_bf16: Annotated[bool, 'also: bfloat16, use_bf16', 'bfloat16 instead of float16 (traiNNer-redux\'s '
                        'name)'] = False
    use_channels_last: Annotated[bool, 'also: channels_last', 'network weights and inputs in channels-last memory '
                                 'layout (traiNNer-redux\'s name)'] = False
    use_compile: Annotated[bool, 'also: compile', 'torch.compile of the network (training and validation); a '
                           'failure stops the run (traiNNer-redux\'s name)'] = False
    compile_mode: Annotated[Optional[Literal['default', 'reduce-overhead', 'max-autotune',
                                             'max-autotune-no-cudagraphs']],
                            'the mode of torch.compile (traiNNer-redux\'s name)'] = 'default'


@dataclass(frozen=True)
class TrainLeverOptions:
    """GPU-training options of the ``train`` block."""
    accum_iter: Annotated[Optional[int], '>= 1', 'also: grad_accum, gradient_accumulation_steps',
                          'gradient accumulation: micro-batches of batch_size_per_gpu per optimizer step '
                          '(traiNNer-redux\'s meaning; iterations count optimizer steps)'] = 1
    max_nonfinite_steps: Annotated[Optional[int], '>= 1', 'consecutive steps with NaN/Inf loss or gradients, each '
                                   'skipped, before training stops (neosr stops at the first)'] = 10


def accum_iter(opt) -> int:
    """``train.accum_iter`` of an option dict (1 when absent): micro-batches per optimizer step; the train
    loader delivers that many batches' samples per iteration (:mod:`glmha_plugin.glue.compat`)."""
    default = TrainLeverOptions.accum_iter
    return int((opt.get('train') or {}).get('accum_iter', default) or default)


class NonFiniteLossError(UsageError, RuntimeError):
    """Too many consecutive training steps with NaN/Inf loss or gradients."""


class CompileError(UsageError, RuntimeError):
    """``torch.compile`` of the network failed (``use_compile``)."""


def _compile_exceptions() -> tuple:
    import torch._dynamo.exc as dynamo_exc
    errors = [dynamo_exc.TorchDynamoException]
    try:
        from torch._inductor.exc import InductorError
        errors.append(InductorError)
    except ImportError:  # older torch: inductor errors arrive wrapped in BackendCompilerFailed
        pass
    return tuple(errors)


class GPUTrainingMixin:
    """Mixed precision, channels-last, compile, gradient accumulation and the non-finite guard (module docstring).

    Subclasses name the tensors of a batch in :attr:`input_attrs` (fed to the
    network, converted to channels-last) and :attr:`micro_batch_attrs` (split
    into micro-batches), and may override :meth:`net_forward`.
    """

    # the options this mixin reads, by block (glmha_plugin.glue.option_schema; the pre-flight check refuses them
    # with a model_type that lacks this mixin)
    declared_options = {'': GPUTrainingOptions, 'train': TrainLeverOptions}
    input_attrs = ('lq', )
    micro_batch_attrs = ('lq', 'gt')

    def __init__(self, opt: dict):
        train_opt = opt.get('train') or {}
        self.use_channels_last = bool(opt.get('use_channels_last', GPUTrainingOptions.use_channels_last))
        self.use_compile = bool(opt.get('use_compile', GPUTrainingOptions.use_compile))
        self.compile_mode = opt.get('compile_mode') or GPUTrainingOptions.compile_mode
        self.accum_iter = accum_iter(opt)   # the number compat's loader patch delivers batches for
        self.max_nonfinite_steps = int(train_opt.get('max_nonfinite_steps') or TrainLeverOptions.max_nonfinite_steps)
        self.nonfinite_streak = 0
        self.grad_scaler = None
        super().__init__(opt)  # SRModel: network (model_to_device below), weights, training settings
        logger = get_root_logger()
        self.precision: Precision = resolve_precision(opt.get('use_amp', GPUTrainingOptions.use_amp),
                                                      opt.get('amp_bf16', GPUTrainingOptions.amp_bf16),
                                                      self.device, logger.warning)
        if self.is_train:
            self.grad_scaler = self.precision.grad_scaler()
        logger.info(self.levers_summary())

    def levers_summary(self) -> str:
        """One log line with the settings in effect."""
        amp = (f'autocast {self.precision.name} on {self.precision.device_type}'
               + (' with GradScaler' if self.grad_scaler is not None else '')) if self.precision.enabled else 'off'
        text = (f'GPU-training options: mixed precision {amp}; channels_last {self.use_channels_last}; compile '
                f'{self.compile_mode if self.use_compile else False}')
        if self.is_train:
            text += f'; accum_iter {self.accum_iter}; max_nonfinite_steps {self.max_nonfinite_steps}'
        return text

    # ------------------------------------------------------------------ networks

    def prepare_network(self, net: torch.nn.Module) -> torch.nn.Module:
        """Device, channels-last weights and in-place ``torch.compile`` (state_dict keys unchanged)."""
        net = net.to(self.device)
        if self.use_channels_last:
            net = net.to(memory_format=torch.channels_last)
        if self.use_compile:
            try:
                net.compile(mode=self.compile_mode)
            except Exception as exc:  # e.g. an unknown mode, or a platform torch.compile does not support
                raise self._compile_error(exc) from exc
        return net

    def model_to_device(self, net):
        return super().model_to_device(self.prepare_network(net))

    def init_training_settings(self):
        super().init_training_settings()
        if hasattr(self, 'net_g_ema'):
            self.net_g_ema = self.prepare_network(self.net_g_ema)

    def _compile_error(self, exc: Exception) -> CompileError:
        def first_line(e):
            text = str(e).strip()
            return f'{type(e).__name__}: {text.splitlines()[0] if text else ""}'.rstrip(': ')
        inner = getattr(exc, 'inner_exception', None)  # BackendCompilerFailed wraps the backend's own error
        what = first_line(exc) + (f' ({first_line(inner)})' if inner is not None else '')
        return CompileError(f'use_compile: torch.compile (mode {self.compile_mode!r}) failed with {what}. '
                            f'Set use_compile: false to run without compiling.')

    @contextmanager
    def compile_errors(self):
        """Turn torch.compile's errors (raised at the first forward / backward) into :class:`CompileError`."""
        if not self.use_compile:
            yield
            return
        try:
            yield
        except _compile_exceptions() as exc:
            raise self._compile_error(exc) from exc

    def net_forward(self, net: torch.nn.Module) -> torch.Tensor:
        """The network applied to the current batch."""
        return net(self.lq)

    def run_network(self, net: torch.nn.Module) -> torch.Tensor:
        """:meth:`net_forward` under the configured autocast and layout; the output in float32."""
        if self.use_channels_last:
            for attr in self.input_attrs:
                t = getattr(self, attr)
                if t.dim() == 4:
                    setattr(self, attr, t.contiguous(memory_format=torch.channels_last))
        with self.precision.autocast(), self.compile_errors():
            out = self.net_forward(net)
        return out.float()

    def test(self):
        net = getattr(self, 'net_g_ema', self.net_g)
        was_training = net.training
        net.eval()
        with torch.no_grad():
            self.output = self.run_network(net)
        net.train(was_training)

    # ------------------------------------------------------------------ the training step

    def compute_losses(self, output: torch.Tensor):
        """(total, OrderedDict of terms) of the configured pixel / perceptual losses (SRModel's terms)."""
        total, losses = 0, OrderedDict()
        if self.cri_pix:
            losses['l_pix'] = self.cri_pix(output, self.gt)
        if getattr(self, 'cri_perceptual', None):
            l_percep, l_style = self.cri_perceptual(output, self.gt)
            if l_percep is not None:
                losses['l_percep'] = l_percep
            if l_style is not None:
                losses['l_style'] = l_style
        for value in losses.values():
            total = total + value
        return total, losses

    def micro_batches(self, full: Dict[str, torch.Tensor]) -> List[Dict[str, torch.Tensor]]:
        """The batch ``full`` (attribute name -> tensor) split into ``accum_iter`` equal parts along the batch
        dimension."""
        n = self.accum_iter
        if n == 1:
            return [full]
        size = full['lq'].shape[0]
        if size % n:
            raise ValueError(f'train.accum_iter {n}: a training batch of {size} samples does not split into {n} '
                             f'equal micro-batches (the loader delivers accum_iter x batch_size_per_gpu per GPU)')
        parts = {a: t.tensor_split(n) for a, t in full.items()}
        return [{a: p[i] for a, p in parts.items()} for i in range(n)]

    def _gradient_sync(self, last: bool):
        """DDP all-reduces gradients only in the backward of the last micro-batch."""
        if not last and isinstance(self.net_g, DistributedDataParallel):
            return self.net_g.no_sync()
        return nullcontext()

    def optimize_parameters(self, current_iter: int):
        self.optimizer_g.zero_grad(set_to_none=True)
        full = {a: getattr(self, a) for a in self.micro_batch_attrs if hasattr(self, a)}
        parts = self.micro_batches(full)
        losses, outputs = OrderedDict(), []
        try:
            for i, part in enumerate(parts):
                for attr, t in part.items():
                    setattr(self, attr, t)
                with self._gradient_sync(last=i == len(parts) - 1), self.compile_errors():
                    output = self.run_network(self.net_g)
                    total, terms = self.compute_losses(output)
                    loss = total / len(parts)
                    (self.grad_scaler.scale(loss) if self.grad_scaler is not None else loss).backward()
                for name, value in terms.items():
                    losses[name] = losses.get(name, 0) + value.detach() / len(parts)
                outputs.append(output.detach())
        finally:
            for attr, t in full.items():
                setattr(self, attr, t)
        self.output = outputs[0] if len(outputs) == 1 else torch.cat(outputs)
        self.apply_gradients(current_iter, losses)
        self.log_dict = self.reduce_loss_dict(losses)

    def gradients_finite(self, losses: Dict[str, torch.Tensor]) -> bool:
        """Whether every loss term and every gradient is finite; under DDP on every rank (one all-reduce)."""
        values = [v.detach().float().reshape(-1) for v in losses.values()]
        grads = [p.grad.detach() for p in self.net_g.parameters() if p.grad is not None]
        if grads:  # max |g| per tensor in one fused call (as clip_grad_norm_ does); NaN propagates
            values += [torch.stack(torch._foreach_norm(grads, float('inf'))).float()]
        bad = (~torch.isfinite(torch.cat(values))).any().float() if values else torch.zeros((), device=self.device)
        if self.opt.get('dist') and dist.is_available() and dist.is_initialized():
            dist.all_reduce(bad, op=dist.ReduceOp.MAX)
        return not bool(bad)

    def apply_gradients(self, current_iter: int, losses: Dict[str, torch.Tensor]):
        """Optimizer (and scaler) step and EMA update, or the non-finite skip (module docstring)."""
        scaler = self.grad_scaler
        if scaler is not None:
            scaler.unscale_(self.optimizer_g)  # clipping (an optimizer pre-step hook) then sees true gradients
        if not self.gradients_finite(losses):
            self.optimizer_g.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.update()  # no step; lowers the float16 scale after the overflow unscale_ found
            self.nonfinite_streak += 1
            shown = ', '.join(f'{k} {float(v):.4g}' for k, v in losses.items())
            get_root_logger().warning(
                f'iter {current_iter}: non-finite loss or gradients ({shown}); step skipped (no optimizer or EMA '
                f'update), {self.nonfinite_streak} in a row (train.max_nonfinite_steps: {self.max_nonfinite_steps})')
            if self.nonfinite_streak >= self.max_nonfinite_steps:
                raise NonFiniteLossError(self._nonfinite_message(current_iter))
            return
        self.nonfinite_streak = 0
        if scaler is not None:
            scaler.step(self.optimizer_g)
            scaler.update()
        else:
            self.optimizer_g.step()
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    def _nonfinite_message(self, current_iter: int) -> str:
        paths = self.opt['path']
        return (f'training stopped at iter {current_iter}: {self.nonfinite_streak} consecutive steps had NaN/Inf '
                f'loss or gradients (train.max_nonfinite_steps: {self.max_nonfinite_steps}); none of them changed '
                f'the weights. The last saved weights and training state ({paths.get("models")}, '
                f'{paths.get("training_states")}) are intact: fix the cause (data, learning rate, use_amp / '
                f'amp_bf16) and continue with --auto_resume.')

    # ------------------------------------------------------------------ training state

    @master_only
    def save_training_state(self, epoch, current_iter):
        """basicsr's state (epoch, iter, optimizers, schedulers) plus ``grad_scaler``; written atomically."""
        if current_iter == -1:
            return
        state = {'epoch': epoch, 'iter': current_iter, 'optimizers': [o.state_dict() for o in self.optimizers],
                 'schedulers': [s.state_dict() for s in self.schedulers]}
        if self.grad_scaler is not None:
            state['grad_scaler'] = self.grad_scaler.state_dict()
        # whole or not at all: a crash mid-write leaves the previous states readable; a full disk stops the run
        atomic_save(state, os.path.join(self.opt['path']['training_states'], f'{current_iter}.state'))

    def resume_training(self, resume_state):
        super().resume_training(resume_state)
        saved = resume_state.get('grad_scaler')
        logger = get_root_logger()
        if self.grad_scaler is not None and saved is not None:
            self.grad_scaler.load_state_dict(saved)
            logger.info(f'Resumed the GradScaler (scale {self.grad_scaler.get_scale():g})')
        elif self.grad_scaler is not None:
            logger.info('The resume state has no GradScaler state (saved without float16 AMP); starting a fresh '
                        'scale')
        elif saved is not None:
            logger.info('The resume state has a GradScaler state, unused now (float16 AMP is off)')

