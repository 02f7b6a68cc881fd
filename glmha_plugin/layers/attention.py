"""Channel-wise self-attention (CSA, Restormer's MDTA) and GLMHA.

Both are one module, :class:`ChannelAttention`: GLMHA generates keys and
values with ``rank`` r <= C channels from an instance-guided input, CSA is the
special case r = C without guidance.  Sharing the implementation means a CSA
checkpoint and a full-rank, unguided GLMHA compute the same function with the
same parameter names (``temperature``, ``qkv``, ``qkv_dwconv``,
``project_out``), which is what the SVD warm start relies on.

Shapes (docs/method.md): input X is B x C x H x W, N = H*W, h heads, d = C/h,
r_h = r/h.

    g       = Calibration(X)                         B x C      (guidance='calibration')
    q, k, v = split(DW3x3(PW(X -> C), PW(g*X -> 2r)))  B x h x d x N, B x h x r_h x N (x2)
    A       = softmax(t_h * l2norm_N(q) l2norm_N(k)^T)  B x h x d x r_h
    Y       = PW(A v)                                 B x C x H x W

Every projection is computed by calling its module: ``qkv`` (a
:class:`~.pointwise.GuidedConv2d` with guidance, else an ``nn.Conv2d``),
``qkv_dwconv``, ``project_out`` and the calibration's ``fc1``/``fc2``.  Forward
hooks on them fire once per forward with their real input and output, pruning
masks and parametrisations of their weights apply, and a module put in their
place (e.g. a wrapper adding a low-rank delta in its forward) is what runs.
``PW(g * X)`` is computed by the guided ``qkv`` as ``(W diag(g)) X``: g is
folded into a per-image copy of the K/V rows of the weight (2r x C numbers)
instead of scaling the full-resolution input (C x N numbers), so Q, K and V
come out of one matrix product, one pass over X (:mod:`.pointwise`; a
foreign module in ``qkv``'s place is called once on ``[X; g * X]``).

Speed (same parameters and arithmetic as the modules' definitions; the tests
compare forward and backward with a plain ``nn.Conv2d``/``F.normalize``
reference on both layer paths, :mod:`.paths`): the L2 normalisation is
applied to the small d x r_h score matrix instead of writing normalised
copies of q and k (:func:`attention_maps`).  On the CPU path the layer works
on channels-last tensors, where PyTorch's CPU depth-wise conv is fastest:
an NCHW input is converted once, the 1x1 convolutions keep the layout, and
attention runs one image at a time over strided views of q, k and v (no
copies), its output written channels-last as ``v^T A^T``.  On the CUDA path
(and in exported graphs) attention is one batched product ``A v`` over B x
heads and its output is returned in the input's layout.  Under mixed
precision the norms, the score normalisation and the softmax compute in
float32 (:mod:`.float32_islands`).
"""
from typing import Optional

import torch
from torch import nn

from .calibration import Calibration
from .float32_islands import back, island, island_dtype
from .paths import LayerPath, layer_path
from .pointwise import GuidedConv2d, guided_call, memory_format_of

ATTENTIONS = ('csa', 'glmha')
GUIDANCE = ('calibration', 'none')
DEFAULT_RANK_RATIO = 0.5
DEFAULT_GAMMA = 8
NORM_EPS = 1e-12  # F.normalize's default


def check_attention(attention: str, glmha_options: dict) -> None:
    """A host's ``attention`` option: ``'csa'`` or ``'glmha'``, GLMHA options (given ones) only with glmha."""
    if attention not in ATTENTIONS:
        raise ValueError(f"unknown attention {attention!r}: use 'csa' or 'glmha'")
    if attention == 'csa' and glmha_options:
        raise ValueError(f'options {sorted(glmha_options)} apply only to attention: glmha (attention is csa)')


