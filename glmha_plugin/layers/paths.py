"""Which implementation the layers run: the CPU path or the CUDA path, chosen here and nowhere else.

The attention and feed-forward layers compute the same function two ways
(same parameters, same arithmetic up to float rounding; the tests compare
both with plain reference definitions, forward and backward, on CPU):

* attention over B x heads (:class:`~.attention.ChannelAttention`): CPU
  path, a Python loop over the images, each on strided views of q, k, v (no
  copies); CUDA path, one batched product over B x heads (q, k, v are copied
  into the layout the batched product needs);
* pixel L2 norms (:func:`~.attention.pixel_norms`, both attention layers):
  CPU path, squares summed 2048 pixels at a time (cache-resident pieces; the
  CPU norm kernel is ~10x slower on the strided pixel axis of channels-last
  tensors); CUDA path, one reduction (one kernel instead of three per piece);
* 1x1 convolutions (:func:`~.pointwise.pointwise`): CPU path, matrix
  products written channels-last, where the CPU depth-wise conv is ~2.5x
  faster; CUDA path, ``F.conv2d`` (cuDNN) where the weight is shared and the
  layout stays, a matrix product writing the wanted layout where the layout
  changes or the weight is per image (guidance).

:func:`layer_path` picks the path from the device of the layer's input:
CPU tensors take the CPU path, any other device (CUDA, and other
accelerators) the CUDA path.  The batch size does not enter: with one image
the batched product needs no copy (a size-1 batch dimension folds into a view)
and the loop runs once, so both paths cost the same there.  While a graph is
exported (``torch.export``, ``torch.onnx.export(dynamo=True)``) the CUDA path
is taken on every device: it has no Python loop over the batch or over pixel
pieces, so the exported graph keeps a dynamic batch and image size.

Tests (and anyone comparing the paths) force one with :func:`force_path`::

    with force_path('cuda'):          # runs on CPU tensors too
        y = layer(x)

The CUDA path's choices follow what the kernels are known to do (cuBLAS
strided-batched products, one reduction instead of many small launches,
cuDNN for convolutions); they have not been timed on a GPU yet
(``glmha benchmark --device cuda`` does; docs/layer_paths.md).
"""
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

import torch


@dataclass(frozen=True)
class LayerPath:
    """One way of computing the layers (module docstring's table)."""
    name: str
    per_image_attention: bool  # attention loops over images (strided views) instead of one B x heads product
    chunked_norms: bool        # pixel norms summed in pieces instead of one reduction
    matmul_pointwise: bool     # 1x1 convs as matrix products into channels-last instead of cuDNN convs


CPU_PATH = LayerPath('cpu', per_image_attention=True, chunked_norms=True, matmul_pointwise=True)
CUDA_PATH = LayerPath('cuda', per_image_attention=False, chunked_norms=False, matmul_pointwise=False)
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
