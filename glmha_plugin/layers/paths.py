"""Which implementation the layers run: the CPU path or the CUDA path, chosen here and nowhere else.

The attention layers compute the same function two ways (same parameters,
same modules called, same arithmetic up to float rounding; the tests compare
both with plain reference definitions, forward and backward, on CPU):

* attention over B x heads (:class:`~.attention.ChannelAttention`): CPU
  path, a Python loop over the images, each on strided views of q, k, v (no
  copies), the output written channels-last as ``v^T A^T``; CUDA path, one
  batched product ``A v`` over B x heads (q, k, v are copied into the layout
  the batched product needs), the output returned in the input's layout;
* pixel L2 norms (:func:`~.attention.pixel_norms`, both attention layers):
  CPU path, ``square().sum()`` (the CPU norm kernel is 2.5-3.5x slower on the
  strided pixel axis of channels-last tensors); CUDA path, one norm kernel
  (instead of a square and a sum);
* layout (:class:`~.attention.ChannelAttention`, the per-image products of
  :class:`~.pointwise.GuidedConv2d`): CPU path, channels-last, where the CPU
  depth-wise conv is ~2.5x faster (an NCHW input is converted once, the 1x1
  convolutions keep the layout, per-image products write it directly); CUDA
  path, the input's layout, products computed in NCHW form.

The 1x1 convolutions themselves are the modules' own calls on both paths.

:func:`layer_path` picks the path from the device of the layer's input:
CPU tensors take the CPU path, any other device (CUDA, and other
accelerators) the CUDA path.  The batch size does not enter: with one image
the batched product needs no copy (a size-1 batch dimension folds into a view)
and the loop runs once.  While a graph is exported (``torch.export``,
``torch.onnx.export(dynamo=True)``) the CUDA path is taken on every device: it
has no Python loop over the batch, so the exported graph
keeps a dynamic batch and image size, and its products need no transposes.

Tests (and anyone comparing the paths) force one with :func:`force_path`::

    with force_path('cuda'):          # runs on CPU tensors too
        y = layer(x)

The CUDA path's choices follow what the kernels are known to do (cuBLAS
strided-batched products, one reduction instead of many small launches,
cuDNN for convolutions); ``glmha benchmark --device cuda`` times them on a
GPU (docs/layer_paths.md).
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

import torch


@dataclass(frozen=True)
class LayerPath:
    """One way of computing the layers (module docstring's list)."""
    name: str
    per_image_attention: bool  # attention loops over images (strided views) instead of one B x heads product
    square_sum_norms: bool     # pixel norms as square().sum() instead of torch.linalg.vector_norm
    channels_last: bool        # channels-last tensors and products instead of the input's layout


CPU_PATH = LayerPath('cpu', per_image_attention=True, square_sum_norms=True, channels_last=True)
CUDA_PATH = LayerPath('cuda', per_image_attention=False, square_sum_norms=False, channels_last=False)
PATHS = {p.name: p for p in (CPU_PATH, CUDA_PATH)}

_forced: Optional[LayerPath] = None


def layer_path(x: torch.Tensor) -> LayerPath:
    """The path for a layer whose input is ``x``: forced one, else CUDA path when exporting, else by device."""
    if _forced is not None:
        return _forced
    if torch.compiler.is_exporting() or x.device.type != 'cpu':
        return CUDA_PATH
    return CPU_PATH


@contextmanager
def force_path(name: Optional[str]) -> Iterator[None]:
    """Run every layer on path ``name`` (``'cpu'`` or ``'cuda'``) inside the block; ``None``: choose by device."""
    global _forced
    if name is not None and name not in PATHS:
        raise ValueError(f'unknown layer path {name!r}: use one of {sorted(PATHS)} (or None to choose by device)')
    previous, _forced = _forced, (None if name is None else PATHS[name])
    try:
        yield
    finally:
        _forced = previous
