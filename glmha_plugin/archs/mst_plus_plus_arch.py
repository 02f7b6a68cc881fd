"""MST++ (Cai et al., CVPRW 2022, NTIRE 2022 winner) for RGB -> hyperspectral, with CSA or GLMHA.

* ``MST_Plus_Plus``: ``attention='csa'`` by default; state_dict keys and
  shapes equal the official ``train_code/architecture/MST_Plus_Plus.py``
  (``MST_Plus_Plus(3, 31, 31, stage=3)``, 1,619,625 parameters), so official
  checkpoints (``{'state_dict': ...}`` with ``module.`` prefixes; see
  :func:`glmha_plugin.glue.mst_toolbox.model_generator`) load with ``strict=True``.
* ``GLMHAMSTPlusPlus``: GLMHA in every MS-MSA (no mask branch in MST++).

``conv_in`` (3x3) -> ``stage`` U-shaped spectral transformers (each
``dim = n_feat``, two downsamplings, one block per level) -> ``conv_out``,
plus the ``conv_in`` features.  Inputs of any size: padded to a multiple of 8
(reflect, as upstream; replicate where the image is too small to reflect) and
cropped back.  Linear layers start from a truncated normal (std 0.02), as
upstream.
"""
from typing import Optional

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from ..layers import crop, pad_to_multiple
from .arch_util import check_image_input, host_attention
from .spectral_unet import PerLevel, SpectralUNet, unet_options

SIZE_MULTIPLE = 8


def _init_weights(m: nn.Module) -> None:
    from timm.layers import trunc_normal_  # here, not at the top: importing timm costs 0.4 s per `import basicsr`
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=.02)
        if m.bias is not None:
            nn.init.constant_(m.bias, 0)
    elif isinstance(m, nn.LayerNorm):
        nn.init.constant_(m.bias, 0)
        nn.init.constant_(m.weight, 1.0)


class MST_Plus_Plus(nn.Module):
    """MST++ with ``attention: csa | glmha`` (module docstring).

    Args (MST++'s own): in_channels (3), out_channels (31), n_feat (31; must
    equal out_channels), stage (3 cascaded U-Nets).

    Args (attention): attention, rank / rank_ratio (a number, or
    ``{module-path prefix: number}`` for the layers under prefixes such as
    ``body.2``, longest prefix wins; or three values, one per level of every
    U-Net: 31, 62, 124 channels), guidance, gamma.

    Args (memory): use_checkpoint: activation checkpointing per block while training.

    Shapes: B x in_channels x H x W -> B x out_channels x H x W.
    """

    default_attention = 'csa'

    def __init__(self,
                 in_channels: int = 3,
                 out_channels: int = 31,
                 n_feat: int = 31,
                 stage: int = 3,
                 attention: Optional[str] = None,
                 rank: PerLevel = None,
                 rank_ratio: PerLevel = None,
                 guidance: Optional[str] = None,
                 gamma: Optional[int] = None,
                 use_checkpoint: bool = False):
        super().__init__()
        if out_channels != n_feat:
            raise ValueError(f'out_channels ({out_channels}) must equal n_feat ({n_feat}): MST++ adds the input '
                             f'features to its output')
        attention = host_attention(type(self).__name__, self.default_attention, attention, 'MST_Plus_Plus')
        self.attention, self.in_channels, self.stage = attention, in_channels, stage
        unets = {f'body.{s}': (n_feat, 2, (1, 1, 1)) for s in range(stage)}
        options = unet_options(type(self).__name__, attention, unets, rank, rank_ratio, guidance, gamma)
        self.conv_in = nn.Conv2d(in_channels, n_feat, kernel_size=3, padding=1, bias=False)
        self.body = nn.Sequential(*[
            SpectralUNet(n_feat, n_feat, dim, stage=level, num_blocks=blocks, attention=attention,
                         use_checkpoint=use_checkpoint, path=path, layer_options=options)
            for path, (dim, level, blocks) in unets.items()
        ])
        self.conv_out = nn.Conv2d(n_feat, out_channels, kernel_size=3, padding=1, bias=False)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_input(self, x, self.in_channels)
        h, w = x.shape[-2:]
        fea = self.conv_in(pad_to_multiple(x, SIZE_MULTIPLE))
        return crop(self.conv_out(self.body(fea)) + fea, h, w)


class GLMHAMSTPlusPlus(MST_Plus_Plus):
    """MST++ with GLMHA in every MS-MSA (``attention='glmha'`` by default)."""

    default_attention = 'glmha'


ARCH_REGISTRY.register()(MST_Plus_Plus)
ARCH_REGISTRY.register()(GLMHAMSTPlusPlus)
