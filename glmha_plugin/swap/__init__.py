"""Putting GLMHA into networks that exist: :func:`swap_attention` (any network's MDTA / MS-MSA, matched by
structure and checked by a probe), the SVD warm start from trained CSA weights (:mod:`.warm_start`), and the
``glmha swap`` command (:mod:`.tool`)."""
from .attention_swap import swap_attention
from .report import SwapError, SwappedLayer, SwapReport

__all__ = ['swap_attention', 'SwapError', 'SwapReport', 'SwappedLayer']
