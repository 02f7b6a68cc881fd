"""Mixed precision from the options: the autocast dtype for a device, and whether a GradScaler is needed.

``use_amp: true`` (Retinexformer's and traiNNer-redux's key) switches
``torch.amp.autocast`` on for training, validation and testing;
``amp_bf16: true`` (traiNNer-redux's key) asks for bfloat16 instead of
float16.  What runs:

| device | amp_bf16: false | amp_bf16: true |
|---|---|---|
| CUDA with bf16 | float16 + GradScaler | bfloat16, no scaler |
| CUDA without bf16 (before Ampere) | float16 + GradScaler | float16 + GradScaler, one-line warning |
| CPU | bfloat16, one-line warning | bfloat16, no scaler |
| other (xpu, mps, ...) | float16 + GradScaler | bfloat16 |

bfloat16 has float32's exponent range, so its gradients do not underflow
and need no scaler; float16 does (``torch.amp.GradScaler``).
"""
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Callable, Optional

import torch


@dataclass(frozen=True)
class Precision:
    """What autocast does on one device: ``dtype`` None means float32 throughout (no autocast)."""
    device_type: str
    dtype: Optional[torch.dtype] = None

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    @property
    def needs_scaler(self) -> bool:
        return self.dtype == torch.float16

    @property
    def name(self) -> str:
        return 'float32' if self.dtype is None else str(self.dtype).replace('torch.', '')

    def autocast(self):
        """The autocast context of this precision (a no-op context for float32)."""
        if not self.enabled:
            return nullcontext()
        return torch.amp.autocast(device_type=self.device_type, dtype=self.dtype)

    def grad_scaler(self) -> Optional[torch.amp.GradScaler]:
        """A fresh GradScaler for float16, None otherwise."""
        return torch.amp.GradScaler(self.device_type) if self.needs_scaler else None


def cuda_has_bf16() -> bool:
    """Native bfloat16 on the current CUDA device (emulated bf16 on older GPUs does not count: it is slow)."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older torch: no including_emulation argument
        return torch.cuda.is_bf16_supported()


def resolve_precision(use_amp: bool, amp_bf16: bool, device: torch.device,
                      warn: Callable[[str], None]) -> Precision:
    """The :class:`Precision` for ``use_amp`` / ``amp_bf16`` on ``device`` (module docstring); ``warn`` gets
    the one-line message of a fallback."""
    device = torch.device(device)
    if not use_amp:
        return Precision(device.type)
    if device.type == 'cuda':
        if amp_bf16 and not cuda_has_bf16():
            warn('amp_bf16: this GPU has no native bfloat16; using float16 autocast with a GradScaler instead')
            return Precision('cuda', torch.float16)
        return Precision('cuda', torch.bfloat16 if amp_bf16 else torch.float16)
    if device.type == 'cpu':
        if not amp_bf16:
            warn('use_amp on CPU: float16 autocast is for GPUs; using bfloat16 instead (set amp_bf16: true to '
                 'silence this)')
        return Precision('cpu', torch.bfloat16)
    return Precision(device.type, torch.bfloat16 if amp_bf16 else torch.float16)
