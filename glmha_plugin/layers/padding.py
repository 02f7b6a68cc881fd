"""Pad images to a size multiple (the networks downsample by 2 three times) and crop the results back.

While a graph is exported (``torch.export``, ONNX) both steps are written so
that the graph serves every input size: the padding step is always present
(:func:`needs_padding`) and the crop gathers the rows and columns it keeps
(:func:`crop`; a slice would record the example's padding amount in the
exported program's shape checks).
"""
import torch
import torch.nn.functional as F


def needs_padding(*pads) -> bool:
    """Whether to run a padding step for pad sizes ``pads``: when one is non-zero, and always while exporting.

    An exported graph (``torch.export``, ONNX) serves every input size, so it
    must contain the padding step even when the example input needs none (a
    pad of 0 is then a copy); testing the sizes would fix them in the graph.
    """
    return torch.compiler.is_exporting() or any(p != 0 for p in pads)


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the bottom/right of B x C x H x W to multiples of ``multiple``.

    Reflect padding, as Restormer's test scripts and validation; replicate
    where the image is too small to reflect (pad >= size, e.g. H = 1).
    Returns ``x`` itself when nothing needs padding (except while exporting,
    :func:`needs_padding`); crop the result back with ``out[..., :H, :W]``.
    """
    h, w = x.shape[-2:]
    ph, pw = -h % multiple, -w % multiple
    if not needs_padding(ph, pw):
        return x
    mode = 'reflect' if ph < h and pw < w else 'replicate'
    return F.pad(x, (0, pw, 0, ph), mode=mode)


def crop(x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """``x[..., :h, :w]`` (a view); while exporting, the same values gathered by index (a copy)."""
    if not torch.compiler.is_exporting():
        return x[..., :h, :w]
    return x.index_select(-2, torch.arange(h, device=x.device)).index_select(-1, torch.arange(w, device=x.device))