def check_guidance(guidance: str) -> None:
    """``guidance`` is one of :data:`GUIDANCE`."""
    if guidance not in GUIDANCE:
        raise ValueError(f'guidance must be one of {GUIDANCE}, got {guidance!r}')


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
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio <= 1:
        raise ValueError(f'rank_ratio must be a number in (0, 1], got {ratio!r}')
    per_head = max(1, round(ratio * dim / num_heads))
    return per_head * num_heads


def pixel_norms(t: torch.Tensor) -> torch.Tensor:
    """L2 norms over the last dimension (pixels), clamped at 1e-12 like ``F.normalize``: ... x N -> ....

    Computed in float32 (float64 for float64 input; :mod:`.float32_islands`),
    whatever the input's dtype.  CPU path (:mod:`.paths`): ``square().sum(-1)``
    in one reduction, clamped on the sum of squares (at 1e-24), which gives
    the same value and keeps the gradient finite for all-zero rows; on the
    channels-last views the layers pass, PyTorch's CPU norm kernel reduces
    over the strided pixel axis 2.5-3.5x slower at 128 x 128, and summing
    2048-pixel pieces (this function's earlier form) was 3x slower with two
    threads: every piece is a parallel region too small to share
    (docs/layer_paths.md).  CUDA path: one reduction
    (``torch.linalg.vector_norm`` with a float32 result dtype), clamped at
    1e-12 (its gradient is zero at an all-zero row).
    """
    if not layer_path(t).square_sum_norms:
        return torch.linalg.vector_norm(t, dim=-1, dtype=island_dtype(t.dtype)).clamp_min(NORM_EPS)
    return island(t).square().sum(-1).clamp_min(NORM_EPS * NORM_EPS).sqrt()


def attention_maps(q: torch.Tensor, k: torch.Tensor, temperature: torch.Tensor) -> torch.Tensor:
    """``softmax(t * l2norm_N(q) l2norm_N(k)^T)``: ... x h x d x r_h, rows sum to 1, in float32.

    Args:
        q: ... x h x d x N queries, k: ... x h x r_h x N keys (any strides).
        temperature: h x 1 x 1.

    The L2 normalisation is applied to the d x r_h product instead of to q and
    k: ``(q / |q|)(k / |k|)^T = (q k^T) / (|q| |k|^T)``, with the norms clamped
    at 1e-12 exactly as ``F.normalize`` does, so no normalised copy of q or k
    (C x N and r x N numbers) is written or kept for the backward pass.  The
    product ``q k^T`` runs in the input's precision (bf16/fp16 under
    autocast); the norms, the normalisation and the softmax in float32
    (float64 for float64 input), see :mod:`.float32_islands`.

    In float16 (fp16 autocast, or a model in half precision) q and k are
    normalised *before* the product, as ``F.normalize`` does: an unnormalised
    ``q k^T`` grows like N and overflows fp16's range (65,504) at large
    images (|q| |k| = 65,536 for unit-variance features at 256 x 256).
    """
    nq, nk = pixel_norms(q), pixel_norms(k)                     # ... x h x d, ... x h x r_h
    if q.dtype == torch.float16:
        qn, kn = (back(island(t) / n.unsqueeze(-1), t) for t, n in ((q, nq), (k, nk)))   # |entries| <= 1
        return (island(torch.matmul(qn, kn.transpose(-2, -1))) * temperature).softmax(dim=-1)
    scores = torch.matmul(q, k.transpose(-2, -1))
    return (island(scores) / (nq.unsqueeze(-1) * nk.unsqueeze(-2)) * temperature).softmax(dim=-1)


