"""Attention spectra (the GLMHA paper's Figure 1): how low-rank are a model's channel-attention maps?

Every attention layer of the package (any module with an
``attention_maps(x) -> B x h x d x r_h`` method: CSA and GLMHA, and the
MS-MSA of MST / MST++, :class:`~glmha_plugin.layers.SpectralMSA`) is
hooked; each forward pass then records, per image and head, two cumulative
spectra of its softmax map A (d x r_h):

* singular values s_1 >= s_2 >= ...: ``E(k) = sum_{i<=k} s_i^2 / sum_i s_i^2``,
  the share of A's energy (squared Frobenius norm) that the best rank-k
  approximation keeps (Eckart-Young).  The per-layer ranks printed and written
  as options come from this curve, averaged over images and heads.
* eigenvalues (square maps only, i.e. CSA): ``sum_{i<=k} |l_i| / sum_i |l_i|``
  with |l_1| >= |l_2| >= ..., the paper's cumulative eigenvalue distribution.

A stage's rank for energy p is its layers' largest per-head rank k(p) times
the stage's heads, so it is a multiple of the heads as GLMHA requires.
"""
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

ENERGIES = (0.90, 0.95, 0.99)


def cumulative_spectra(maps: torch.Tensor):
    """Per-map cumulative curves of M maps (M x d x r): (singular-value energy M x min(d, r), |eig| M x d or None)."""
    maps = maps.detach().to(torch.float64).cpu()
    s2 = torch.linalg.svdvals(maps) ** 2
    sv = torch.cumsum(s2, -1) / s2.sum(-1, keepdim=True).clamp_min(1e-300)
    eig = None
    if maps.shape[-1] == maps.shape[-2]:
        lam = torch.linalg.eigvals(maps).abs().sort(dim=-1, descending=True).values
        eig = torch.cumsum(lam, -1) / lam.sum(-1, keepdim=True).clamp_min(1e-300)
    return sv.numpy(), None if eig is None else eig.numpy()


def smallest_rank(curve: np.ndarray, energy: float) -> int:
    """Smallest k (1-based) with curve[k-1] >= energy."""
    return int(np.searchsorted(curve, energy - 1e-12) + 1)


@dataclass
class LayerSpectrum:
    """Spectra of one attention layer, averaged over every image and head seen."""
    name: str
    stage: Optional[str]
    channels: int
    heads: int
    sv_energy: np.ndarray                  # mean cumulative singular-value energy, length min(d, r_h)
    eig_cumulative: Optional[np.ndarray]   # mean cumulative |eigenvalue| share (square maps), length d
    maps: int                              # images x heads averaged

    @property
    def head_dim(self) -> int:
        return self.channels // self.heads

    def rank(self, energy: float) -> int:
        """Smallest per-head rank keeping ``energy`` of the mean singular-value energy."""
        return smallest_rank(self.sv_energy, energy)


@dataclass
class _Sums:
    channels: int
    heads: int
    sv: Optional[np.ndarray] = None
    eig: Optional[np.ndarray] = None
    n: int = 0


class SpectrumCollector:
    """Hooks every attention layer of ``model`` and accumulates spectra over forward passes.

    Use as a context manager (hooks are removed on exit)::

        with SpectrumCollector(model, stage_of) as spectra:
            for x in images:
                model(x)
        layers = spectra.results()
    """

    def __init__(self, model: nn.Module, stage_of: Callable[[str], Optional[str]] = lambda name: None):
        self.layers = {name: m for name, m in model.named_modules() if callable(getattr(m, 'attention_maps', None))}
        if not self.layers:
            raise ValueError(f'{type(model).__name__} has no attention layer with an attention_maps() method '
                             f'(CSA / GLMHA / SpectralMSA from glmha_plugin.layers)')
        self.stage_of = stage_of
        self._sums: Dict[str, _Sums] = {}
        self._handles = []

    def __enter__(self):
        for name, module in self.layers.items():
            self._handles.append(module.register_forward_hook(self._hook(name)))
        return self

    def __exit__(self, *exc):
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def _hook(self, name: str):
        def record(module, inputs, output):
            with torch.no_grad():
                maps = module.attention_maps(inputs[0])          # B x h x d x r_h
            sv, eig = cumulative_spectra(maps.flatten(0, 1))
            s = self._sums.setdefault(name, _Sums(module.dim, module.num_heads))
            s.sv = sv.sum(0) if s.sv is None else s.sv + sv.sum(0)
            if eig is not None:
                s.eig = eig.sum(0) if s.eig is None else s.eig + eig.sum(0)
            s.n += sv.shape[0]
        return record

    def results(self) -> List[LayerSpectrum]:
        """One :class:`LayerSpectrum` per layer that ran, in forward order."""
        out = []
        for name, s in self._sums.items():
            out.append(LayerSpectrum(name, self.stage_of(name), s.channels, s.heads, s.sv / s.n,
                                     None if s.eig is None else s.eig / s.n, s.n))
        return out


def stage_ranks(layers: Sequence[LayerSpectrum], energy: float) -> Dict[str, int]:
    """``{stage: rank}``: the stage's largest per-head rank for ``energy``, times its heads (<= channels)."""
    ranks: Dict[str, int] = {}
    for layer in layers:
        if layer.stage is None:
            continue
        r = min(layer.channels, layer.rank(energy) * layer.heads)
        ranks[layer.stage] = max(ranks.get(layer.stage, 0), r)
    return ranks


def table(layers: Sequence[LayerSpectrum], energies: Sequence[float] = ENERGIES) -> str:
    """Markdown table: per layer, the smallest per-head rank (and total rank) for each energy."""
    head = ' | '.join(f'rank for {e:.0%} (per head / total)' for e in energies)
    lines = [f'| layer | stage | C | heads | d | {head} |', '|---|---|---:|---:|---:|' + '---:|' * len(energies)]
    for layer in layers:
        cells = ' | '.join(f'{layer.rank(e)} / {min(layer.channels, layer.rank(e) * layer.heads)}' for e in energies)
        lines.append(f'| {layer.name} | {layer.stage or "-"} | {layer.channels} | {layer.heads} | {layer.head_dim} | '
                     f'{cells} |')
    return '\n'.join(lines) + '\n'


def plot(layers: Sequence[LayerSpectrum], path: str, title: str = '') -> None:
    """Mean cumulative eigenvalue and singular-value curves per stage (level), against the per-head rank."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    groups: Dict[str, List[LayerSpectrum]] = {}
    for layer in layers:
        groups.setdefault(layer.stage or layer.name, []).append(layer)
    has_eig = any(layer.eig_cumulative is not None for layer in layers)
    panels = [('sv_energy', 'cumulative singular-value energy')]
    if has_eig:
        panels.insert(0, ('eig_cumulative', 'cumulative eigenvalue distribution (|eigenvalues|)'))
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 4.8), squeeze=False)
    cmap = plt.get_cmap('tab10')
    for ax, (attr, label) in zip(axes[0], panels, strict=True):
        for i, (stage, members) in enumerate(groups.items()):
            curves = [getattr(m, attr) for m in members if getattr(m, attr) is not None]
            if not curves:
                continue
            curve = np.mean(curves, axis=0)
            ks = np.arange(1, len(curve) + 1)
            ax.plot(ks, curve, color=cmap(i % 10), label=f'{stage} (d={members[0].head_dim}, {len(members)} layers)')
        for e in ENERGIES:
            ax.axhline(e, color='gray', lw=0.6, ls=':')
        ax.set_xscale('log')
        ax.set_xlabel('rank per head (k)')
        ax.set_ylabel(label)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc='lower right')
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
