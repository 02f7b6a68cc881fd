"""1x1 projections whose output channels read the input scaled per image: GLMHA's guided ``qkv``.

GLMHA's instance guidance multiplies the input of the key/value projection
channel by channel with an image's gates g (B x C): ``k, v = PW(g * X)``,
while the queries read X itself (docs/method.md).  Restormer's attention holds Q,
K and V in one ``qkv`` convolution, so with guidance its leading rows read X
and its trailing ``guided`` rows read g * X.  :class:`GuidedConv2d` is that
convolution: an ``nn.Conv2d`` (1x1, same parameters, ``state_dict`` keys and
result as one when called without a gate) whose ``forward(x, gate=g)``
computes both in one call, so forward hooks fire once with the real input and
output, pruning masks and parametrisations of ``weight`` apply (the forward
reads ``self.weight`` after the pre-hooks ran), and ``isinstance(m,
nn.Conv2d)`` holds.  g is folded into a per-image copy of the guided rows of
the weight, ``(W diag(g)) X``, so Q, K and V still come out of one matrix
product, one pass over X.

Any other module in its place (a wrapper adding a low-rank delta in its
forward, a quantised replacement) cannot be given the gate: :func:`guided_call`
calls such a module once on the images and their guided copies stacked along
the batch, ``[X; g * X]``, and takes the leading rows from the first half
and the guided rows from the second.  That is exact for any module (it runs
the module's own forward on the inputs the maths asks for) and costs a second
pass of the projection.

The two layer paths (:mod:`.paths`) compute the guided call two ways.  CPU
path: the per-image product is written channels-last (``pixels x C_in @ C_in
x C_out``), where PyTorch's CPU depth-wise conv that follows is ~2.5x faster.
CUDA path (and exported graphs): the input is scaled, ``g * X`` (one
element-wise pass), and the two row blocks are two convolutions of the shared
weight's blocks, concatenated, in the input's layout; an ONNX graph then holds
only Mul, Conv and Concat, which onnxruntime runs in its blocked convolution
layout (a per-image MatMul there measured slower, docs/measuring.md).
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .paths import layer_path


def memory_format_of(x: torch.Tensor) -> torch.memory_format:
    """``torch.channels_last`` for a channels-last 4-d tensor, else ``torch.contiguous_format``."""
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format


def per_image_pointwise(x: torch.Tensor, weight: torch.Tensor, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """1x1 conv with a weight per image, written channels-last: B x C_in x H x W (any layout) -> B x C_out x H x W.

    ``weight``: B x C_out x C_in.  One ``pixels x C_in @ C_in x C_out``
    product per image, whose result is the channels-last tensor.
    """
    b, _, h, w = x.shape
    rows = x.flatten(2).transpose(1, 2)                       # B x N x C_in (a view for NCHW and NHWC inputs)
    w_t = weight.transpose(1, 2)                              # B x C_in x C_out
    out = torch.bmm(rows, w_t) if bias is None else torch.baddbmm(bias.view(1, 1, -1), rows, w_t)
    return out.view(b, h, w, -1).permute(0, 3, 1, 2)


class GuidedConv2d(nn.Conv2d):
    """A 1x1 ``nn.Conv2d`` whose last ``guided`` output channels can read a per-image scaled input.

    ``forward(x)``: the convolution.  ``forward(x, gate=g)`` (g: B x C_in):
    output channels ``[:-guided]`` are ``conv(x)``, channels ``[-guided:]``
    are ``conv(g * x)`` (the per-image weight fold of the module docstring).
    Parameters and ``state_dict`` keys are ``nn.Conv2d``'s.
    """

    def __init__(self, in_channels: int, out_channels: int, guided: int, bias: bool = True):
        super().__init__(in_channels, out_channels, kernel_size=1, bias=bias)
        if not 0 < guided <= out_channels:
            raise ValueError(f'guided output channels must be in 1..{out_channels}, got {guided}')
        self.guided = guided

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, guided={self.guided}'

    def forward(self, x: torch.Tensor, gate: Optional[torch.Tensor] = None) -> torch.Tensor:
        if gate is None:
            return super().forward(x)
        plain, guided = self.weight.split([self.out_channels - self.guided, self.guided])
        if layer_path(x).channels_last:   # CPU path: g folded into per-image rows, one product
            b = x.shape[0]
            weight = torch.cat([plain.flatten(1).expand(b, -1, -1), guided.flatten(1) * gate.unsqueeze(1)], dim=1)
            return per_image_pointwise(x, weight, self.bias)
        bias = (None, None) if self.bias is None else self.bias.split([self.out_channels - self.guided, self.guided])
        scaled = x * gate[:, :, None, None].to(x.dtype)
        return torch.cat([F.conv2d(x, plain, bias[0]), F.conv2d(scaled, guided, bias[1])], dim=1)


def guided_call(module: nn.Module, x: torch.Tensor, gate: torch.Tensor, guided: int) -> torch.Tensor:
    """``module``'s output with its last ``guided`` channels computed from ``gate * x`` (module docstring).

    A :class:`GuidedConv2d` (or a parametrised one) gets the gate; any other
    module is called once on ``[x; gate * x]`` (2B images).
    """
    if type(module).forward is GuidedConv2d.forward:
        return module(x, gate=gate)
    b = x.shape[0]
    out = module(torch.cat([x, x * gate[:, :, None, None].to(x.dtype)]))
    leading = out.shape[1] - guided
    return torch.cat([out[:b, :leading], out[b:, leading:]], dim=1)
