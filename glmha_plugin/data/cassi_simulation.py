"""CASSI forward model of the MST toolbox's simulation (single-disperser, coded aperture).

A scene X (B x C x H x W, C bands) passes the coded aperture M (H x W, the
same for every band), then a disperser that shifts band i right by
``step * i`` columns; the detector sums the bands:

    Phi  = disperse(M tiled over C)                       B x C x H x (W + (C-1) * step)
    meas = sum_i disperse(M * X)_i                        B x H x (W + (C-1) * step)
    H    = shift_back(meas / C * 2)                       B x C x H x W

(H, Phi) are MST's inputs (upstream's ``input_setting='H'``,
``input_mask='Phi'``; the ``/ C * 2`` normalisation is upstream's).  All
functions work on the input's device and dtype, for any H, W and C.
"""
from typing import Tuple

import torch


def disperse(x: torch.Tensor, step: int = 2) -> torch.Tensor:
    """Shift band i right by ``step * i`` columns: B x C x H x W -> B x C x H x (W + (C-1) * step), zeros elsewhere."""
    b, c, h, w = x.shape
    out = x.new_zeros(b, c, h, w + (c - 1) * step)
    for i in range(c):
        out[:, i, :, step * i:step * i + w] = x[:, i]
    return out


def shift_back(meas: torch.Tensor, bands: int, step: int = 2) -> torch.Tensor:
    """Band i reads columns ``step * i`` .. ``step * i + W``: B x H x W' -> B x bands x H x (W' - (bands-1) * step)."""
    w = meas.shape[-1] - (bands - 1) * step
    if w < 1:
        raise ValueError(f'measurement of width {meas.shape[-1]} is too narrow for {bands} bands dispersed by {step}')
    return torch.stack([meas[..., step * i:step * i + w] for i in range(bands)], dim=1)


def simulate(gt: torch.Tensor, mask: torch.Tensor, step: int = 2) -> Tuple[torch.Tensor, torch.Tensor]:
    """(H, Phi) for scenes ``gt`` (B x C x H x W) seen through ``mask`` (B x 1 x H x W, B x H x W or H x W)."""
    b, c, h, w = gt.shape
    mask = mask.to(gt.dtype)
    mask = mask.reshape((-1, 1) + mask.shape[-2:]) if mask.dim() != 4 else mask
    if mask.shape[-2:] != (h, w) or mask.shape[0] not in (1, b):
        raise ValueError(f'mask {tuple(mask.shape)} does not fit scenes {tuple(gt.shape)}: give B x 1 x {h} x {w}')
    mask3d = mask.expand(b, c, h, w)
    phi = disperse(mask3d, step)
    meas = disperse(mask3d * gt, step).sum(dim=1)
    return shift_back(meas / c * 2, c, step), phi
