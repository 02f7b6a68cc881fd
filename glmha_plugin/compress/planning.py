"""Per-layer GLMHA ranks for a trained network: to a MAC budget, or to an energy target per layer.

What a layer's rank costs is counted, what it does is measured:

* **MACs** by the counter of the complexity report (:func:`glmha_plugin.analysis.complexity.count`,
  mmengine's FlopAnalyzer) at a stated input size: the whole teacher once, and the network with every
  attention layer swapped at its smallest rank (one per head) and at full rank.  A GLMHA layer's MACs are
  affine in its rank r (K/V projections 2rCN, depth-wise 18rN, q k^T and A v 2drN; the rest does not
  depend on r), so the two counts give every layer's MACs at every rank; the chosen network is counted
  again as a whole (:func:`count_ranks`) and must agree.
* **Effect** (:func:`layer_errors`): one layer at a time is replaced by its GLMHA at rank r with the SVD warm
  start (every other layer kept as trained) and the network's output on the user's image crops is compared
  with the trained network's: the mean squared error per layer and rank.

With a budget, the ranks minimise the sum of these per-layer errors subject to the MACs (a multiple-choice
knapsack, :func:`solve`, solved exactly by dynamic programming on the MACs in small units, each layer's cost
rounded up, so the plan never exceeds the budget).  Spectral energy is measured and reported but does not
rank the choices: on a trained Restormer the warm start at rank ratio 0.75 was measured *worse* than at 0.5,
so kept energy does not order output quality.  :func:`compare_plans` measures, at the same budget, the
chosen plan against the plan that keeps the most attention-map energy and against the best uniform rank
ratio (the joint error of each whole network), so a report can show what the choice bought.

With ``energy`` (e.g. 0.95) each layer gets the smallest per-head rank whose attention maps keep that share
of their singular-value energy on the crops (:mod:`glmha_plugin.analysis.spectrum`), times its heads.

Ranks are multiples of the layer's heads; a plan is ``{layer path: rank}``, the per-layer mapping that
:func:`glmha_plugin.swap_attention`, ``GLMHASwap`` (``rank:``) and ``glmha swap --rank`` take.
"""
import copy
import math
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..swap import SwapError, swap_attention
from .network import CompressError, run_network

DEFAULT_CANDIDATES = 16
DP_UNITS = 20000

LOOKED_FOR = ("Restormer's MDTA (children qkv: 1x1 conv C->3C, qkv_dwconv: depth-wise 3x3, project_out: 1x1 C->C; "
              "parameter temperature) and MST's MS-MSA (children to_q, to_k, to_v, proj, pos_emb; parameter rescale), "
              "under any class name, or the plugin's own CSA layers")


@dataclass
class AttentionLayer:
    """One swappable attention layer and what was measured about it."""
    path: str
    kind: str                 # 'MDTA' | 'MS-MSA'
    channels: int
    heads: int
    csa_macs: int = 0         # the trained layer's MACs (counter) at the stated input size
    macs_min: int = 0         # the GLMHA layer's MACs at rank = heads
    macs_slope: float = 0.0   # extra MACs per unit of rank
    candidates: List[int] = field(default_factory=list)   # total ranks tried (multiples of the heads)
    errors: Dict[int, float] = field(default_factory=dict)  # rank -> output MSE vs the teacher (this layer alone)
    energy: Optional[List[float]] = None   # its attention maps' mean cumulative singular-value energy, per-head rank

    @property
    def head_dim(self) -> int:
        return self.channels // self.heads

    def macs(self, rank: int) -> int:
        return int(round(self.macs_min + (rank - self.heads) * self.macs_slope))

    def energy_at(self, rank: int) -> Optional[float]:
        if not self.energy:
            return None
        k = rank // self.heads
        return float(self.energy[min(k, len(self.energy)) - 1])


@dataclass
class Plan:
    """Ranks per layer, how they were chosen, and the MACs they give (``macs`` by the counter once counted)."""
    ranks: Dict[str, int]
    method: str
    predicted_macs: int
    macs: Optional[int] = None

    def to_dict(self) -> dict:
        return asdict(self)


def candidate_ranks(channels: int, heads: int, count: int = DEFAULT_CANDIDATES) -> List[int]:
    """Total ranks to try: every per-head rank 1..d when d <= ``count``, else ``count`` spread over 1..d."""
    d = channels // heads
    if d <= count:
        return [k * heads for k in range(1, d + 1)]
    per_head = sorted({1, *(max(1, round(d * i / count)) for i in range(1, count + 1))})
    return [k * heads for k in per_head]


