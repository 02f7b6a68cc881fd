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
from typing import Optional, Sequence, Union

import torch
from torch import nn

from ..layers import Float32LayerNorm, SpectralMSA
from ..layers.checkpointing import run_checkpointed

PerLevel = Union[None, int, float, Sequence[Union[int, float]]]


def host_attention(host: str, default: str, attention: Optional[str], baseline: str) -> str:
    """The attention a host class uses: its default unless given; ``GLMHA*`` classes insist on glmha."""
    attention = attention or default
    if default == 'glmha' and attention != 'glmha':
        raise ValueError(f'{host} always uses attention: glmha (got {attention!r}); use type: {baseline} for '
                         f'attention: {attention}')
    return attention


def check_image_input(host: nn.Module, x: torch.Tensor, channels: int) -> None:
    """A host's input is B x ``channels`` x H x W (the error names the host class and its in_channels)."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f'{type(host).__name__} expects B x {channels} x H x W input (in_channels={channels}), got '
                         f'{tuple(x.shape)}')


def _per_level(value: PerLevel, level: int, levels: int, option: str):
    if isinstance(value, (list, tuple)):
        if len(value) != levels:
            raise ValueError(f'{option}: give one value for every level or one per level ({levels} levels: '
                             f'0 .. {levels - 1}, the last is the bottleneck), got {list(value)}')
        return value[level]
    return value


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
    """Upstream's MSAB / IGAB: ``num_blocks`` x (x + MS-MSA(x, guide), then + FFN(LN(x))). B x C x H x W -> same.

    With ``use_checkpoint`` each block is checkpointed while training
    (:mod:`glmha_plugin.layers.checkpointing`).
    """

    def __init__(self, dim: int, num_heads: int, num_blocks: int, attn_kwargs: dict, use_checkpoint: bool = False):
        super().__init__()
        self.blocks = nn.ModuleList([
            nn.ModuleList([SpectralMSA(dim, num_heads, **attn_kwargs), PreNorm(dim, FeedForward(dim))])
            for _ in range(num_blocks)
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
        rank, rank_ratio: GLMHA key/value rank, one value or one per level
            (``stage + 1`` values, level ``stage`` = bottleneck).
        guidance, gamma: GLMHA guidance options.
        mask_step: ``None`` (MST++: no mask) or the dispersion step of MST's mask-guided branch.
        illumination_guided: every MS-MSA multiplies its values by the
            illumination features (Retinexformer); excludes ``mask_step``.
        embedding_activation: LeakyReLU(0.1) after the embedding (MST) or not (MST++, Retinexformer).
        use_checkpoint: activation checkpointing per block while training.

    Shapes: ``forward(x, guide=None)``: B x in_dim x H x W (H, W multiples of
    2^stage) -> B x out_dim x H x W; guide: MST's B x dim x H x W' dispersed
    mask or Retinexformer's B x dim x H x W illumination features, brought to
    each level by the ``encoder_layers.{i}.2`` convolutions.
    """

    def __init__(self, in_dim: int, out_dim: int, dim: int, stage: int, num_blocks: Sequence[int],
                 attention: str = 'csa', rank: PerLevel = None, rank_ratio: PerLevel = None,
                 guidance: Optional[str] = None, gamma: Optional[int] = None, mask_step: Optional[int] = None,
                 illumination_guided: bool = False, embedding_activation: bool = False, use_checkpoint: bool = False):
        super().__init__()
        if in_dim != out_dim:
            raise ValueError(f'in_dim ({in_dim}) must equal out_dim ({out_dim}): the output adds the input')
        if stage < 0 or len(num_blocks) < max(stage, 1):
            raise ValueError(f'num_blocks needs an entry per level ({stage} levels, plus optionally the '
                             f'bottleneck), got {list(num_blocks)} for stage={stage}')
        self.dim, self.stage = dim, stage
        self.guided = mask_step is not None or illumination_guided

        def blocks(level: int, depth: int) -> SpectralBlocks:
            channels, heads = dim * 2**level, 2**level
            kwargs = dict(attention=attention, mask_step=mask_step, level=level,
                          illumination_guided=illumination_guided)
            for option, value in (('rank', rank), ('rank_ratio', rank_ratio)):
                v = _per_level(value, level, stage + 1, option)
                if v is not None:
                    kwargs[option] = v
            kwargs.update({k: v for k, v in (('guidance', guidance), ('gamma', gamma)) if v is not None})
            try:
                return SpectralBlocks(channels, heads, depth, kwargs, use_checkpoint)
            except ValueError as exc:
                raise ValueError(f'level {level} ({channels} channels, {heads} heads): {exc}') from None

        self.embedding = nn.Conv2d(in_dim, dim, 3, 1, 1, bias=False)
        self.encoder_layers = nn.ModuleList()
        for level in range(stage):
            c = dim * 2**level
            layer = [blocks(level, num_blocks[level]), nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False)]
            if self.guided:
                layer.append(nn.Conv2d(c, 2 * c, 4, 2, 1, bias=False))
            self.encoder_layers.append(nn.ModuleList(layer))
        self.bottleneck = blocks(stage, num_blocks[-1])
        self.decoder_layers = nn.ModuleList()
        for level in reversed(range(stage)):
            c = dim * 2**level
            self.decoder_layers.append(nn.ModuleList([
                nn.ConvTranspose2d(2 * c, c, stride=2, kernel_size=2, padding=0, output_padding=0),
                nn.Conv2d(2 * c, c, 1, 1, bias=False),
                blocks(level, num_blocks[level]),
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
        for (up, fuse, level_blocks), skip, level_guide in zip(self.decoder_layers, reversed(skips), reversed(guides)):
            fea = level_blocks(fuse(torch.cat([up(fea), skip], dim=1)), level_guide)
        return self.mapping(fea) + x
