"""MS-MSA layers that keep a foreign host's calling convention after :func:`glmha_plugin.swap.swap_attention`.

MST-style networks call their attention ``forward(x, mask=None)`` with their own mask branch; Retinexformer's
IG-MSA calls ``forward(x, guide)``.  These subclasses of :class:`SpectralMSA` keep those signatures.
"""
from typing import Optional

import torch
from torch import nn

from .spectral_attention import SpectralMSA


class SwappedMaskMSA(SpectralMSA):
    """A swapped MST-style MS-MSA: ``forward(x_in, mask=None)`` as upstream MST, the mask B x H x W' x C
    channels-last, embedded by the network's own branch ``mm`` (kept: C channels), the first sample's
    embedding used for the whole batch (as upstream); the GLMHA variant multiplies value channel k of r by
    embedding channel ``floor(k C / r)``."""

    def __init__(self, dim: int, num_heads: int, mm: nn.Module, **attention):
        super().__init__(dim, num_heads, illumination_guided=True, **attention)
        self.mm = mm

    def value_guide(self, guide, b, h, w):
        if guide is None:
            raise ValueError('this MS-MSA needs the mask (B x H x W\' x C)')
        return self.select_guide(self.mm(guide.permute(0, 3, 1, 2))[:1])

    def forward(self, x_in: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        b, h, w, _ = x_in.shape
        return self.attend(x_in, self.value_guide(mask, b, h, w))


class SwappedGuidedMSA(SpectralMSA):
    """A swapped IG-MSA (Retinexformer): ``forward(x_in, guide)`` with channels-last B x H x W x C features
    multiplied into the values (the guide may be passed by the host's own keyword, ``guide_arg``)."""

    def __init__(self, dim: int, num_heads: int, guide_arg: str, **attention):
        super().__init__(dim, num_heads, illumination_guided=True, **attention)
        self.guide_arg = guide_arg

    def forward(self, x_in: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        guide = args[0] if args else kwargs.get(self.guide_arg)
        b, h, w, _ = x_in.shape
        return self.attend(x_in, self.value_guide(None if guide is None else guide.permute(0, 3, 1, 2), b, h, w))
