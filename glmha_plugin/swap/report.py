"""What :func:`glmha_plugin.swap.swap_attention` did, and its error type."""
from dataclasses import dataclass, field
from typing import List, Tuple

from .warm_start import LayerReport


class SwapError(ValueError):
    """A module that looks like an attention layer but is not one swap_attention can replace, or a bad option."""


@dataclass
class SwappedLayer(LayerReport):
    kind: str = 'MDTA'   # 'MDTA' or 'MS-MSA'


@dataclass
class SwapReport:
    """What :func:`swap_attention` did; ``str(report)`` is a table."""
    layers: List[SwappedLayer] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)   # (module path, reason)

    def __str__(self) -> str:
        def energy(v):
            return f'{v:9.4f}' if v is not None else f'{"-":>9s}'
        width = max([len('module'), *(len(r.name) for r in self.layers)])
        lines = [f'{"module":{width}s} {"kind":6s} {"C":>4s} {"heads":>5s} {"rank":>4s} {"K energy":>9s} '
                 f'{"V energy":>9s}']
        lines += [f'{r.name:{width}s} {r.kind:6s} {r.dim:4d} {r.heads:5d} {r.rank:4d} {energy(r.key_energy)} '
                  f'{energy(r.value_energy)}' for r in self.layers]
        lines.append(f'{len(self.layers)} attention layer(s) swapped to GLMHA')
        if self.skipped:
            lines.append(f'{len(self.skipped)} skipped:')
            lines += [f'  {path or "<model>"}: {reason}' for path, reason in self.skipped]
        return '\n'.join(lines)
