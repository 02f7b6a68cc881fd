"""Restormer (Zamir et al., CVPR 2022) with a choice of attention: CSA or GLMHA.

One implementation serves both registered names:

* ``Restormer``: ``attention='csa'`` by default; state_dict keys and shapes are
  exactly those of the official ``basicsr/models/archs/restormer_arch.py``, so
  official checkpoints (``{'params': ...}``) load with ``strict=True``.
* ``GLMHARestormer``: the same network with GLMHA in every transformer block;
  every key outside ``*.attn.*`` is unchanged.

The constructor takes Restormer's own arguments, so an upstream ``network_g``
block works unchanged, plus the attention options.  Inputs of any H, W >= 1
are accepted: they are padded to a multiple of 8 (three 2x downsamplings) and
the output is cropped back.
"""
from typing import Optional, Sequence

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from ..layers import GatedDconvFFN, LayerNorm2d, build_attention, crop, pad_to_multiple
from ..layers.checkpointing import CheckpointedSequential
from ..layers.ranks import PerLayer
from .arch_util import attention_options, check_image_input, host_attention

# Names of the transformer stages, in forward order: the network's modules, so also module-path prefixes of
# per-layer rank options ({stage: rank} is {module-path prefix: rank}).
STAGES = ('encoder_level1', 'encoder_level2', 'encoder_level3', 'latent', 'decoder_level3', 'decoder_level2',
          'decoder_level1', 'refinement')
SIZE_MULTIPLE = 8


