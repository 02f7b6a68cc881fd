"""Retinexformer (Cai et al., ICCV 2023) for low-light enhancement, with CSA or GLMHA.

One implementation serves both registered names:

* ``RetinexFormer``: ``attention='csa'`` by default; state_dict keys and
  shapes equal the official ``basicsr/models/archs/RetinexFormer_arch.py``
  (the LOL, SID, SMID, SDSD, FiveK and NTIRE configurations all use
  ``n_feat=40, stage=1, num_blocks=[1, 2, 2]``: 1,605,701 parameters), so
  official checkpoints (``{'params': ...}``) load with ``strict=True``.
* ``GLMHARetinexFormer``: GLMHA in every illumination-guided MS-MSA.

Each of the ``stage`` cascaded stages (``body.{s}``) is

    F, L  = estimator(I)            conv1 1x1 (I, mean_c(I)) 4 -> n_feat; depth_conv 5x5 (4 groups) = F;
                                    conv2 1x1 n_feat -> 3 = L
    I_lu  = I * L + I               the lit-up image
    out   = denoiser(I_lu, F)       MST++'s U-Net (two downsamplings, ``dim = n_feat``), every MS-MSA
                                    multiplying its attended values by F at its level (F is brought to
                                    level l by the ``encoder_layers.{l}.2`` convolutions)

(:class:`~glmha_plugin.archs.spectral_unet.SpectralUNet` with
``illumination_guided=True``; the attention is the one MS-MSA of MST and
MST++, :class:`~glmha_plugin.layers.SpectralMSA`, whose module docstring
gives the GLMHA wiring of the illumination guidance: value channel k of r
is multiplied by illumination channel ``floor(k * C / r)``.)

Upstream's constructor defaults (``n_feat=31, stage=3, num_blocks=[1, 1,
1]``) are kept, but they do not build, upstream nor here: the estimator's
5x5 convolution has ``in_channels + 1`` = 4 groups, so ``n_feat`` must be a
multiple of 4; here that is a clear error naming the published
configuration.  Inputs of any size: padded (reflect, replicate where too
small) to a multiple of 4, as Retinexformer's test script does, and cropped
back.  Linear layers start from a truncated normal (std 0.02), as upstream.
"""
from typing import Optional, Sequence

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from ..layers import crop, pad_to_multiple
from .arch_util import check_image_input, host_attention
from .mst_plus_plus_arch import _init_weights
from .spectral_unet import PerLevel, SpectralUNet, unet_options

LEVELS = 2                      # downsamplings of the denoiser U-Net (upstream's fixed ``level=2``)
SIZE_MULTIPLE = 2 ** LEVELS
PUBLISHED = dict(in_channels=3, out_channels=3, n_feat=40, stage=1, num_blocks=[1, 2, 2])


class IlluminationEstimator(nn.Module):
    """Upstream's ``Illumination_Estimator``: B x c x H x W image -> (B x n_feat x H x W features, B x c x H x W map).

    ``conv1`` 1x1 on the image and its channel mean (c + 1 -> n_feat),
    ``depth_conv`` 5x5 in c + 1 groups (the features), ``conv2`` 1x1 n_feat -> c
    (the illumination map); all with biases.
    """

    def __init__(self, n_feat: int, channels: int = 3):
        super().__init__()
        groups = channels + 1
        if n_feat % groups:
            raise ValueError(f'n_feat ({n_feat}) must be a multiple of {groups} (in_channels + 1): the illumination '
                             f"estimator's 5x5 convolution has {groups} groups (upstream's default n_feat=31 does not "
                             f'build either); Retinexformer\'s published models use n_feat: 40, stage: 1, '
                             f'num_blocks: [1, 2, 2]')
        self.conv1 = nn.Conv2d(groups, n_feat, kernel_size=1, bias=True)
        self.depth_conv = nn.Conv2d(n_feat, n_feat, kernel_size=5, padding=2, bias=True, groups=groups)
        self.conv2 = nn.Conv2d(n_feat, channels, kernel_size=1, bias=True)

    def forward(self, img: torch.Tensor):
        features = self.depth_conv(self.conv1(torch.cat([img, img.mean(dim=1, keepdim=True)], dim=1)))
        return features, self.conv2(features)


