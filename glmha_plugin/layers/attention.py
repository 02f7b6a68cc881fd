"""Channel-wise self-attention (CSA, Restormer's MDTA) and GLMHA.

Both are one module, :class:`ChannelAttention`: GLMHA generates keys and
values with ``rank`` r <= C channels from an instance-guided input, CSA is the
special case r = C without guidance.  Sharing the implementation means a CSA
checkpoint and a full-rank, unguided GLMHA compute the same function with the
same parameter names (``temperature``, ``qkv``, ``qkv_dwconv``,
``project_out``), which is what the SVD warm start relies on.

Shapes (GLMHA.md): input X is B x C x H x W, N = H*W, h heads, d = C/h,
r_h = r/h.

    g       = Calibration(X)                         B x C      (guidance='calibration')
    q, k, v = split(DW3x3(PW(X -> C), PW(g*X -> 2r)))  B x h x d x N, B x h x r_h x N (x2)
    A       = softmax(t_h * l2norm_N(q) l2norm_N(k)^T)  B x h x d x r_h
    Y       = PW(A v)                                 B x C x H x W

``PW(g * X)`` is computed as ``(W diag(g)) X``: g is folded into a
per-instance copy of the K/V weight (2r x C numbers) instead of scaling the
full-resolution input (C x N numbers), and Q, K and V come out of one batched
matrix product, i.e. one pass over X.
"""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .calibration import Calibration

GUIDANCE = ('calibration', 'none')
DEFAULT_RANK_RATIO = 0.5
DEFAULT_GAMMA = 8


def resolve_rank(dim: int, num_heads: int, rank: Optional[int] = None, rank_ratio: Optional[float] = None) -> int:
    """The K/V rank r for C = ``dim`` channels and ``num_heads`` heads.

    Give at most one of ``rank`` (an int, 1 <= r <= C, a multiple of the
    heads) or ``rank_ratio`` (0 < ratio <= 1; r = ratio * C rounded to the
    nearest multiple of the heads, at least one per head).  Neither: ratio 0.5.
    """
    if dim % num_heads:
        raise ValueError(f'channels ({dim}) must be divisible by the number of heads ({num_heads})')
    if rank is not None and rank_ratio is not None:
        raise ValueError(f'give either rank ({rank}) or rank_ratio ({rank_ratio}), not both')
    if rank is not None:
        if isinstance(rank, bool) or not isinstance(rank, int):
            raise ValueError(f'rank must be an integer, got {rank!r}; use rank_ratio for a fraction of the channels')
        if not 1 <= rank <= dim:
            raise ValueError(f'rank {rank} is out of range for {dim} channels: use 1 <= rank <= {dim}')
        if rank % num_heads:
            lo = max(num_heads, rank // num_heads * num_heads)
            raise ValueError(f'rank {rank} is not divisible by the {num_heads} heads at {dim} channels; '
                             f'use a multiple of {num_heads}, e.g. {lo} or {min(dim, lo + num_heads)}')
        return rank
    ratio = DEFAULT_RANK_RATIO if rank_ratio is None else rank_ratio
    if not 0 < ratio <= 1:
        raise ValueError(f'rank_ratio must be in (0, 1], got {ratio}')
    per_head = max(1, round(ratio * dim / num_heads))
    return per_head * num_heads


def transposed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         temperature: torch.Tensor) -> torch.Tensor:
    """Attention across channels.

    Args:
        q: B x h x d x N queries.
        k, v: B x h x r_h x N keys and values.
        temperature: h x 1 x 1 learned scale.

    Returns:
        B x h x d x N, ``softmax(t * norm(q) norm(k)^T) v`` with L2 norms over N
        (finite for all-zero inputs: F.normalize clamps the norm).
    """
    q = F.normalize(q, dim=-1)
    k = F.normalize(k, dim=-1)
    attn = (q @ k.transpose(-2, -1)) * temperature
    return attn.softmax(dim=-1) @ v