# ------------------------------------------------------------------------------------------- inventory


def swappable_layers(net: nn.Module, strict: bool = True) -> Tuple[nn.Module, List[AttentionLayer]]:
    """(an exact plugin-layer replica of ``net``: every attention layer swapped at full rank, unguided, with the
    warm start, so it computes ``net``'s function; the layers found).  No layer: :class:`CompressError`."""
    replica = copy.deepcopy(net)
    try:
        report = swap_attention(replica, rank_ratio=1.0, guidance='none', strict=strict)
    except SwapError as exc:
        raise CompressError(f'{exc}') from None
    if not report.layers:
        skipped = ''.join(f'; {p or "<model>"}: {why}' for p, why in report.skipped[:3])
        raise CompressError(f'{type(net).__name__} has no attention layer swap_attention can replace (looked for '
                            f'{LOOKED_FOR}){skipped}')
    layers = [AttentionLayer(r.name, r.kind, r.dim, r.heads) for r in report.layers]
    return replica.eval(), layers


def _swapped(net: nn.Module, ranks: Dict[str, int], guidance: str, gamma: int, warm_start: bool,
             strict: bool) -> nn.Module:
    student = copy.deepcopy(net)
    swap_attention(student, rank=dict(ranks), guidance=guidance, gamma=gamma, warm_start=warm_start, strict=strict)
    return student.eval()


# ------------------------------------------------------------------------------------------- MACs


def _count(net, x):
    from ..analysis.complexity import count
    try:
        return count(net.eval(), x)
    except Exception as exc:  # noqa: BLE001 (the user's network may need other inputs)
        raise CompressError(f'the MAC counter cannot run {type(net).__name__} on one {tuple(x.shape)} image tensor '
                            f'({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ""}); compress needs '
                            f'a network that maps one image batch to one image batch') from None


def measure_macs(net: nn.Module, layers: List[AttentionLayer], shape: Sequence[int], guidance: str, gamma: int,
                 strict: bool = True) -> int:
    """Fill each layer's ``csa_macs``, ``macs_min`` and ``macs_slope`` (module docstring); returns the teacher's
    total MACs at ``shape`` (1 x C x H x W)."""
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    teacher = _count(net, x)
    low = _count(_swapped(net, {layer.path: layer.heads for layer in layers}, guidance, gamma, False, strict), x)
    high = _count(_swapped(net, {layer.path: layer.channels for layer in layers}, guidance, gamma, False, strict), x)
    for layer in layers:
        layer.csa_macs = int(teacher.by_module.get(layer.path, 0))
        layer.macs_min = int(low.by_module.get(layer.path, 0))
        span = layer.channels - layer.heads
        layer.macs_slope = (high.by_module.get(layer.path, 0) - layer.macs_min) / span if span else 0.0
    return int(teacher.macs)


def predicted_macs(teacher_macs: int, layers: Sequence[AttentionLayer], ranks: Dict[str, int]) -> int:
    """The network's MACs with ``ranks`` (affine per layer, module docstring)."""
    rest = teacher_macs - sum(layer.csa_macs for layer in layers)
    return int(rest + sum(layer.macs(ranks[layer.path]) for layer in layers))


def count_ranks(net: nn.Module, ranks: Dict[str, int], shape: Sequence[int], guidance: str, gamma: int,
                strict: bool = True) -> Tuple[int, int]:
    """(MACs, parameters) of ``net`` swapped with ``ranks``, by the counter."""
    student = _swapped(net, ranks, guidance, gamma, False, strict)
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    c = _count(student, x)
    return int(c.macs), int(c.params)


def smallest_budget(teacher_macs: int, layers: Sequence[AttentionLayer]) -> float:
    """The smallest reachable budget (fraction of the teacher's MACs): every layer at rank = heads."""
    return predicted_macs(teacher_macs, layers, {layer.path: layer.heads for layer in layers}) / teacher_macs


# ------------------------------------------------------------------------------------------- measurements


class _Holder(nn.Module):
    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer


def _place(model: nn.Module, path: str, new: nn.Module) -> None:
    parent, _, name = path.rpartition('.')
    setattr(model.get_submodule(parent) if parent else model, name, new)


def mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a.double() - b.double()) ** 2).mean())


@torch.no_grad()
def layer_errors(net: nn.Module, layers: List[AttentionLayer], crops: torch.Tensor, guidance: str, gamma: int,
                 candidates: int = DEFAULT_CANDIDATES, strict: bool = True, progress=None) -> None:
    """Fill each layer's ``candidates`` and ``errors``: the output MSE against ``net`` with only that layer
    swapped (warm start) at each candidate rank, on ``crops`` (B x C x H x W)."""
    work = copy.deepcopy(net).eval()
    reference = run_network(work, crops)
    for layer in layers:
        layer.candidates = candidate_ranks(layer.channels, layer.heads, candidates)
    for layer in layers:
        original = work.get_submodule(layer.path)
        try:
            for rank in layer.candidates:
                holder = _Holder(copy.deepcopy(original))
                swap_attention(holder, rank=rank, guidance=guidance, gamma=gamma, warm_start=True, strict=strict)
                _place(work, layer.path, holder.layer.eval())
                layer.errors[rank] = mse(run_network(work, crops), reference)
                if progress is not None:
                    progress.update(1)
        finally:
            _place(work, layer.path, original)


@torch.no_grad()
def attention_energy(replica: nn.Module, layers: List[AttentionLayer], crops: torch.Tensor) -> None:
    """Fill each layer's ``energy``: the mean cumulative singular-value energy of its attention maps (per head,
    against the per-head rank) on ``crops``, through the exact replica of :func:`swappable_layers`."""
    from ..analysis.spectrum import SpectrumCollector
    with SpectrumCollector(replica) as spectra:
        run_network(replica, crops)
    found = {s.name: s for s in spectra.results()}
    for layer in layers:
        if layer.path in found:
            layer.energy = [float(v) for v in found[layer.path].sv_energy]


@torch.no_grad()
def joint_error(net: nn.Module, ranks: Dict[str, int], crops: torch.Tensor, guidance: str, gamma: int,
                strict: bool = True) -> float:
    """Output MSE against ``net`` of the whole network swapped with ``ranks`` (warm start)."""
    student = _swapped(net, ranks, guidance, gamma, True, strict)
    return mse(run_network(student, crops), run_network(net.eval(), crops))


def psnr_of_mse(value: float) -> float:
    """PSNR (dB, data range 1) of a mean squared error."""
    return float('inf') if value <= 0 else 10 * math.log10(1.0 / value)


# ------------------------------------------------------------------------------------------- solving


def solve(costs: Sequence[Sequence[float]], values: Sequence[Sequence[float]], capacity: float,
          units: int = DP_UNITS) -> List[int]:
    """Multiple-choice knapsack: one option j per group l, minimising sum values[l][j] subject to sum costs[l][j]
    <= capacity (costs >= 0).  Exact dynamic programme on ``capacity / units`` steps with every cost rounded up,
    so the result never exceeds ``capacity``; among equal totals, later options (higher ranks) win.  Returns the
    chosen option per group.  ``capacity`` below the cheapest choice: ValueError."""
    if capacity < sum(min(c) for c in costs) - 1e-9:
        raise ValueError(f'capacity {capacity} is below the cheapest choice {sum(min(c) for c in costs)}')
    step = capacity / units if capacity > 0 else 1.0
    best = np.zeros(units + 1)
    choices = []
    for cost, value in zip(costs, values, strict=True):
        c = [min(units + 1, int(math.ceil(x / step - 1e-9))) for x in cost]
        new = np.full(units + 1, np.inf)
        pick = np.full(units + 1, -1, dtype=np.int64)
        for j in range(len(c) - 1, -1, -1):
            if c[j] > units:
                continue
            cand = np.full(units + 1, np.inf)
            cand[c[j]:] = best[:units + 1 - c[j]] + value[j]
            better = cand < new
            new[better], pick[better] = cand[better], j
        best = new
        choices.append(pick)
    if not np.isfinite(best[units]):
        raise ValueError('no choice fits the capacity (after rounding costs up to the solver\'s step)')
    out, u = [], units
    for cost, pick in zip(reversed(costs), reversed(choices), strict=True):
        j = int(pick[u])
        out.append(j)
        u -= min(units + 1, int(math.ceil(cost[j] / step - 1e-9)))
    return out[::-1]


