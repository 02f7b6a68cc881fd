"""Float32 islands: the parts of the layers that compute in float32 under mixed precision.

Inside ``torch.autocast`` (bf16 or fp16) the convolutions, ``Linear`` layers
and matrix products run in the low precision; those are where the time goes
and where the precision loss is benign (their kernels accumulate in float32
and round once at the end).  The following parts are computed in float32
instead, on every device and on both layer paths (:mod:`.paths`):

* the pixel L2 norms of q and k (:func:`~.attention.pixel_norms`): a sum of
  N = H*W squares (N up to 65,536 at 256 x 256).  Autocast does not cover
  hand-written ``square().sum().sqrt()``: in bf16 (8 bits of mantissa, 3
  significant digits) every square and every partial sum would be rounded,
  and fp16 overflows at 65,504 (a sum of 65,536 squares of values near 1
  already does);
* the score normalisation of both attention layers (``q k^T / (|q| |k|^T)
  * temperature``) and the softmax after it (:func:`~.attention.attention_maps`):
  the normalised scores are cosines times a learned temperature; an error of
  2^-8 in a score becomes ~temperature x 2^-8 in the exponent.  CUDA's
  autocast keeps ``softmax`` in float32 but CPU's does not, and neither
  covers the division;
* the layer norms (:class:`~.norm.LayerNorm2d` and :class:`~.norm.Float32LayerNorm`,
  the spectral U-Net's): a mean and variance over the channels; CUDA's
  autocast runs ``layer_norm`` in float32, CPU's does not, and Restormer's
  BiasFree norm (``x / sqrt(var + eps)``, written out) is covered by neither;
* the calibration sigmoid (:class:`~.calibration.Calibration`): its gates
  g in (0, 1) scale every K/V channel; near 1 bf16 resolves only steps of
  2^-8.

An island takes its inputs to float32 (:func:`island`; float64 stays
float64, so the gradient checks in float64 are unaffected) and hands its
result back in the dtype it received (:func:`back`), which is the dtype the
next product would be cast to by autocast anyway, and which keeps a model
converted to half precision as a whole (``model.half()``, ONNX ``--fp16``)
consistent.  Outside autocast, in float32, every island is a no-op.
"""
import torch


def island_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype an island computes in for inputs of ``dtype``: float32, or float64 for float64."""
    if dtype in (torch.float32, torch.float64):   # the common case, without a dispatcher call
        return dtype
    return torch.promote_types(dtype, torch.float32)


def island(t: torch.Tensor) -> torch.Tensor:
    """``t`` in its island dtype (itself when it already is: no copy in float32)."""
    return t.to(island_dtype(t.dtype))


def back(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """An island's result ``t`` in the dtype of ``like`` (the island's input)."""
    return t.to(like.dtype)
