"""Pad images to a size multiple (the networks downsample by 2 three times)."""
import torch
import torch.nn.functional as F


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom/right of B x C x H x W to multiples of ``multiple``.

    Reflect padding, as Restormer's test scripts and validation; replicate
    where the image is too small to reflect (pad >= size, e.g. H = 1).
    Returns ``x`` itself when nothing needs padding; crop the result back with
    ``out[..., :H, :W]``.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if ph == 0 and pw == 0:
        return x
    mode = 'reflect' if ph < h and pw < w else 'replicate'
    return F.pad(x, (0, pw, 0, ph), mode=mode)