def _knapsack(teacher_macs: int, layers: Sequence[AttentionLayer], budget: float, value_of) -> Dict[str, int]:
    smallest = predicted_macs(teacher_macs, layers, {layer.path: layer.heads for layer in layers})
    capacity = budget * teacher_macs - smallest
    costs = [[layer.macs(r) - layer.macs_min for r in layer.candidates] for layer in layers]
    values = [[value_of(layer, r) for r in layer.candidates] for layer in layers]
    picks = solve(costs, values, max(0.0, capacity))
    return {layer.path: layer.candidates[j] for layer, j in zip(layers, picks, strict=True)}


def check_budget(budget: float, teacher_macs: int, layers: Sequence[AttentionLayer], shape) -> None:
    low = smallest_budget(teacher_macs, layers)
    if not budget > 0:
        raise CompressError(f'--budget must be a fraction of the teacher\'s MACs in (0, ...], got {budget}')
    if budget < low:
        attention = sum(layer.csa_macs for layer in layers) / teacher_macs
        raise CompressError(f'--budget {budget:g} cannot be met: the smallest reachable budget is {low:.4f} of the '
                            f'teacher\'s MACs at {"x".join(map(str, shape[1:]))} (every attention layer at rank = '
                            f'its heads); the attention layers are {attention:.1%} of the network\'s MACs. '
                            f'Give --budget {math.ceil(low * 1000) / 1000:g} or more')


def plan_for_budget(teacher_macs: int, layers: Sequence[AttentionLayer], budget: float) -> Plan:
    """Ranks minimising the summed per-layer output error within ``budget`` x the teacher's MACs."""
    ranks = _knapsack(teacher_macs, layers, budget, lambda layer, r: layer.errors[r])
    return Plan(ranks, f'output error (budget {budget:g})', predicted_macs(teacher_macs, layers, ranks))


def energy_plan_for_budget(teacher_macs: int, layers: Sequence[AttentionLayer], budget: float) -> Plan:
    """Ranks keeping the most attention-map energy (summed over layers) within the budget: the alternative the
    report compares with."""
    def energy_lost(layer: AttentionLayer, r: int) -> float:
        return 1.0 - (layer.energy_at(r) if layer.energy else r / layer.channels)
    ranks = _knapsack(teacher_macs, layers, budget, energy_lost)
    return Plan(ranks, f'attention energy (budget {budget:g})', predicted_macs(teacher_macs, layers, ranks))


def uniform_plan_for_budget(teacher_macs: int, layers: Sequence[AttentionLayer], budget: float,
                            steps: int = 64) -> Optional[Plan]:
    """The largest uniform rank ratio (``steps`` grid) whose network fits the budget, or None."""
    from ..layers import resolve_rank
    for i in range(steps, 0, -1):
        ratio = i / steps
        ranks = {layer.path: resolve_rank(layer.channels, layer.heads, rank_ratio=ratio) for layer in layers}
        macs = predicted_macs(teacher_macs, layers, ranks)
        if macs <= budget * teacher_macs:
            return Plan(ranks, f'uniform rank ratio {ratio:.3g}', macs)
    return None


def plan_for_energy(teacher_macs: int, layers: Sequence[AttentionLayer], energy: float) -> Plan:
    """Per layer the smallest per-head rank keeping ``energy`` of the attention maps' energy, times the heads."""
    from ..analysis.spectrum import smallest_rank
    if not 0 < energy <= 1:
        raise CompressError(f'--energy must be in (0, 1], got {energy}')
    ranks = {}
    for layer in layers:
        k = smallest_rank(np.asarray(layer.energy), energy) if layer.energy else layer.head_dim
        ranks[layer.path] = min(layer.head_dim, k) * layer.heads
    return Plan(ranks, f'attention energy {energy:g} per layer', predicted_macs(teacher_macs, layers, ranks))


def compare_plans(net: nn.Module, plans: Sequence[Plan], crops: torch.Tensor, guidance: str, gamma: int,
                  strict: bool = True) -> List[dict]:
    """Per plan: method, predicted MACs and the warm-start PSNR against the teacher on ``crops`` (dB)."""
    out = []
    for plan in plans:
        err = joint_error(net, plan.ranks, crops, guidance, gamma, strict)
        out.append({'method': plan.method, 'macs': plan.predicted_macs, 'warm_start_mse': err,
                    'warm_start_psnr_vs_teacher': psnr_of_mse(err)})
    return out
