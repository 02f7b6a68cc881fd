"""The U-shaped spectral transformer shared by MST, MST++ and Retinexformer (upstream's ``MST`` class).

MST (CASSI) is one such U-Net with the mask-guided branch; MST++ chains
three of them without it ("single-stage spectral transformers");
Retinexformer's "Denoiser" is MST++'s U-Net whose attention is guided by
illumination features.  Keys and shapes follow upstream: ``embedding``,
``encoder_layers.{i}.{0: blocks, 1: feature downsample, 2: guide downsample
(MST's mask, Retinexformer's illumination features)}``, ``bottleneck``,
``decoder_layers.{i}.{0: upsample, 1: fusion, 2: blocks}``, ``mapping``; each
block is ``blocks.{j}.0`` (:class:`~glmha_plugin.layers.SpectralMSA`) and
``blocks.{j}.1`` (pre-norm feed-forward: ``fn.net.{0,2,4}``, ``norm``).

Level l (0 = full resolution) has C_l = dim * 2^l channels and 2^l heads of
``dim`` channels each.  Encoder and decoder level l have ``num_blocks[l]``
blocks and the bottleneck (level ``stage``) ``num_blocks[-1]``, as upstream.
H and W must be multiples of 2^stage (the hosts pad).
"""
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

from ..layers import Float32LayerNorm, SpectralMSA
from ..layers.checkpointing import run_checkpointed
from ..layers.ranks import PerLayer
from .arch_util import attention_options

# A spectral host's rank / rank_ratio: the per-layer format of glmha_plugin.layers.ranks, or (the form the
# spectral hosts took first, kept) one value per U-Net level, converted by :func:`per_level`.
PerLevel = Union[PerLayer, Sequence[Union[int, float]]]


def level_prefixes(stage: int, unet: str = '') -> List[List[str]]:
    """The module paths of the blocks of each level 0 .. ``stage`` (``stage``: the bottleneck) of the
    :class:`SpectralUNet` at module path ``unet`` (``''``: the network itself)."""
    at = f'{unet}.' if unet else ''
    return [[f'{at}encoder_layers.{level}.0', f'{at}decoder_layers.{stage - 1 - level}.2'] for level in range(stage)] \
        + [[f'{at}bottleneck']]


def unet_layers(dim: int, stage: int, num_blocks: Sequence[int], unet: str = '') -> List[Tuple[str, int, int]]:
    """``(module path, channels, heads)`` of every attention layer of the :class:`SpectralUNet` at ``unet``."""
    depth = [num_blocks[level] for level in range(stage)] + [num_blocks[-1]]
    return [(f'{blocks}.blocks.{j}.0', dim * 2**level, 2**level)
            for level, prefixes in enumerate(level_prefixes(stage, unet)) for blocks in prefixes
            for j in range(depth[level])]


def per_level(value: PerLevel, option: str, unets: Mapping[str, int]) -> PerLayer:
    """A per-level list (one value per U-Net level) as the per-layer form ``{module-path prefix: value}``.

    ``unets``: ``{module path: stage}`` of the host's U-Nets, each of which takes the list.  Any other value
    is returned as it is.
    """
    if not isinstance(value, (list, tuple)):
        return value
    out = {}
    for unet, stage in unets.items():
        if len(value) != stage + 1:
            raise ValueError(f'{option}: give one value for every level or one per level ({stage + 1} levels: '
                             f'0 .. {stage}, the last is the bottleneck), got {list(value)}; or a mapping '
                             f'{{module-path prefix: value}}')
        levels = zip(level_prefixes(stage, unet), value, strict=True)
        out.update({prefix: v for prefixes, v in levels for prefix in prefixes})
    return out


