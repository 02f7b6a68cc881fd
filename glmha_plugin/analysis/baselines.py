"""A Linformer-style channel attention: the comparison baseline of the benchmark (not an architecture option).

Linformer shortens the *sequence* that keys and values run over with learned
projections.  In channel attention the sequence is the C channels, so the
baseline computes full-rank K and V exactly as CSA does and then projects
each from C to r channels with a learned r x C matrix (``proj_k``,
``proj_v``) at every pixel, before the per-head attention.  Compared with
CSA it saves ``2 d (C - r) N`` MACs in the two attention products but spends
``2 r C N`` on the projections, which is more than it saves unless
``d (C - r) > r C`` (docs/method.md, "Beyond the paper"); GLMHA instead makes K and
V low-rank where they are generated.
"""
from typing import Dict

import torch
from torch import nn

from ..layers import CSA, resolve_rank


class LinformerChannelAttention(CSA):
    """CSA with K and V projected from C to ``rank`` channels by learned matrices.

    Input and output: B x C x H x W.  Parameters: CSA's plus ``proj_k``,
    ``proj_v`` (``rank x C`` each).

    Args:
        dim, num_heads, bias: as :class:`~glmha_plugin.layers.CSA`.
        rank / rank_ratio: projected K/V channels r (a multiple of the heads),
            see :func:`~glmha_plugin.layers.resolve_rank`.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool = False, rank: int = None, rank_ratio: float = None):
        super().__init__(dim, num_heads, bias)
        self.kv_rank = resolve_rank(dim, num_heads, rank, rank_ratio)
        self.proj_k = nn.Parameter(torch.empty(self.kv_rank, dim))
        self.proj_v = nn.Parameter(torch.empty(self.kv_rank, dim))
        for p in (self.proj_k, self.proj_v):
            nn.init.kaiming_uniform_(p, a=5 ** 0.5)

    def extra_repr(self) -> str:
        return f'dim={self.dim}, heads={self.num_heads}, projected K/V rank={self.kv_rank}'

    def split_qkv(self, x: torch.Tensor):
        """CSA's q (B x C x N), then E k and F v (B x r x N each)."""
        q, k, v = super().split_qkv(x)
        b = x.shape[0]
        return q, torch.bmm(self.proj_k.expand(b, -1, -1), k), torch.bmm(self.proj_v.expand(b, -1, -1), v)


def linformer_macs(dim: int, num_heads: int, rank: int, n_pixels: int) -> Dict[str, int]:
    """MACs by term (CSA's, with attention over r projected channels, plus the projections)."""
    c, r, n, d = dim, rank, n_pixels, dim // num_heads
    return {
        'qkv_proj': 3 * c * c * n,
        'dwconv': 27 * c * n,
        'kv_linformer_proj': 2 * r * c * n,
        'attention': 2 * d * r * n,
        'out_proj': c * c * n,
    }
