"""1x1 convolutions, on the CPU path as matrix products that choose the memory layout of the result.

CPU path: PyTorch's CPU convolution runs a depth-wise 3x3 conv about 2.5x
faster on a channels-last (NHWC) tensor than on an NCHW one, and converting
layouts costs a full pass over the tensor.  Computing the 1x1 projection that
feeds a depth-wise conv as ``pixels x C_in @ C_in x C_out`` writes its result
directly in channels-last layout at no extra cost; the projection that
follows can read either layout and writes channels-last again.

CUDA path (:mod:`.paths`): ``F.conv2d`` (cuDNN: it picks tensor-core
kernels under autocast and fuses the bias) when the weight is shared and the
input already has the layout the result should have; a matrix product
(cuBLAS) that writes the wanted layout directly when the layout changes (the
attention output, NCHW after the batched product, back to a channels-last
stream) or when every image has its own weight (GLMHA's folded guidance).

Weights are the ``C_out x C_in x 1 x 1`` tensors of the ``nn.Conv2d``
modules (flattened where needed), so parameters and results are those of the
convolutions.
"""
from typing import Optional

import torch
import torch.nn.functional as F

from .paths import LayerPath


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a channels-last 4-d tensor, else ``torch.contiguous_format``."""
    if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def _batched(weight: torch.Tensor, batch: int) -> torch.Tensor:
    """C_out x C_in x 1 x 1 / C_out x C_in / B x C_out x C_in -> B x C_out x C_in (a view)."""
    if weight.dim() == 4:
        weight = weight.flatten(1)
    return weight.expand(batch, -1, -1) if weight.dim() == 2 else weight


def pointwise_nhwc(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """1x1 conv, B x C_in x H x W (any layout) -> B x C_out x H x W in channels-last layout.

    ``weight``: C_out x C_in (x 1 x 1), or B x C_out x C_in for a per-image weight.
    """
    b, _, h, w = x.shape
    rows = x.flatten(2).transpose(1, 2)                       # B x N x C_in (a view)
    w_t = _batched(weight, b).transpose(1, 2)                 # B x C_in x C_out
    out = torch.bmm(rows, w_t) if bias is None else torch.baddbmm(bias.view(1, 1, -1), rows, w_t)
    return out.view(b, h, w, -1).permute(0, 3, 1, 2)


def pointwise_nchw(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor] = None) -> torch.Tensor:
    """1x1 conv, B x C_in x H x W (any layout) -> B x C_out x H x W, contiguous (NCHW); weights as above."""
    b, c, h, w = x.shape
    cols = x.reshape(b, c, h * w)                             # B x C_in x N (a view for NCHW and NHWC inputs)
    wb = _batched(weight, b)                                  # B x C_out x C_in
    out = torch.bmm(wb, cols) if bias is None else torch.baddbmm(bias.view(1, -1, 1), wb, cols)
    return out.view(b, -1, h, w)


def pointwise(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor], path: LayerPath,
              memory_format: Optional[torch.memory_format] = None) -> torch.Tensor:
    """1x1 conv B x C_in x H x W -> B x C_out x H x W on ``path`` (module docstring); weights as above.

    CPU path: always channels-last (``memory_format`` is ignored).  CUDA path:
    the result has ``memory_format`` (default: the input's).
    """
    if path.matmul_pointwise:
        return pointwise_nhwc(x, weight, bias)
    fmt = memory_format_of(x) if memory_format is None else memory_format
    if weight.dim() != 3 and memory_format_of(x) == fmt:  # a shared weight, no layout change: cuDNN
        return F.conv2d(x, weight if weight.dim() == 4 else weight[:, :, None, None], bias).contiguous(
            memory_format=fmt)
    return pointwise_nhwc(x, weight, bias) if fmt == torch.channels_last else pointwise_nchw(x, weight, bias)
