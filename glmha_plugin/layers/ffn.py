"""Restormer's gated depth-wise-conv feed-forward network (GDFN)."""
import torch
import torch.nn.functional as F
from torch import nn


class GatedDconvFFN(nn.Module):
    """GDFN. Input/output: B x C x H x W; hidden width ``int(C * ffn_expansion_factor)``.

    ``project_in`` (1x1, C -> 2 hid) -> depth-wise 3x3 -> GELU(x1) * x2 ->
    ``project_out`` (1x1, hid -> C), each convolution called as its module
    (hooks, pruning masks, parametrisations and wrappers apply).  Parameter
    names match Restormer's ``FeedForward``.  The convolutions keep the
    input's layout (Restormer's features are channels-last, where the CPU
    depth-wise conv is fastest).
    """

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool):
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x1) * x2)
