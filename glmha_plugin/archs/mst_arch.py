"""MST (Cai et al., CVPR 2022) for CASSI snapshot reconstruction, with CSA or GLMHA.

One implementation serves both registered names:

* ``MST``: ``attention='csa'`` by default; state_dict keys and shapes equal
  the official ``simulation/train_code/architecture/MST.py`` (MST-S/M/L:
  ``dim=28, stage=2, num_blocks=[2,2,2] / [2,4,4] / [4,7,5]``), so official
  checkpoints (a plain state_dict, possibly with ``module.`` prefixes; see
  :func:`glmha_plugin.glue.mst_toolbox.model_generator`) load with ``strict=True``.
* ``GLMHAMST``: the same network with GLMHA in every MS-MSA; the wiring of
  the mask-guided and positional branches is documented in
  :mod:`glmha_plugin.layers.spectral_attention`.

Inputs (as upstream's ``input_setting='H'``, ``input_mask='Phi'``):

* x: B x C x H x W, the shifted-back measurement (C = ``dim`` = bands, 28);
* mask: Phi, B x C x H x (W + (C-1) * ``dispersion_step``), band i of the
  mask shifted right by ``dispersion_step * i`` columns (1 x ... is
  broadcast).  ``None`` means an all-zero mask, as upstream.

Any size works, not only upstream's 256 x 256 (its mask shift-back
hard-codes 256 rows and square inputs): the shift is derived from the U-Net
level, and inputs whose sides are not multiples of 2^stage are extended at
the bottom/right to the inputs of the zero-extended scene and mask (Phi:
zeros; H: zero rows, and the measurement columns the extra pixels would
read, see :func:`extend_shifted_back`), then the output is cropped back.
For 256 x 256 inputs the result equals upstream's.  One difference in batching: upstream applies the first
sample's mask embedding to the whole batch; here each sample uses its own
(identical when a batch shares one mask, as in upstream's training).
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY

from ..layers import crop
from ..layers.padding import needs_padding
from .arch_util import host_attention
from .spectral_unet import PerLevel, SpectralUNet


def extend_shifted_back(x: torch.Tensor, extra: int, step: int) -> torch.Tensor:
    """Append ``extra`` columns to H (B x C x H x W) as if the scene were ``extra`` zero columns wider.

    H's band i column x holds measurement column ``step * i + x``; the new
    column W + k of band i is measurement column ``step * i + W + k``, which
    band ``i + k // step + 1`` holds at column ``W - step + k % step`` (zero
    when no band covers it: the zero scene adds nothing to the measurement).
    All W + ``extra`` columns are gathered with one index (no loop over
    ``extra``, no ``extra``-wide piece), so an exported graph handles every width.
    """
    b, c, h, w = x.shape
    j = torch.arange(w + extra, device=x.device) - w                        # new column k = j >= 0
    k = j.clamp(min=0)
    old = j < 0
    band = torch.arange(c, device=x.device).unsqueeze(1) + torch.where(old, 0, k // step + 1)  # C x (W+extra)
    col = torch.where(old, j + w, w - step + k % step)                       # source column
    covered = (band < c) & (col >= 0)
    index = (band.clamp(max=c - 1) * w + col.clamp(min=0)).flatten()
    out = x.transpose(1, 2).reshape(b, h, c * w).index_select(2, index).view(b, h, c, w + extra).transpose(1, 2)
    return out * covered.to(x.dtype).unsqueeze(1)


class MST(SpectralUNet):
    """MST with ``attention: csa | glmha`` (module docstring).

    Args (MST's own): dim (channels at level 0 and bands, 28), stage,
    num_blocks (upstream's defaults: MST(dim=28, stage=3, num_blocks=[2,2,2]);
    MST-L: stage=2, num_blocks=[4,7,5]).

    Args (attention): attention (``'csa'`` | ``'glmha'``), rank / rank_ratio
    (a number, or ``{module-path prefix: number}`` for the layers under
    prefixes such as ``bottleneck``, longest prefix wins; or one value per
    level, ``stage + 1`` values), guidance, gamma; see
    :class:`~glmha_plugin.archs.spectral_unet.SpectralUNet`.

    Args (optics): dispersion_step: columns per band of the dispersion (2).

    Args (memory): use_checkpoint: activation checkpointing per block while training.

    Shapes: ``forward(x, mask=None)``: B x dim x H x W, mask B x dim x H x
    (W + (dim-1) * dispersion_step) -> B x dim x H x W.
    """

    default_attention = 'csa'

    def __init__(self,
                 dim: int = 28,
                 stage: int = 3,
                 num_blocks: Sequence[int] = (2, 2, 2),
                 attention: Optional[str] = None,
                 rank: PerLevel = None,
                 rank_ratio: PerLevel = None,
                 guidance: Optional[str] = None,
                 gamma: Optional[int] = None,
                 dispersion_step: int = 2,
                 use_checkpoint: bool = False):
        attention = host_attention(type(self).__name__, self.default_attention, attention, 'MST')
        super().__init__(in_dim=dim, out_dim=dim, dim=dim, stage=stage, num_blocks=num_blocks, attention=attention,
                         rank=rank, rank_ratio=rank_ratio, guidance=guidance, gamma=gamma, mask_step=dispersion_step,
                         embedding_activation=True, use_checkpoint=use_checkpoint)
        self.attention = attention
        self.dispersion_step = dispersion_step

    def forward(self, x: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.dim:
            raise ValueError(f'{type(self).__name__} expects B x {self.dim} x H x W (the shifted-back measurement '
                             f'of a {self.dim}-band scene), got {tuple(x.shape)}')
        b, c, h, w = x.shape
        width = w + (c - 1) * self.dispersion_step
        if mask is None:
            mask = x.new_zeros(1, c, h, width)
        if mask.dim() != 4 or mask.shape[1] != c or mask.shape[2] != h or mask.shape[3] < width:
            raise ValueError(f'mask (Phi) must be B x {c} x {h} x {width} for input {tuple(x.shape)} (the {h} x {w} '
                             f'mask, band i shifted right by {self.dispersion_step} * i), got {tuple(mask.shape)}')
        multiple = 2**self.stage
        ph, pw = -h % multiple, -w % multiple
        if needs_padding(ph, pw):
            x = F.pad(extend_shifted_back(x, pw, self.dispersion_step), (0, 0, 0, ph))
            mask = F.pad(mask, (0, pw, 0, ph))
        return crop(super().forward(x, mask), h, w)


class GLMHAMST(MST):
    """MST with GLMHA in every MS-MSA (``attention='glmha'`` by default)."""

    default_attention = 'glmha'


ARCH_REGISTRY.register()(MST)
ARCH_REGISTRY.register()(GLMHAMST)
