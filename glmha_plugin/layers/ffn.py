"""Restormer's gated depth-wise-conv feed-forward network (GDFN)."""
import torch
import torch.nn.functional as F
from torch import nn

from .paths import layer_path
from .pointwise import memory_format_of, pointwise


class GatedDconvFFN(nn.Module):
    """GDFN. Input/output: B x C x H x W; hidden width ``int(C * ffn_expansion_factor)``.

    ``project_in`` (1x1, C -> 2 hid) -> depth-wise 3x3 -> GELU(x1) * x2 ->
    ``project_out`` (1x1, hid -> C).  Parameter names match Restormer's
    ``FeedForward``.  On the CPU path the 1x1 convs run as matrix products so
    the depth-wise conv and the gate work on a channels-last tensor; on the
    CUDA path they are cuDNN convolutions in the input's layout
    (:mod:`.pointwise`, :mod:`.paths`).
    """

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        path = layer_path(x)
        x1, x2 = self.dwconv(pointwise(x, self.project_in.weight, self.project_in.bias, path)).chunk(2, dim=1)
        return pointwise(F.gelu(x1) * x2, self.project_out.weight, self.project_out.bias, path, memory_format_of(x))
