"""What every host class shares (Restormer, MST, MST++, Retinexformer): its attention, its per-layer GLMHA
options, its input check."""
from typing import Dict, Iterable, Optional, Tuple

import torch
from torch import nn

from ..layers import check_attention
from ..layers.ranks import PerLayer, layer_options


def host_attention(host: str, default: str, attention: Optional[str], baseline: str) -> str:
    """The attention a host class uses: its default unless given; ``GLMHA*`` classes insist on glmha."""
    attention = attention or default
    if default == 'glmha' and attention != 'glmha':
        raise ValueError(f'{host} always uses attention: glmha (got {attention!r}); use type: {baseline} for '
                         f'attention: {attention}')
    return attention


def attention_options(host: str, attention: str, layers: Iterable[Tuple[str, int, int]], rank: PerLayer = None,
                      rank_ratio: PerLayer = None, guidance: Optional[str] = None,
                      gamma: Optional[int] = None) -> Dict[str, dict]:
    """``{path: GLMHA constructor options}`` of a host's attention layers ``(path, channels, heads)``.

    ``rank`` / ``rank_ratio`` are per-layer options (:mod:`glmha_plugin.layers.ranks`), all checked here,
    before any layer is built; with ``attention: csa`` every layer gets ``{}`` and any GLMHA option is an
    error.  ``host`` (the class name) starts the error messages.
    """
    given = {k: v for k, v in dict(rank=rank, rank_ratio=rank_ratio, guidance=guidance, gamma=gamma).items()
             if v is not None}
    check_attention(attention, given)
    layers = list(layers)
    if attention != 'glmha':
        return {path: {} for path, _, _ in layers}
    common = {k: v for k, v in given.items() if k in ('guidance', 'gamma')}
    return {path: dict(common, **options)
            for path, options in layer_options(rank, rank_ratio, layers, owner=f'{host}: ').items()}


def check_image_input(host: nn.Module, x: torch.Tensor, channels: int, option: str = 'in_channels') -> None:
    """A host's input is B x ``channels`` x H x W (the error names the host class and its ``option``)."""
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f'{type(host).__name__} expects B x {channels} x H x W input ({option}={channels}), got '
                         f'{tuple(x.shape)}; set network_g.{option} to the number of channels of your images')
