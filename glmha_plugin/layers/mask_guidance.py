"""MST's mask-guided mechanism, for any input size and any number of output channels.

MST (Cai et al., CVPR 2022) modulates the attention values with an embedding
of the CASSI mask.  The network receives the mask already dispersed ("Phi":
band i shifted right by ``step * i`` columns, so B x C x H x (W + (C-1)*step)
at full resolution); the embedding is computed on that dispersed grid and then
shifted back per channel onto the H x W feature grid:

    m   = conv1(Phi)                                1x1, C -> n
    m   = m + m * sigmoid(DW5x5(conv2(m)))          conv2: 1x1, n -> n
    out = shift_back(m)                             B x n x H x W

Upstream derives the per-channel shift from the feature height
(``256 // rows``) and crops to ``rows`` columns, so it only works for square
256 x 256 inputs.  Here the shift is a function of the U-Net level alone and
the crop uses the feature width, so any H x W the network can downsample
works.  At level l (features H/2^l x W/2^l, mask embedded from C = C0 * 2^l
channels) channel i of an n-channel embedding moves left by

    s_i = floor(step * i * C / (n * 4^l))

columns, which is upstream's ``int(step / 4^l * i)`` when n = C (the GLMHA
variant uses n = r < C: its channels then spread over the same dispersion
range).
"""
from typing import List

import torch
from torch import nn


def level_shifts(channels: int, out_channels: int, step: int, level: int) -> List[int]:
    """Left shift (columns) of each of the ``out_channels`` embedding channels at U-Net ``level``."""
    return [(step * i * channels) // (out_channels * 4**level) for i in range(out_channels)]


def shift_back_columns(x: torch.Tensor, shifts: torch.Tensor, width: int) -> torch.Tensor:
    """Channel i of ``x`` (B x n x H x W') read from column ``shifts[i]`` on: B x n x H x ``width``."""
    b, n, h, _ = x.shape
    index = shifts.view(1, n, 1, 1) + torch.arange(width, device=x.device).view(1, 1, 1, width)
    return torch.gather(x, 3, index.expand(b, n, h, width))


class MaskGuidance(nn.Module):
    """MST's ``MaskGuidedMechanism`` (module docstring); keys ``conv1``, ``conv2``, ``depth_conv``.

    Args:
        dim: channels C of the dispersed mask at this level.
        out_dim: embedding channels n (C in MST; the GLMHA variant's value rank r).
        step: dispersion step at full resolution (columns per band; 2 in MST).
        level: U-Net level (0 = full resolution).

    Shapes: ``forward(mask, width)``: B x C x H x W' -> B x n x H x ``width``.
    """

    def __init__(self, dim: int, out_dim: int, step: int, level: int):
        super().__init__()
        self.conv1 = nn.Conv2d(dim, out_dim, kernel_size=1, bias=True)
        self.conv2 = nn.Conv2d(out_dim, out_dim, kernel_size=1, bias=True)
        self.depth_conv = nn.Conv2d(out_dim, out_dim, kernel_size=5, padding=2, bias=True, groups=out_dim)
        self.step, self.level = step, level
        shifts = level_shifts(dim, out_dim, step, level)
        self.max_shift = max(shifts)
        self.register_buffer('shifts', torch.tensor(shifts), persistent=False)

    def forward(self, mask: torch.Tensor, width: int) -> torch.Tensor:
        if mask.shape[-1] < self.max_shift + width:
            raise ValueError(f'the dispersed mask is {mask.shape[-1]} columns wide, but {self.max_shift + width} are '
                             f'needed for {width}-column features at this level: pass Phi of width '
                             f'W + (bands - 1) * step (the shifted mask of an H x W scene)')
        m = self.conv1(mask)
        m = m + m * torch.sigmoid(self.depth_conv(self.conv2(m)))
        return shift_back_columns(m, self.shifts, width)