def transposed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                         temperature: torch.Tensor) -> torch.Tensor:
    """Attention across channels.

    Args:
        q: ... x h x d x N queries.
        k, v: ... x h x r_h x N keys and values.
        temperature: h x 1 x 1 learned scale.

    Returns:
        ... x h x d x N, ``softmax(t * norm(q) norm(k)^T) v`` with L2 norms over N
        (finite for all-zero inputs: the norms are clamped like F.normalize), in
        v's dtype (the maps are computed in float32, :func:`attention_maps`).
    """
    return torch.matmul(back(attention_maps(q, k, temperature), v), v)


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
        check_guidance(guidance)
        resolve_rank(dim, num_heads, rank=rank)  # validates
        self.dim, self.num_heads, self.rank = dim, num_heads, rank
        # Registration order = Restormer's state_dict order.
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        width = dim + 2 * rank
        if guidance == 'calibration':   # the K/V rows read g * X (an nn.Conv2d; same keys)
            self.qkv = GuidedConv2d(dim, width, guided=2 * rank, bias=bias)
        else:
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
        """1x1 projection to [q | k | v]: B x C x H x W -> B x (C + 2r) x H x W (before the depth-wise conv).

        ``self.qkv(x)``; with guidance its K/V rows read ``g * x``
        (:func:`~.pointwise.guided_call`: g folded into per-image weights by
        the layer's own :class:`~.pointwise.GuidedConv2d`).
        """
        if self.calib is None:
            return self.qkv(x)
        return guided_call(self.qkv, x, self.calib(x), 2 * self.rank)

    def split_qkv(self, x: torch.Tensor):
        """q (B x C x N), k and v (B x r x N) after the projection and the depth-wise conv (views, no copies).

        On the CPU path an NCHW input is made channels-last first (module docstring).
        """
        c = x.shape[1]
        if x.dim() != 4 or c != self.dim:
            raise ValueError(f'{type(self).__name__} was built for {self.dim} channels, got input {tuple(x.shape)}')
        if layer_path(x).channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.qkv_dwconv(self.project(x)).flatten(2).split([c, self.rank, self.rank], dim=1)

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        """B x channels x N -> B x heads x channels/heads x N (a view for any strides)."""
        return t.unflatten(1, (self.num_heads, -1))

    def _per_head(self, fn, path: LayerPath, *tensors: torch.Tensor) -> torch.Tensor:
        """``fn`` over B x h x ... head views of ``tensors`` (B x channels x N): per image (CPU path) or batched.

        Per image, each image's q/k/v are strided views that batched products
        take as they are, where a B x h batch forces copies; the CUDA path
        accepts the copies for one batched product over B x heads.
        """
        heads = [self._heads(t) for t in tensors]
        if not path.per_image_attention:
            return fn(*heads)
        out = [fn(*(t[i] for t in heads)) for i in range(tensors[0].shape[0])]
        return out[0].unsqueeze(0) if len(out) == 1 else torch.stack(out)

    def attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The softmax attention maps of input x: B x h x d x r_h (rows sum to 1, float32); for analysis tools."""
        q, k, _ = self.split_qkv(x)
        return self._per_head(lambda q, k: attention_maps(q, k, self.temperature), layer_path(x), q, k)

    def _attend_channels_last(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Attention output B x N x C (channels-last), per image: ``(A v)^T = v^T A^T`` per head.

        With one head the product writes the image's N x C block directly;
        with several, the heads' N x d blocks are interleaved by one copy.
        """
        outs = []
        for qi, ki, vi in zip(*(self._heads(t) for t in (q, k, v)), strict=True):   # h x d x N, h x r_h x N (views)
            a = back(attention_maps(qi, ki, self.temperature), vi)              # h x d x r_h
            out = torch.matmul(vi.transpose(-2, -1), a.transpose(-2, -1))       # h x N x d
            outs.append(out[0] if self.num_heads == 1 else out.transpose(0, 1).flatten(1))
        return outs[0].unsqueeze(0) if len(outs) == 1 else torch.stack(outs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        path = layer_path(x)
        q, k, v = self.split_qkv(x)
        if path.per_image_attention:
            out = self._attend_channels_last(q, k, v).view(b, h, w, c).permute(0, 3, 1, 2)
        else:
            out = transposed_attention(self._heads(q), self._heads(k), self._heads(v), self.temperature)
            out = out.reshape(b, c, h, w).contiguous(memory_format=memory_format_of(x))
        return self.project_out(out)


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