class TransformerBlock(nn.Module):
    """x + attn(norm1(x)), then + ffn(norm2(x)). B x C x H x W -> same."""

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, LayerNorm_type: str,
                 attention: str, attn_kwargs: dict):
        super().__init__()
        self.norm1 = LayerNorm2d(dim, LayerNorm_type)
        self.attn = build_attention(attention, dim, num_heads, bias, **attn_kwargs)
        self.norm2 = LayerNorm2d(dim, LayerNorm_type)
        self.ffn = GatedDconvFFN(dim, ffn_expansion_factor, bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 conv embedding, in_c -> embed_dim (no bias, as upstream)."""

    def __init__(self, in_c: int = 3, embed_dim: int = 48):
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """B x C x H x W -> B x 2C x H/2 x W/2 (3x3 conv to C/2, pixel-unshuffle)."""

    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """B x C x H x W -> B x C/2 x 2H x 2W (3x3 conv to 2C, pixel-shuffle)."""

    def __init__(self, n_feat: int):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class Restormer(nn.Module):
    """Restormer with ``attention: csa | glmha``.

    Args (Restormer's own): inp_channels, out_channels, dim, num_blocks (4
    levels), num_refinement_blocks, heads (4 levels), ffn_expansion_factor,
    bias, LayerNorm_type ('WithBias' | 'BiasFree'), dual_pixel_task.

    Args (memory):
        use_checkpoint: activation checkpointing per transformer block while
            training (:mod:`glmha_plugin.layers.checkpointing`); same results,
            less memory, about one more forward of the blocks in time.

    Args (attention):
        attention: ``'csa'`` (Restormer's MDTA) or ``'glmha'``.
        rank: GLMHA K/V rank per layer: an int for every layer or
            ``{module-path prefix: int}``, longest prefix wins, e.g.
            ``{encoder_level1: 8, latent.0: 96}`` (the stage names are
            prefixes).
        rank_ratio: fraction of the layer's channels, the same way, e.g. a
            float or ``{'': 0.5, decoder_level1: 0.25}`` (default 0.5 where
            no rank is given).
        guidance: ``'calibration'`` (default) or ``'none'``.
        gamma: calibration reduction (default 8).

    Shapes: B x inp_channels x H x W -> B x out_channels x H x W.
    """

    default_attention = 'csa'

    def __init__(self,
                 inp_channels: int = 3,
                 out_channels: int = 3,
                 dim: int = 48,
                 num_blocks: Sequence[int] = (4, 6, 6, 8),
                 num_refinement_blocks: int = 4,
                 heads: Sequence[int] = (1, 2, 4, 8),
                 ffn_expansion_factor: float = 2.66,
                 bias: bool = False,
                 LayerNorm_type: str = 'WithBias',
                 dual_pixel_task: bool = False,
                 attention: Optional[str] = None,
                 rank: PerLayer = None,
                 rank_ratio: PerLayer = None,
                 guidance: Optional[str] = None,
                 gamma: Optional[int] = None,
                 use_checkpoint: bool = False):
        super().__init__()
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ValueError(f'num_blocks and heads need one entry per level (4), got {list(num_blocks)} and '
                             f'{list(heads)}')
        attention = host_attention(type(self).__name__, self.default_attention, attention, 'Restormer')
        self.inp_channels = inp_channels
        self.attention = attention
        d1, d2, d3, d4 = dim, dim * 2, dim * 4, dim * 8
        # (channels, heads, blocks) of each stage
        shapes = dict(zip(STAGES, ((d1, heads[0], num_blocks[0]), (d2, heads[1], num_blocks[1]),
                                   (d3, heads[2], num_blocks[2]), (d4, heads[3], num_blocks[3]),
                                   (d3, heads[2], num_blocks[2]), (d2, heads[1], num_blocks[1]),
                                   (d2, heads[0], num_blocks[0]), (d2, heads[0], num_refinement_blocks)), strict=True))
        layers = [(f'{name}.{i}.attn', c, h) for name, (c, h, n) in shapes.items() for i in range(n)]
        options = attention_options(type(self).__name__, attention, layers, rank, rank_ratio, guidance, gamma)

        def stage(name: str) -> CheckpointedSequential:
            level_dim, num_heads, depth = shapes[name]
            try:
                blocks = [
                    TransformerBlock(level_dim, num_heads, ffn_expansion_factor, bias, LayerNorm_type, attention,
                                     options[f'{name}.{i}.attn'])
                    for i in range(depth)
                ]
            except ValueError as exc:
                raise ValueError(f'{type(self).__name__} stage {name} ({level_dim} channels, {num_heads} heads): '
                                 f'{exc}') from None
            return CheckpointedSequential(*blocks, use_checkpoint=use_checkpoint)

        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = stage('encoder_level1')
        self.down1_2 = Downsample(d1)
        self.encoder_level2 = stage('encoder_level2')
        self.down2_3 = Downsample(d2)
        self.encoder_level3 = stage('encoder_level3')
        self.down3_4 = Downsample(d3)
        self.latent = stage('latent')
        self.up4_3 = Upsample(d4)
        self.reduce_chan_level3 = nn.Conv2d(d4, d3, kernel_size=1, bias=bias)
        self.decoder_level3 = stage('decoder_level3')
        self.up3_2 = Upsample(d3)
        self.reduce_chan_level2 = nn.Conv2d(d3, d2, kernel_size=1, bias=bias)
        self.decoder_level2 = stage('decoder_level2')
        self.up2_1 = Upsample(d2)  # level 1 keeps 2*dim channels after the concat (no 1x1 reduction)
        self.decoder_level1 = stage('decoder_level1')
        self.refinement = stage('refinement')
        self.dual_pixel_task = dual_pixel_task
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(d1, d2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(d2, out_channels, kernel_size=3, padding=1, bias=bias)

    def forward(self, inp_img: torch.Tensor) -> torch.Tensor:
        check_image_input(self, inp_img, self.inp_channels, 'inp_channels')
        h, w = inp_img.shape[-2:]
        # Channels-last features throughout: PyTorch's CPU convolutions and the blocks' layer norms are faster
        # on them (glmha_plugin/layers/pointwise.py); the output is returned in the input's usual layout.
        x = pad_to_multiple(inp_img, SIZE_MULTIPLE).contiguous(memory_format=torch.channels_last)

        emb = self.patch_embed(x)
        enc1 = self.encoder_level1(emb)
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))

        dec3 = self.decoder_level3(self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], 1)))
        dec2 = self.decoder_level2(self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], 1)))
        dec1 = self.refinement(self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], 1)))

        if self.dual_pixel_task:
            out = self.output(dec1 + self.skip_conv(emb))
        else:
            out = self.output(dec1) + x
        return crop(out, h, w).contiguous()


class GLMHARestormer(Restormer):
    """Restormer with GLMHA in every transformer block (``attention='glmha'`` by default)."""

    default_attention = 'glmha'


ARCH_REGISTRY.register()(Restormer)
ARCH_REGISTRY.register()(GLMHARestormer)
