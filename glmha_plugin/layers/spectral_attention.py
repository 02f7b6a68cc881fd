"""Spectral-wise multi-head self-attention (MS-MSA of MST and MST++), CSA or GLMHA.

MST (CVPR 2022) and MST++ (CVPRW 2022) attend across channels like Restormer
but on channel-last tokens with ``Linear`` projections (no bias, no depth-wise
conv), a learned per-head ``rescale``, an output ``proj`` with bias, and a
positional-embedding branch (DW3x3 - GELU - DW3x3) on the values.  MST adds a
mask-guided branch (:class:`~glmha_plugin.layers.mask_guidance.MaskGuidance`)
that multiplies the values with an embedding of the CASSI mask; Retinexformer
(ICCV 2023, its "IG-MSA") multiplies them with the illumination features
computed by its illumination estimator (``illumination_guided=True``).  In
both the guidance M multiplies only the values that are attended; the
positional branch sees the values before the product.

Input x: B x H x W x C, N = H*W, h heads, d = C/h.  Upstream computes
``A = K^T Q`` (its own comment): the rows of the d x d map, and so the output
channels, are indexed by ``to_k``, and the softmax runs over ``to_q``'s
channels.  In the usual vocabulary ``to_k`` plays the query and ``to_q`` the
key.  Both variants keep that formula:

    attention='csa' (upstream; state_dict keys and shapes identical):
        qry = to_k(x), key = to_q(x), val = to_v(x)                  C, C, C channels
        Y   = proj(softmax(rescale * l2n(qry) l2n(key)^T) (val * M)) + pos_emb(val)
        M   = mm(Phi) (MST), the illumination features F (Retinexformer) or 1 (MST++)

    attention='glmha' (docs/method.md: the query side stays full; key and value
    get r < C channels from the instance-guided input g * x; Linear, no
    depth-wise conv, as the host):
        g   = Calibration(x)                                         B x C (guidance='calibration')
        qry = to_k(x)             Linear C -> C
        key = to_q(g * x)         Linear C -> r     (the modules called on the guided tokens)
        val = to_v(g * x)         Linear C -> r
        A   = softmax(rescale * l2n(qry) l2n(key)^T)                 B x h x d x r_h
        Y   = proj(A (val * M_r)) + pos_emb(expand_C(val))           B x H x W x C

How the value branches keep C output channels in the GLMHA variant:

* mask guidance: the mask embedding is computed with r output channels
  (``mm.conv1`` C -> r, ``mm.conv2`` r -> r, ``mm.depth_conv`` r), so it
  multiplies the r-channel values directly; this also saves parameters;
* illumination guidance: the C-channel illumination features come from
  outside the layer (shared by every block of a U-Net level), so value
  channel k is multiplied by illumination channel ``floor(k * C / r)``
  (``M_r = select_r(F)``, the first channel of the group of C/r positional
  channels that value channel k feeds); no parameter, no MAC (the product is
  element-wise, like the mask product, and not counted as a MAC);
* positional embedding: ``expand_C`` feeds output channel j of the first
  depth-wise conv from value channel ``floor(j * r / C)`` (a grouped conv
  r -> C with channel multiplier C/r when r divides C); both convs keep
  upstream's shapes (C x 1 x 3 x 3), no parameter is added.

With r = C and ``guidance='none'`` both rules are the identity, so a
full-rank unguided GLMHA computes exactly upstream's MS-MSA from the same
state_dict.  Parameter and MAC counts:
:func:`~glmha_plugin.layers.cost.spectral_csa_params`,
:func:`~glmha_plugin.layers.cost.spectral_glmha_params` and the ``*_macs``
twins, or per layer :meth:`SpectralMSA.analytic_params` /
:meth:`SpectralMSA.analytic_macs`.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import (
    DEFAULT_GAMMA,
    attention_maps,
    check_attention,
    check_guidance,
    resolve_rank,
    transposed_attention,
)
from .calibration import Calibration
from .cost import spectral_csa_macs, spectral_csa_params, spectral_glmha_macs, spectral_glmha_params
from .mask_guidance import MaskGuidance


class SpectralMSA(nn.Module):
    """MS-MSA with ``attention: csa | glmha`` (module docstring).

    Args:
        dim: channels C (tokens' last dimension).
        num_heads: heads h (divides C and the rank).
        attention: ``'csa'`` (upstream MS-MSA) or ``'glmha'``.
        rank / rank_ratio: GLMHA key/value rank, see :func:`~glmha_plugin.layers.resolve_rank`.
        guidance: GLMHA guidance, ``'calibration'`` (default) or ``'none'``.
        gamma: GLMHA calibration reduction (default 8).
        mask_step: ``None`` for MST++ (no mask branch); MST's dispersion step
            (2) to add the mask-guided branch.
        level: U-Net level of this block (0 = full resolution), for the mask shift; kept as
            ``self.level`` (the analysis tools group layers by level).
        illumination_guided: multiply the attended values by given C-channel
            features (Retinexformer's IG-MSA); excludes ``mask_step``.

    Shapes: ``forward(x, guide=None)``: x B x H x W x C; guide: MST's
    dispersed mask at this level, B x C x H x W' or 1 x C x H x W'
    (W' >= W + the level's dispersion), or Retinexformer's illumination
    features B x C x H x W (or 1 x ...); None without guidance (MST++).
    Output B x H x W x C.
    """

    def __init__(self, dim: int, num_heads: int, attention: str = 'csa', rank: Optional[int] = None,
                 rank_ratio: Optional[float] = None, guidance: Optional[str] = None, gamma: Optional[int] = None,
                 mask_step: Optional[int] = None, level: int = 0, illumination_guided: bool = False):
        super().__init__()
        if illumination_guided and mask_step is not None:
            raise ValueError('an MS-MSA is guided by the CASSI mask (mask_step, MST) or by illumination features '
                             '(illumination_guided, Retinexformer), not both')
        check_attention(attention, {k: v for k, v in dict(rank=rank, rank_ratio=rank_ratio, guidance=guidance,
                                                          gamma=gamma).items() if v is not None})
        if attention == 'csa':
            r = resolve_rank(dim, num_heads, rank=dim)
        else:
            r = resolve_rank(dim, num_heads, rank, rank_ratio)
            guidance = 'calibration' if guidance is None else guidance
            check_guidance(guidance)
        self.dim, self.num_heads, self.rank, self.attention, self.level = dim, num_heads, r, attention, level
        self.gamma = DEFAULT_GAMMA if gamma is None else gamma
        # Registration order = upstream's state_dict order (rescale first: own parameter).
        self.to_q = nn.Linear(dim, r, bias=False)
        self.to_k = nn.Linear(dim, dim, bias=False)
        self.to_v = nn.Linear(dim, r, bias=False)
        self.rescale = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.proj = nn.Linear(dim, dim, bias=True)
        first_pos = nn.Conv2d if r == dim else ExpandingDepthwiseConv2d   # takes the r-channel values (GLMHA)
        self.pos_emb = nn.Sequential(
            first_pos(dim, dim, 3, 1, 1, bias=False, groups=dim),
            nn.GELU(),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False, groups=dim),
        )
        self.mm = None if mask_step is None else MaskGuidance(dim, r, mask_step, level)
        self.illumination_guided = illumination_guided
        self.calib = None
        if attention == 'glmha' and guidance == 'calibration':
            self.calib = Calibration(dim, self.gamma, bias=False)
        # illumination channel of each of the r value channels (None: identity, r = C)
        self.register_buffer('guide_index', torch.arange(r) * dim // r if illumination_guided and r < dim else None,
                             persistent=False)

    @property
    def guidance(self) -> str:
        return 'none' if self.calib is None else 'calibration'

    def extra_repr(self) -> str:
        return (f'dim={self.dim}, heads={self.num_heads}, attention={self.attention}, rank={self.rank}, '
                f'guidance={self.guidance}, mask_guided={self.mm is not None}, '
                f'illumination_guided={self.illumination_guided}')

    def analytic_params(self) -> int:
        """This layer's parameter count from the formulas in :mod:`glmha_plugin.layers.cost`."""
        if self.attention == 'csa':
            return spectral_csa_params(self.dim, self.num_heads, self.mm is not None)
        return spectral_glmha_params(self.dim, self.num_heads, self.rank, self.guidance, self.gamma,
                                     self.mm is not None)

    def analytic_macs(self, n_pixels: int, n_mask_pixels: int = 0) -> Dict[str, int]:
        """MACs by term for ``n_pixels`` tokens (and an H x W' dispersed mask of ``n_mask_pixels``, MST).

        The illumination guidance adds no term: its product with the values is element-wise (r x N
        multiplications, not MACs) and the channel selection is data movement.
        """
        n_mask_pixels = n_mask_pixels if self.mm is not None else 0
        if self.attention == 'csa':
            return spectral_csa_macs(self.dim, self.num_heads, n_pixels, n_mask_pixels)
        return spectral_glmha_macs(self.dim, self.num_heads, self.rank, n_pixels, self.guidance, self.gamma,
                                   n_mask_pixels)

    def project(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(query, key, value) of B x H x W x C tokens: B x N x C (``to_k``), B x N x r (``to_q``, ``to_v``).

        Each is its module's call; with guidance ``to_q`` and ``to_v`` are
        called on the guided tokens ``g * x`` (one element-wise pass).
        """
        b, h, w, c = x.shape
        if c != self.dim:
            raise ValueError(f'SpectralMSA was built for {self.dim} channels, got tokens {tuple(x.shape)} '
                             f'(B x H x W x C)')
        tokens = x.reshape(b, h * w, c)
        query = self.to_k(tokens)
        if self.calib is not None:
            tokens = tokens * self.calib(x.permute(0, 3, 1, 2)).unsqueeze(1)                 # g * x
        return query, self.to_q(tokens), self.to_v(tokens)

    def _heads_first(self, t: torch.Tensor) -> torch.Tensor:
        """B x N x k tokens -> B x h x k/h x N (a view)."""
        b, n = t.shape[:2]
        return t.reshape(b, n, self.num_heads, -1).permute(0, 2, 3, 1)

    def attention_maps(self, x: torch.Tensor) -> torch.Tensor:
        """The softmax attention maps of tokens x (B x H x W x C): B x h x d x r_h, rows sum to 1; for analysis tools.

        The same projection and map function as :meth:`forward` (the mask
        only modulates the values, so the maps do not depend on it).
        """
        query, key, _ = self.project(x)
        return attention_maps(self._heads_first(query), self._heads_first(key), self.rescale)

    def value_guide(self, guide: Optional[torch.Tensor], b: int, h: int, w: int) -> Optional[torch.Tensor]:
        """The factor of the attended values, B x N x r (or 1 x N x r), or None (MST++)."""
        if self.mm is None and not self.illumination_guided:
            return None
        what = 'the dispersed mask Phi: call MST(x, mask)' if self.mm is not None else \
            'the illumination features (B x C x H x W)'
        if guide is None:
            raise ValueError(f'this guided MS-MSA needs {what}')
        if guide.shape[0] not in (1, b):
            kind = 'mask' if self.mm is not None else 'illumination'
            raise ValueError(f'{kind} batch {guide.shape[0]} does not match the input batch {b} (use {b} or 1)')
        if self.mm is not None:
            return self.mm(guide, w).flatten(2).transpose(1, 2)
        if guide.dim() != 4 or tuple(guide.shape[1:]) != (self.dim, h, w):
            raise ValueError(f'illumination features must be B x {self.dim} x {h} x {w} for tokens of {h} x {w}, '
                             f'got {tuple(guide.shape)}')
        return self.select_guide(guide)

    def select_guide(self, guide: torch.Tensor) -> torch.Tensor:
        """C-channel guidance B x C x H x W -> the factor of the r value channels, B x N x r (module docstring)."""
        if self.guide_index is not None:   # channels floor(k C / r): every (C / r)-th when r divides C (a view)
            guide = guide[:, ::self.dim // self.rank] if self.dim % self.rank == 0 else \
                guide.index_select(1, self.guide_index)
        return guide.flatten(2).transpose(1, 2)

    def forward(self, x: torch.Tensor, guide: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, h, w, _ = x.shape
        return self.attend(x, self.value_guide(guide, b, h, w))

    def attend(self, x: torch.Tensor, factor: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The layer on tokens x (B x H x W x C) whose attended values are multiplied by ``factor`` (B x N x r)."""
        query, key, value = self.project(x)
        b, h, w, c = x.shape
        n, r = h * w, self.rank
        attended = value if factor is None else value * factor                  # B x N x r

        out = transposed_attention(self._heads_first(query), self._heads_first(key), self._heads_first(attended),
                                   self.rescale)
        out = self.proj(out.permute(0, 3, 1, 2).reshape(b, n, c)).view(b, h, w, c)
        return out + self.positional(value.reshape(b, h, w, r).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)

    def positional(self, value: torch.Tensor) -> torch.Tensor:
        """pos_emb of the values B x r x H x W -> B x C x H x W, ``expand_C`` included (module docstring).

        ``self.pos_emb(value)``: with r < C its first conv is an
        :class:`ExpandingDepthwiseConv2d` that takes the r-channel values.
        """
        return self.pos_emb(value)


class ExpandingDepthwiseConv2d(nn.Conv2d):
    """A depth-wise ``nn.Conv2d`` on C channels (same parameters and keys) that also takes r < C channels.

    ``forward(x)`` with C input channels is the convolution; with r channels
    it is the convolution of ``expand_C(x)`` (output channel j reads input
    channel ``floor(j * r / C)``, the spectral layer's positional rule).
    When r divides C that runs as the equivalent grouped conv r -> C (groups
    r, the same C x 1 x k x k weight), so the C-channel copy of the input is
    never written nor kept for the backward pass; otherwise the input is
    expanded with ``index_select`` first.  Called as a module either way
    (hooks, pruning masks and parametrisations of ``weight`` apply).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c, r = self.out_channels, x.shape[1]
        if r == self.in_channels or x.dim() != 4:
            return super().forward(x)
        if r > c:
            raise ValueError(f'{type(self).__name__} expands at most {c} channels, got input {tuple(x.shape)}')
        if c % r:
            x = x.index_select(1, torch.arange(c, device=x.device) * r // c)
            r = c
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, r)
