"""Layer norms: Restormer's channel LayerNorm for B x C x H x W tensors, and ``nn.LayerNorm`` over the last dim.

Both compute in float32 under mixed precision (:mod:`.float32_islands`) and hand
their result back in the input's dtype.
"""
import torch
import torch.nn.functional as F
from torch import nn

from .float32_islands import back, island

LAYERNORM_TYPES = ('WithBias', 'BiasFree')
EPS = 1e-5


class _ChannelNorm(nn.Module):
    """Normalises over channels at each pixel. Input/output: B x C x H x W.

    Same arithmetic as Restormer's ``to_3d -> LayerNorm(C) -> to_4d`` (biased
    variance, eps 1e-5).  ``WithBias`` runs ``F.layer_norm`` on the
    channels-last view of the input, one fused kernel that keeps only the
    per-pixel mean and 1/std for the backward pass; the output is
    channels-last, which the attention and feed-forward layers read directly
    (:mod:`.pointwise`).  ``BiasFree`` divides the *uncentred* input by the
    standard deviation, as Restormer does, which ``F.layer_norm`` cannot express.
    """

    def __init__(self, dim: int, with_bias: bool):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if with_bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32, weight = island(x), island(self.weight)
        if self.bias is not None:
            out = F.layer_norm(x32.permute(0, 2, 3, 1), weight.shape, weight, island(self.bias),
                               EPS).permute(0, 3, 1, 2)
        else:
            var = torch.var(x32, dim=1, keepdim=True, unbiased=False)
            out = x32 * torch.rsqrt(var + EPS) * weight.view(1, -1, 1, 1)
        return back(out, x)


class LayerNorm2d(nn.Module):
    """Restormer's ``LayerNorm(dim, LayerNorm_type)``; parameters under ``body.``.

    Args:
        dim: channels C.
        LayerNorm_type: ``'WithBias'`` (weight and bias) or ``'BiasFree'`` (weight only).
    """

    def __init__(self, dim: int, LayerNorm_type: str = 'WithBias'):
        super().__init__()
        if LayerNorm_type not in LAYERNORM_TYPES:
            raise ValueError(f'LayerNorm_type must be one of {LAYERNORM_TYPES}, got {LayerNorm_type!r}')
        self.body = _ChannelNorm(dim, with_bias=LayerNorm_type == 'WithBias')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Float32LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm`` (same arguments, parameters and state_dict keys) computing in float32 under autocast.

    CPU autocast runs ``layer_norm`` in bf16 (CUDA's keeps it in float32);
    this one computes in float32 on every device (:mod:`.float32_islands`).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = None if self.weight is None else island(self.weight)
        bias = None if self.bias is None else island(self.bias)
        return back(F.layer_norm(island(x), self.normalized_shape, weight, bias, self.eps), x)
