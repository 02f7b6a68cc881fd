"""Restormer's gated depth-wise-conv feed-forward network (GDFN)."""
import torch
import torch.nn.functional as F
from torch import nn

from .pointwise import pointwise_nhwc


class GatedDconvFFN(nn.Module):
    """GDFN. Input/output: B x C x H x W; hidden width ``int(C * ffn_expansion_factor)``.

    ``project_in`` (1x1, C -> 2 hid) -> depth-wise 3x3 -> GELU(x1) * x2 ->
    ``project_out`` (1x1, hid -> C).  Parameter names match Restormer's
    ``FeedForward``.  The 1x1 convs run as matrix products so the depth-wise
    conv and the gate work on a channels-last tensor (:mod:`.pointwise`).
    """

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(pointwise_nhwc(x, self.project_in.weight, self.project_in.bias)).chunk(2, dim=1)
        return pointwise_nhwc(F.gelu(x1) * x2, self.project_out.weight, self.project_out.bias)
