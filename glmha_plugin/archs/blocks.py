"""Networks from ``network_g``-style blocks whose ``type`` is a name in basicsr's ``ARCH_REGISTRY`` or an
importable ``module.path:ClassName`` (a network no registry knows): what ``GLMHASwap`` builds as its ``base``
and ``DistillModel`` as its teacher."""
import importlib

from torch import nn


def network_class(name: str):
    """The class (or builder function) of a network ``type``; ValueError naming what is wrong."""
    if ':' in str(name):
        module, _, cls_name = str(name).partition(':')
        try:
            return getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError) as exc:
            raise ValueError(f'cannot import network {name!r}: {type(exc).__name__}: {exc}') from None
    from basicsr.utils.registry import ARCH_REGISTRY

    from ..errors import unknown_name_message
    if name not in ARCH_REGISTRY:
        raise ValueError(unknown_name_message('arch', name, ARCH_REGISTRY.keys()))
    return ARCH_REGISTRY.get(name)


def build_from_block(block: dict) -> nn.Module:
    """The network of ``{'type': ..., **options}``; ValueError naming what is wrong."""
    block = dict(block)
    name = block.pop('type', None)
    if not name:
        raise ValueError(f'network block {block} has no type')
    cls = network_class(name)
    try:
        return cls(**block)
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f'cannot build network {name!r} with {block}: {type(exc).__name__}: {exc}') from None