class ChannelAttention(nn.Module):
    """Multi-head channel attention with K/V rank ``rank`` and optional guidance.

    Input and output: B x C x H x W, any H, W >= 1.  Use :class:`CSA` or
    :class:`GLMHA` rather than this base class directly.

    Args:
        dim: channels C.
        num_heads: heads h (divides C and ``rank``).
        bias: biases in the 1x1 / depth-wise convolutions and the calibration MLP.
        rank: K/V channels r (r = C and no guidance is CSA).
        guidance: ``'calibration'`` (instance-guided K/V) or ``'none'``.
        gamma: calibration reduction (hidden width C // gamma).
    """

    def __init__(self, dim: int, num_heads: int, bias: bool, rank: int, guidance: str, gamma: int):
        super().__init__()
        if guidance not in GUIDANCE:
            raise ValueError(f'guidance must be one of {GUIDANCE}, got {guidance!r}')
        resolve_rank(dim, num_heads, rank=rank)  # validates
        self.dim, self.num_heads, self.rank = dim, num_heads, rank
        # Registration order = Restormer's state_dict order.
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        width = dim + 2 * rank
        self.qkv = nn.Conv2d(dim, width, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(width, width, kernel_size=3, padding=1, groups=width, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        self.calib = Calibration(dim, gamma, bias) if guidance == 'calibration' else None

    @property
    def guidance(self) -> str:
        return 'none' if self.calib is None else 'calibration'

    def extra_repr(self) -> str:
        return f'dim={self.dim}, heads={self.num_heads}, rank={self.rank}, guidance={self.guidance}'

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """1x1 projection to [q | k | v]: B x C x H x W -> B x (C + 2r) x H x W (before the depth-wise conv)."""
        if self.calib is None:
            return self.qkv(x)
        b, c, h, w = x.shape
        g = self.calib(x)                                              # B x C
        q_w, kv_w = self.qkv.weight.flatten(1).split([c, 2 * self.rank])
        weight = torch.cat([q_w.expand(b, -1, -1), kv_w * g.unsqueeze(1)], dim=1)  # B x (C+2r) x C
        if self.qkv.bias is None:
            out = torch.bmm(weight, x.flatten(2))
        else:
            out = torch.baddbmm(self.qkv.bias.view(1, -1, 1), weight, x.flatten(2))
        return out.view(b, -1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if c != self.dim:
            raise ValueError(f'{type(self).__name__} was built for {self.dim} channels, got input {tuple(x.shape)}')
        heads, r = self.num_heads, self.rank
        q, k, v = self.qkv_dwconv(self.project(x)).split([c, r, r], dim=1)
        out = transposed_attention(q.reshape(b, heads, c // heads, h * w), k.reshape(b, heads, r // heads, h * w),
                                   v.reshape(b, heads, r // heads, h * w), self.temperature)
        return self.project_out(out.reshape(b, c, h, w))


class CSA(ChannelAttention):
    """Restormer's MDTA: full-rank channel attention, state_dict identical to upstream's ``Attention``."""

    def __init__(self, dim: int, num_heads: int, bias: bool = False):
        super().__init__(dim, num_heads, bias, rank=dim, guidance='none', gamma=DEFAULT_GAMMA)


class GLMHA(ChannelAttention):
    """Guided low-rank multi-head self-attention (see module docstring).

    Args:
        dim, num_heads, bias: as :class:`ChannelAttention`.
        rank / rank_ratio: K/V rank, see :func:`resolve_rank` (default ratio 0.5).
        guidance: ``'calibration'`` (default) or ``'none'`` (ablation).
        gamma: calibration reduction, hidden width ``max(1, C // gamma)`` (default 8).
    """

    def __init__(self, dim: int, num_heads: int, bias: bool = False, rank: Optional[int] = None,
                 rank_ratio: Optional[float] = None, guidance: str = 'calibration', gamma: int = DEFAULT_GAMMA):
        super().__init__(dim, num_heads, bias, rank=resolve_rank(dim, num_heads, rank, rank_ratio),
                         guidance=guidance, gamma=gamma)
