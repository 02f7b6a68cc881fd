"""``GLMHASwap``: any registered network with its attention swapped to GLMHA, from an option file.

    network_g:
      type: GLMHASwap
      base: {type: PromptIR, dim: 48, ...}   # any name in basicsr's ARCH_REGISTRY, with its options
      rank_ratio: 0.5                        # swap_attention's options: rank / rank_ratio (number or
      guidance: calibration                  #   {module-path prefix: number}, longest prefix wins: the
                                             #   format of every host), guidance, gamma, warm_start, strict

builds ``base`` through basicsr's ``ARCH_REGISTRY`` (or, for ``type: module.path:ClassName``, imports
the class: a network no registry knows) and applies
:func:`glmha_plugin.swap_attention` to it.  The result *is* the base network
(same class, no key prefix added), so its checkpoints keep the base's keys
outside the swapped attention layers, and ``path.pretrain_network_g`` takes a
checkpoint written by ``glmha swap`` for the same options.
``use_checkpoint: true`` is handed to the base network (activation
checkpointing is the base's own option: every host of this plugin has it).
"""
from copy import deepcopy
from typing import Dict

from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn

from ..layers.attention import DEFAULT_GAMMA
from ..layers.ranks import PerLayer
from ..swap.attention_swap import swap_attention


@ARCH_REGISTRY.register()
def GLMHASwap(base: Dict, rank: PerLayer = None, rank_ratio: PerLayer = None, guidance: str = 'calibration',
              gamma: int = DEFAULT_GAMMA, warm_start: bool = True, strict: bool = True,
              use_checkpoint: bool = False) -> nn.Module:
    """The network ``base`` (a ``network_g``-style mapping) with :func:`~glmha_plugin.swap_attention` applied."""
    import logging

    from ..errors import unknown_name_message
    if not isinstance(base, dict) or 'type' not in base:
        raise ValueError(f'GLMHASwap: base must be a network block with a type (e.g. base: {{type: Restormer, '
                         f'dim: 48}}), got {base!r}')
    if base['type'] == 'GLMHASwap':
        raise ValueError('GLMHASwap: base is GLMHASwap itself; give the network to swap')
    importable = ':' in str(base['type'])   # module.path:ClassName, a network no registry knows
    if not importable and base['type'] not in ARCH_REGISTRY:
        raise ValueError(f'GLMHASwap base.type: {unknown_name_message("arch", base["type"], ARCH_REGISTRY.keys())}')
    base = deepcopy(base)
    if use_checkpoint:
        import inspect

        from .blocks import network_class
        if 'use_checkpoint' not in inspect.signature(network_class(base['type'])).parameters:
            raise ValueError(f'GLMHASwap: use_checkpoint is an option of the base network, and {base["type"]} has '
                             f'none; remove use_checkpoint (or give the base network that option)')
        base['use_checkpoint'] = True
    # Through the registry, not basicsr's build_network: that calls get_root_logger(), and a GLMHASwap built
    # before train_pipeline sets the logger up (the resume check builds the configured networks) would leave the
    # run logging nothing below WARNING.
    from .blocks import build_from_block
    model = build_from_block(base)
    report = swap_attention(model, rank=rank, rank_ratio=rank_ratio, guidance=guidance, gamma=gamma,
                            warm_start=warm_start, strict=strict)
    if not report.layers:
        raise ValueError(f'GLMHASwap: {base["type"]} has no attention layer swap_attention can replace'
                         + (f' ({report.skipped[0][0]}: {report.skipped[0][1]})' if report.skipped else ''))
    # Not basicsr's get_root_logger() either (same reason); once train_pipeline has set the logger up, this logs
    # there as usual.
    logging.getLogger('basicsr').info(f'GLMHASwap on {base["type"]}:\n{report}')
    return model