def unet_options(host: str, attention: str, unets: Mapping[str, Tuple[int, int, Sequence[int]]], rank: PerLevel,
                 rank_ratio: PerLevel, guidance: Optional[str], gamma: Optional[int]) -> Dict[str, dict]:
    """``{path: attention options}`` of every attention layer of a host's U-Nets ``{path: (dim, stage,
    num_blocks)}`` (:func:`~glmha_plugin.archs.arch_util.attention_options`; per-level lists converted)."""
    stages = {unet: stage for unet, (_, stage, _) in unets.items()}
    layers = [layer for unet, (dim, stage, blocks) in unets.items() for layer in unet_layers(dim, stage, blocks, unet)]
    return attention_options(host, attention, layers, per_level(rank, 'rank', stages),
                             per_level(rank_ratio, 'rank_ratio', stages), guidance, gamma)


class FeedForward(nn.Module):
    """1x1 (C -> 4C), GELU, DW3x3, GELU, 1x1 (4C -> C), no biases. B x H x W x C -> same."""

    def __init__(self, dim: int, mult: int = 4):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(dim, dim * mult, 1, 1, bias=False),
            nn.GELU(),
            nn.Conv2d(dim * mult, dim * mult, 3, 1, 1, bias=False, groups=dim * mult),
            nn.GELU(),
            nn.Conv2d(dim * mult, dim, 1, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PreNorm(nn.Module):
    """fn(LayerNorm(x)) over the last (channel) dimension (float32 under mixed precision: ``Float32LayerNorm``)."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.fn = fn
        self.norm = Float32LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


def _spectral_block(attn: nn.Module, ff: nn.Module, x: torch.Tensor, guide: Optional[torch.Tensor]) -> torch.Tensor:
    """One MSAB / IGAB block: x + MS-MSA(x, guide), then + FFN(LN(x)). B x H x W x C -> same."""
    x = attn(x, guide) + x
    return ff(x) + x


class SpectralBlocks(nn.Module):
    """Upstream's MSAB / IGAB: per block x + MS-MSA(x, guide), then + FFN(LN(x)). B x C x H x W -> same.

    One block per entry of ``attn_kwargs`` (its MS-MSA's options).  With
    ``use_checkpoint`` each block is checkpointed while training
    (:mod:`glmha_plugin.layers.checkpointing`).
    """

    def __init__(self, dim: int, num_heads: int, attn_kwargs: Sequence[dict], use_checkpoint: bool = False):
        super().__init__()
        self.blocks = nn.ModuleList([
            nn.ModuleList([SpectralMSA(dim, num_heads, **kwargs), PreNorm(dim, FeedForward(dim))])
            for kwargs in attn_kwargs
        ])
        self.use_checkpoint = bool(use_checkpoint)

    def forward(self, x: torch.Tensor, guide: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1)
        for attn, ff in self.blocks:
            x = run_checkpointed(_spectral_block, attn, ff, x, guide, enabled=self.use_checkpoint)
        return x.permute(0, 3, 1, 2)


class SpectralUNet(nn.Module):
    """Encoder - bottleneck - decoder of spectral-wise attention blocks (module docstring).

    Args:
        in_dim, out_dim: input / output channels (equal: the output adds the input).
        dim: channels at level 0, also the channels per head.
        stage: number of downsamplings.
        num_blocks: blocks per level (at least ``stage`` entries; the last one
            is the bottleneck's).
        attention: ``'csa'`` or ``'glmha'``.
        rank, rank_ratio: GLMHA key/value rank, per layer
            (:mod:`glmha_plugin.layers.ranks`: a number or ``{module-path
            prefix: number}``, longest prefix wins), or one value per level
            (``stage + 1`` values, level ``stage`` = bottleneck; see :func:`per_level`).
        guidance, gamma: GLMHA guidance options.
        mask_step: ``None`` (MST++: no mask) or the dispersion step of MST's mask-guided branch.
        illumination_guided: every MS-MSA multiplies its values by the
            illumination features (Retinexformer); excludes ``mask_step``.
        embedding_activation: LeakyReLU(0.1) after the embedding (MST) or not (MST++, Retinexformer).
        use_checkpoint: activation checkpointing per block while training.
        path, layer_options: for a host holding U-Nets (MST++, Retinexformer):
            the U-Net's module path in the host and the host's
            :func:`unet_options` (then ``rank`` ... ``gamma`` are not read).

    Shapes: ``forward(x, guide=None)``: B x in_dim x H x W (H, W multiples of
    2^stage) -> B x out_dim x H x W; guide: MST's B x dim x H x W' dispersed
    mask or Retinexformer's B x dim x H x W illumination features, brought to
    each level by the ``encoder_layers.{i}.2`` convolutions.
    """

    def __init__(self, in_dim: int, out_dim: int, dim: int, stage: int, num_blocks: Sequence[int],
                 attention: str = 'csa', rank: PerLevel = None, rank_ratio: PerLevel = None,
                 guidance: Optional[str] = None, gamma: Optional[int] = None, mask_step: Optional[int] = None,
                 illumination_guided: bool = False, embedding_activation: bool = False, use_checkpoint: bool = False,
                 path: str = '', layer_options: Optional[Mapping[str, dict]] = None):
        super().__init__()
        if in_dim != out_dim:
            raise ValueError(f'in_dim ({in_dim}) must equal out_dim ({out_dim}): the output adds the input')
        if stage < 0 or len(num_blocks) < max(stage, 1):
            raise ValueError(f'num_blocks needs an entry per level ({stage} levels, plus optionally the '
                             f'bottleneck), got {list(num_blocks)} for stage={stage}')
        self.dim, self.stage = dim, stage
        self.guided = mask_step is not None or illumination_guided

        if layer_options is None:
            layer_options = unet_options(type(self).__name__, attention, {path: (dim, stage, num_blocks)}, rank,
                                         rank_ratio, guidance, gamma)
        at = f'{path}.' if path else ''

        def blocks(level: int, depth: int, name: str) -> SpectralBlocks:
            channels, heads = dim * 2**level, 2**level
            kwargs = [dict(layer_options[f'{at}{name}.blocks.{j}.0'], attention=attention, mask_step=mask_step,
                           level=level, illumination_guided=illumination_guided) for j in range(depth)]
            try:
                return SpectralBlocks(channels, heads, kwargs, use_checkpoint)
            except ValueError as exc:
                raise ValueError(f'{at}{name} (level {level}, {channels} channels, {heads} heads): {exc}') from None

        self.embedding = nn.Conv2d(in_dim, dim, 3, 1, 1, bias=False)
        self.encoder_layers = nn.ModuleList()
        for level in range(stage):
            c = dim * 2**level
            layer = [blocks(level, num_blocks[level], f'encoder_layers.{level}.0'),
                     nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False)]
            if self.guided:
                layer.append(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False))
            self.encoder_layers.append(nn.ModuleList(layer))
        self.bottleneck = blocks(stage, num_blocks[-1], 'bottleneck')
        self.decoder_layers = nn.ModuleList()
        for level in reversed(range(stage)):
            c = dim * 2**level
            self.decoder_layers.append(nn.ModuleList([
                nn.ConvTranspose2d(2 * c, c, stride=2, kernel_size=2, padding=0, output_padding=0),
                nn.Conv2d(2 * c, c, 1, 1, bias=False),
                blocks(level, num_blocks[level], f'decoder_layers.{stage - 1 - level}.2'),
            ]))
        self.mapping = nn.Conv2d(dim, out_dim, 3, 1, 1, bias=False)
        self.embed_act = nn.LeakyReLU(negative_slope=0.1, inplace=True) if embedding_activation else nn.Identity()

    def forward(self, x: torch.Tensor, guide: Optional[torch.Tensor] = None) -> torch.Tensor:
        fea = self.embed_act(self.embedding(x))
        skips, guides = [], []
        for layer in self.encoder_layers:
            fea = layer[0](fea, guide)
            skips.append(fea)
            guides.append(guide)
            fea = layer[1](fea)
            if self.guided:
                guide = layer[2](guide)
        fea = self.bottleneck(fea, guide)
        levels = zip(self.decoder_layers, reversed(skips), reversed(guides), strict=True)
        for (up, fuse, level_blocks), skip, level_guide in levels:
            fea = level_blocks(fuse(torch.cat([up(fea), skip], dim=1)), level_guide)
        return self.mapping(fea) + x
