"""Where a whole network's forward time goes, per part and per level, CSA vs GLMHA (``glmha benchmark --parts
breakdown``).

Each variant's eager forward (no grad) is timed whole, and inside it every
module of the kinds in :data:`PART_KINDS` (attention layers, feed-forward
networks, layer norms) by forward pre/post hooks, grouped by the network's
top-level child it sits in (``encoder_level1``, ``latent``, ``refinement``,
...).  "rest" is the whole call minus the timed parts (convolutions between
levels, down/up-sampling, skips, the embedding and output layers).  Variants
are interleaved in a rotating order, repeats reported as medians; on CUDA
every hook synchronises, so the figures there include that wait.

It answers why a network's time ratio is not its MAC ratio: GLMHA changes
only the attention rows, and each row shows what the attention saves at that
level's size (docs/measuring.md).
"""
import statistics
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Dict, List, Tuple

import torch
from torch import nn

from ..archs.spectral_unet import FeedForward
from ..layers import Float32LayerNorm, GatedDconvFFN, LayerNorm2d
from ..layers.attention import ChannelAttention
from ..layers.spectral_attention import SpectralMSA
from .benchmark import build_variants, synchronize
from .hosts import HostSpec, Size
from .tables import markdown_table

PART_KINDS: Tuple[Tuple[str, tuple], ...] = (
    ('attention', (ChannelAttention, SpectralMSA)),
    ('feed-forward', (GatedDconvFFN, FeedForward)),
    ('layer norm', (LayerNorm2d, Float32LayerNorm)),
)
REST, WHOLE = 'rest', 'whole network'


@dataclass
class BreakdownRow:
    host: str
    size: str
    batch: int
    variant: str
    part: str       # a PART_KINDS name, 'rest' or 'whole network'
    where: str      # the network's top-level child ('all' for rest and the whole network)
    calls: int      # module calls per forward in this row
    ms: float       # median per forward
    ratio: float    # to the first variant's same row (nan where it has none)


def part_of(module: nn.Module):
    """The PART_KINDS name of ``module``, or None."""
    for name, kinds in PART_KINDS:
        if isinstance(module, kinds):
            return name
    return None


class _PartTimer:
    """Forward hooks on a network's parts: seconds per (part, top-level child) of the calls since :meth:`reset`."""

    def __init__(self, model: nn.Module, device: torch.device):
        self.device, self.seconds, self.calls, self.handles, self.started = device, defaultdict(float), {}, [], {}
        for path, module in model.named_modules():
            part = part_of(module)
            if part is None:
                continue
            key = (part, path.split('.')[0])
            self.calls[key] = self.calls.get(key, 0) + 1
            self.handles += [module.register_forward_pre_hook(self._start(path)),
                             module.register_forward_hook(self._stop(path, key))]

    def _start(self, path):
        def hook(module, args):
            synchronize(self.device)
            self.started[path] = time.perf_counter()
        return hook

    def _stop(self, path, key):
        def hook(module, args, output):
            synchronize(self.device)
            self.seconds[key] += time.perf_counter() - self.started.pop(path)
        return hook

    def reset(self):
        self.seconds = defaultdict(float)

    def remove(self):
        for handle in self.handles:
            handle.remove()


def benchmark_breakdown(host: HostSpec, size: Size, variants: Dict[str, Dict], repeats: int, device: torch.device,
                        batch: int = 1, overrides: Dict = None, seed: int = 0) -> List[BreakdownRow]:
    """Eager forward of each variant split into parts per level (module docstring), interleaved, medians."""
    models = {v: m.eval() for v, m in build_variants(host, variants, device, overrides, seed).items()}
    inputs = host.make_inputs(size, batch, device)
    timers = {v: _PartTimer(m, device) for v, m in models.items()}
    samples = {v: defaultdict(list) for v in models}
    names = list(models)
    try:
        with torch.no_grad():
            for v in names:             # warm-up
                models[v](*inputs)
            for rep in range(repeats):
                for v in names[rep % len(names):] + names[:rep % len(names)]:
                    timers[v].reset()
                    synchronize(device)
                    t0 = time.perf_counter()
                    models[v](*inputs)
                    synchronize(device)
                    whole = time.perf_counter() - t0
                    parts = dict(timers[v].seconds)
                    for key in timers[v].calls:
                        samples[v][key].append(parts.get(key, 0.0))
                    samples[v][(REST, 'all')].append(whole - sum(parts.values()))
                    samples[v][(WHOLE, 'all')].append(whole)
    finally:
        for timer in timers.values():
            timer.remove()
    base = names[0]
    med = {v: {k: statistics.median(s) for k, s in samples[v].items()} for v in names}
    tag = 'x'.join(map(str, size))
    rows = []
    for v in names:
        for key, ms in med[v].items():
            ref = med[base].get(key)
            rows.append(BreakdownRow(host.name, tag, batch, v, key[0], key[1], timers[v].calls.get(key, 1), ms * 1e3,
                                     ms / ref if ref else float('nan')))
    return rows


def breakdown_markdown(rows: List[BreakdownRow]) -> str:
    """One table row per (host, input, part, level); ms per variant and each variant's ratio to the first."""
    variants = list(dict.fromkeys(r.variant for r in rows))
    keys = list(dict.fromkeys((r.host, r.size, r.batch, r.part, r.where) for r in rows))
    cell = {(r.host, r.size, r.batch, r.part, r.where, r.variant): r for r in rows}
    head = ['host', 'input', 'batch', 'part', 'level', 'calls', *(f'{v} ms' for v in variants),
            *(f'{v} / {variants[0]}' for v in variants[1:])]
    body = []
    for key in keys:
        got = [cell.get(key + (v,)) for v in variants]
        calls = next(r.calls for r in got if r is not None)
        times = ['-' if r is None else f'{r.ms:.1f}' for r in got]
        ratios = ['-' if r is None else f'{r.ratio:.3f}' for r in got[1:]]
        body.append([*key, calls, *times, *ratios])
    return markdown_table(head, 'llrllr' + 'r' * (2 * len(variants) - 1), body)