class RetinexStage(nn.Module):
    """One stage: estimate the illumination, light the image up, denoise it guided by the features."""

    def __init__(self, channels: int, n_feat: int, num_blocks: Sequence[int], unet_kwargs: dict):
        super().__init__()
        self.estimator = IlluminationEstimator(n_feat, channels)
        self.denoiser = SpectralUNet(channels, channels, n_feat, stage=LEVELS, num_blocks=num_blocks,
                                     illumination_guided=True, **unet_kwargs)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        features, illumination = self.estimator(img)
        return self.denoiser(img * illumination + img, features)


class RetinexFormer(nn.Module):
    """Retinexformer with ``attention: csa | glmha`` (module docstring).

    Args (Retinexformer's own): in_channels, out_channels (equal: each stage
    adds its input; 3 for RGB), n_feat (channels at level 0, a multiple of
    in_channels + 1), stage (cascaded stages), num_blocks (blocks at level 0,
    level 1 and the bottleneck).

    Args (attention): attention, rank / rank_ratio (a number, or
    ``{module-path prefix: number}`` for the layers under prefixes such as
    ``body.0.denoiser.bottleneck``, longest prefix wins; or three values, one
    per level: n_feat, 2 n_feat, 4 n_feat channels), guidance, gamma.

    Args (memory): use_checkpoint: activation checkpointing per block while training.

    Shapes: B x in_channels x H x W -> B x out_channels x H x W.
    """

    default_attention = 'csa'

    def __init__(self,
                 in_channels: int = 3,
                 out_channels: int = 3,
                 n_feat: int = 31,
                 stage: int = 3,
                 num_blocks: Sequence[int] = (1, 1, 1),
                 attention: Optional[str] = None,
                 rank: PerLevel = None,
                 rank_ratio: PerLevel = None,
                 guidance: Optional[str] = None,
                 gamma: Optional[int] = None,
                 use_checkpoint: bool = False):
        super().__init__()
        if in_channels != out_channels:
            raise ValueError(f'in_channels ({in_channels}) must equal out_channels ({out_channels}): each stage adds '
                             f'its input to its output and feeds the next stage')
        if stage < 1:
            raise ValueError(f'stage must be at least 1, got {stage}')
        if len(num_blocks) != LEVELS + 1:
            raise ValueError(f'num_blocks needs {LEVELS + 1} entries (level 0, level 1, bottleneck), got '
                             f'{list(num_blocks)}')
        attention = host_attention(type(self).__name__, self.default_attention, attention, 'RetinexFormer')
        self.attention, self.in_channels, self.stage = attention, in_channels, stage
        unets = {f'body.{s}.denoiser': (n_feat, LEVELS, num_blocks) for s in range(stage)}
        options = unet_options(type(self).__name__, attention, unets, rank, rank_ratio, guidance, gamma)
        self.body = nn.Sequential(*[
            RetinexStage(in_channels, n_feat, num_blocks, dict(attention=attention, use_checkpoint=use_checkpoint,
                                                              path=path, layer_options=options))
            for path in unets])
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_image_input(self, x, self.in_channels)
        h, w = x.shape[-2:]
        return crop(self.body(pad_to_multiple(x, SIZE_MULTIPLE)), h, w)


class GLMHARetinexFormer(RetinexFormer):
    """Retinexformer with GLMHA in every illumination-guided MS-MSA (``attention='glmha'`` by default)."""

    default_attention = 'glmha'


ARCH_REGISTRY.register()(RetinexFormer)
ARCH_REGISTRY.register()(GLMHARetinexFormer)
