"""Tables and chart of the speed/memory benchmark, with the targets of the project checked row by row.

Targets (issue 5): attention-layer time ratio GLMHA/CSA <= MAC ratio + 0.05 at
C >= 48 and N >= 64^2; whole-model forward ratio of GLMHA-Restormer <= its MAC
ratio + 0.05; training-step peak memory of GLMHA-Restormer <= 0.95 of
Restormer's.  Activation checkpointing (issue 10): peak training-step memory
with ``use_checkpoint`` <= 0.6 of without for GLMHA-Restormer and GLMHA-MST++.
Rows outside a target's scope say ``-``.
"""
from typing import List, Sequence

from .benchmark import CheckpointRow, LayerRow, MemoryRow, ModelRow

TIME_SLACK = 0.05
MEMORY_TARGET = 0.95
CHECKPOINT_TARGET = 0.6
CHECKPOINT_HOSTS = ('restormer', 'mst_plus_plus')
LAYER_SCOPE = (48, 64)  # C >= 48 and N >= 64^2


def _verdict(ok: bool) -> str:
    return 'met' if ok else 'MISSED'


def layer_target(row: LayerRow) -> str:
    if row.variant != 'GLMHA' or row.channels < LAYER_SCOPE[0] or row.side < LAYER_SCOPE[1]:
        return '-'
    return _verdict(row.time_ratio <= row.mac_ratio + TIME_SLACK)


def model_target(row: ModelRow) -> str:
    if not row.variant.startswith('GLMHA') or 'none' in row.variant:
        return '-'
    return _verdict(row.fwd_ratio <= row.mac_ratio + TIME_SLACK)


def memory_target(row: MemoryRow) -> str:
    if not row.variant.startswith('GLMHA') or 'none' in row.variant:
        return '-'
    return _verdict(row.ratio <= MEMORY_TARGET)


def checkpoint_target(row: CheckpointRow) -> str:
    if row.host not in CHECKPOINT_HOSTS or not row.variant.startswith('GLMHA') or 'none' in row.variant:
        return '-'
    return _verdict(row.ratio <= CHECKPOINT_TARGET)


def layers_markdown(rows: Sequence[LayerRow]) -> str:
    lines = ['| C | N | attention | K/V rank | ms (median) | spread ms | time / CSA | MACs / CSA | target |',
             '|---:|---:|---|---:|---:|---:|---:|---:|---|']
    for r in rows:
        lines.append(f'| {r.channels} | {r.side}² | {r.variant} | {r.rank} | {r.ms:.2f} | {r.spread_ms:.2f} | '
                     f'{r.time_ratio:.3f} | {r.mac_ratio:.3f} | {layer_target(r)} |')
    return '\n'.join(lines) + '\n'


def models_markdown(rows: Sequence[ModelRow]) -> str:
    lines = ['| host | input | batch | attention | GMACs | MACs / CSA | forward ms | fwd / CSA | fwd+bwd ms | '
             'fwd+bwd / CSA | target (forward) |', '|---|---|---:|---|---:|---:|---:|---:|---:|---:|---|']
    for r in rows:
        lines.append(f'| {r.host} | {r.size} | {r.batch} | {r.variant} | {r.macs / 1e9:.2f} | {r.mac_ratio:.3f} | '
                     f'{r.fwd_ms:.1f} | {r.fwd_ratio:.3f} | {r.fwd_bwd_ms:.1f} | {r.fwd_bwd_ratio:.3f} | '
                     f'{model_target(r)} |')
    return '\n'.join(lines) + '\n'


def memory_markdown(rows: Sequence[MemoryRow]) -> str:
    lines = ['| host | input | batch | attention | peak MiB | / CSA | target (<= 0.95) |',
             '|---|---|---:|---|---:|---:|---|']
    for r in rows:
        lines.append(f'| {r.host} | {r.size} | {r.batch} | {r.variant} | {r.peak_mib:.1f} | {r.ratio:.3f} | '
                     f'{memory_target(r)} |')
    return '\n'.join(lines) + '\n'


def checkpoint_markdown(rows: Sequence[CheckpointRow]) -> str:
    lines = [f'| host | input | batch | attention | peak MiB | with use_checkpoint MiB | ratio | '
             f'target (<= {CHECKPOINT_TARGET}) |', '|---|---|---:|---|---:|---:|---:|---|']
    for r in rows:
        lines.append(f'| {r.host} | {r.size} | {r.batch} | {r.variant} | {r.peak_mib:.1f} | '
                     f'{r.checkpoint_peak_mib:.1f} | {r.ratio:.3f} | {checkpoint_target(r)} |')
    return '\n'.join(lines) + '\n'


def plot(layers: List[LayerRow], models: List[ModelRow], path: str) -> None:
    """Left: time ratio against MAC ratio per attention-layer config; right: whole-model ratios."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    panels = [p for p in (layers, models) if p]
    fig, axes = plt.subplots(1, len(panels), figsize=(6.5 * len(panels), 5), squeeze=False)
    axes = list(axes[0])
    if layers:
        ax = axes.pop(0)
        markers = {'GLMHA': 'o', 'GLMHA no guidance': 's', 'Linformer': '^'}
        sides = sorted({r.side for r in layers})
        cmap = plt.get_cmap('viridis', len(sides))
        for variant, marker in markers.items():
            for i, side in enumerate(sides):
                sel = [r for r in layers if r.variant == variant and r.side == side]
                if sel:
                    ax.scatter([r.mac_ratio for r in sel], [r.time_ratio for r in sel], marker=marker,
                               color=cmap(i), label=f'{variant}, N={side}²' if variant == 'GLMHA' else None)
        lo = min(min(r.mac_ratio for r in layers), min(r.time_ratio for r in layers)) * 0.9
        hi = max(max(r.mac_ratio for r in layers), max(r.time_ratio for r in layers)) * 1.05
        ax.plot([lo, hi], [lo, hi], 'k-', lw=0.8, label='time = MACs')
        ax.plot([lo, hi], [lo + TIME_SLACK, hi + TIME_SLACK], 'r--', lw=0.8, label='target: MACs + 0.05')
        for variant, marker in markers.items():
            ax.scatter([], [], marker=marker, color='gray', label=variant)
        ax.set_xlabel('MAC ratio vs CSA')
        ax.set_ylabel('time ratio vs CSA (median)')
        ax.set_title('attention layer alone (forward)')
        ax.legend(fontsize=7)
    if models:
        ax = axes.pop(0)
        labels = [f'{r.host}\n{r.variant}' for r in models]
        xs = range(len(models))
        width = 0.27
        ax.bar([x - width for x in xs], [r.mac_ratio for r in models], width, label='MACs')
        ax.bar(list(xs), [r.fwd_ratio for r in models], width, label='forward time')
        ax.bar([x + width for x in xs], [r.fwd_bwd_ratio for r in models], width, label='fwd+bwd time')
        ax.set_xticks(list(xs), labels, fontsize=7)
        ax.set_ylabel('ratio vs CSA model')
        ax.set_ylim(0, 1.2)
        ax.axhline(1.0, color='k', lw=0.6)
        ax.set_title('whole model')
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
