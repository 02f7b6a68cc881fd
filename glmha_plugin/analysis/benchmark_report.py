"""Tables and chart of the speed/memory benchmark, with the targets of the project checked row by row.

Targets: attention-layer time ratio GLMHA/CSA <= MAC ratio + 0.05 at
C >= 48 and N >= 64^2; whole-model forward ratio of GLMHA-Restormer <= its MAC
ratio + 0.05; training-step peak memory of GLMHA-Restormer <= 0.95 of
Restormer's.  Activation checkpointing: peak training-step memory
with ``use_checkpoint`` <= 0.6 of without for GLMHA-Restormer and GLMHA-MST++.
Whole networks in every runtime: GLMHA-Restormer / Restormer <= 0.92
in eager forward and onnxruntime forward at 3 x 128 x 128, or, where the
bytes-moved ratio (:mod:`.traffic`) is above 0.92, within 0.02 of it.
Rows outside a target's scope say ``-``.

:func:`main` is ``glmha benchmark``.
"""
import argparse
import contextlib
import os
import os.path as osp
import platform
import sys
import time
from typing import List, Sequence

import torch

from . import benchmark as bench
from .benchmark import RUNTIME_LABELS, RUNTIMES, CheckpointRow, LayerRow, MemoryRow, ModelRow, PathRow, RuntimeRow
from .breakdown import benchmark_breakdown, breakdown_markdown
from .complexity_report import parse_host_sizes
from .hosts import HOSTS, attention_variants, get_host
from .tables import markdown_table, write_csv

TIME_SLACK = 0.05
MEMORY_TARGET = 0.95
CHECKPOINT_TARGET = 0.6
CHECKPOINT_HOSTS = ('restormer', 'mst_plus_plus')
LAYER_SCOPE = (48, 64)  # C >= 48 and N >= 64^2
RUNTIME_TARGET = 0.92   # GLMHA-Restormer / Restormer, eager and onnxruntime forward at 3x128x128
BOUND_SLACK = 0.02      # ... or within this of the bytes-moved ratio where that is above RUNTIME_TARGET
RUNTIME_SCOPE = ('restormer', '3x128x128', ('eager', 'onnxruntime'))


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


def runtime_limit(row: RuntimeRow):
    """The time-ratio limit of a whole-network row (module docstring), or None outside the target's scope."""
    host, size, runtimes = RUNTIME_SCOPE
    if (row.host, row.size) != (host, size) or row.runtime not in runtimes or not row.variant.startswith('GLMHA') \
            or 'none' in row.variant:
        return None
    return RUNTIME_TARGET if row.bytes_ratio <= RUNTIME_TARGET else row.bytes_ratio + BOUND_SLACK


def runtime_target(row: RuntimeRow) -> str:
    limit = runtime_limit(row)
    return '-' if limit is None else f'{_verdict(row.ratio <= limit)} (<= {limit:.3f})'


def runtimes_markdown(rows: Sequence[RuntimeRow]) -> str:
    """One table row per (host, input, variant): MAC and bytes ratios, then ms and ratio per runtime."""
    runtimes = [r for r in RUNTIMES if any(row.runtime == r for row in rows)]
    keys = list(dict.fromkeys((r.host, r.size, r.batch, r.variant) for r in rows))
    cell = {(r.host, r.size, r.batch, r.variant, r.runtime): r for r in rows}
    head = ['host', 'input', 'batch', 'attention', 'GMACs', 'MACs / CSA', 'MB moved', 'bytes / CSA']
    head += [c for r in runtimes for c in (f'{RUNTIME_LABELS[r]} ms', 'ratio')] + ['target']
    body = []
    for key in keys:
        first = cell[key + (runtimes[0],)]
        times = [c for r in runtimes for c in (f'{cell[key + (r,)].ms:.1f}', f'{cell[key + (r,)].ratio:.3f}')]
        targets = [f'{RUNTIME_LABELS[r]}: {runtime_target(cell[key + (r,)])}' for r in runtimes
                   if runtime_target(cell[key + (r,)]) != '-']
        body.append([*key, f'{first.macs / 1e9:.2f}', f'{first.mac_ratio:.3f}', f'{first.bytes_moved / 2**20:.0f}',
                     f'{first.bytes_ratio:.3f}', *times, '; '.join(targets) or '-'])
    return markdown_table(head, 'llrlrrrr' + 'rr' * len(runtimes) + 'l', body)


def paths_markdown(rows: Sequence[PathRow]) -> str:
    return markdown_table(['host', 'input', 'batch', 'attention', 'runtime', 'layer path', 'ms',
                           "/ device's own path"], 'llrlllrr',
                          [[r.host, r.size, r.batch, r.variant, RUNTIME_LABELS[r.runtime], r.path, f'{r.ms:.1f}',
                            f'{r.ratio:.3f}'] for r in rows])


def layers_markdown(rows: Sequence[LayerRow]) -> str:
    return markdown_table(['C', 'N', 'attention', 'K/V rank', 'ms (median)', 'spread ms', 'time / CSA', 'MACs / CSA',
                           'target'], 'rrlrrrrrl',
                          [[r.channels, f'{r.side}²', r.variant, r.rank, f'{r.ms:.2f}', f'{r.spread_ms:.2f}',
                            f'{r.time_ratio:.3f}', f'{r.mac_ratio:.3f}', layer_target(r)] for r in rows])


def models_markdown(rows: Sequence[ModelRow]) -> str:
    return markdown_table(['host', 'input', 'batch', 'attention', 'GMACs', 'MACs / CSA', 'forward ms', 'fwd / CSA',
                           'fwd+bwd ms', 'fwd+bwd / CSA', 'target (forward)'], 'llrlrrrrrrl',
                          [[r.host, r.size, r.batch, r.variant, f'{r.macs / 1e9:.2f}', f'{r.mac_ratio:.3f}',
                            f'{r.fwd_ms:.1f}', f'{r.fwd_ratio:.3f}', f'{r.fwd_bwd_ms:.1f}', f'{r.fwd_bwd_ratio:.3f}',
                            model_target(r)] for r in rows])


def memory_markdown(rows: Sequence[MemoryRow]) -> str:
    return markdown_table(['host', 'input', 'batch', 'attention', 'peak MiB', '/ CSA', 'target (<= 0.95)'],
                          'llrlrrl', [[r.host, r.size, r.batch, r.variant, f'{r.peak_mib:.1f}', f'{r.ratio:.3f}',
                                       memory_target(r)] for r in rows])


def checkpoint_markdown(rows: Sequence[CheckpointRow]) -> str:
    return markdown_table(['host', 'input', 'batch', 'attention', 'peak MiB', 'with use_checkpoint MiB', 'ratio',
                           f'target (<= {CHECKPOINT_TARGET})'], 'llrlrrrl',
                          [[r.host, r.size, r.batch, r.variant, f'{r.peak_mib:.1f}', f'{r.checkpoint_peak_mib:.1f}',
                            f'{r.ratio:.3f}', checkpoint_target(r)] for r in rows])


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


PARTS = ('layers', 'models', 'memory', 'runtimes', 'paths', 'breakdown')
DEFAULT_PARTS = ('layers', 'models', 'memory')   # the others on request (compiling takes minutes)
AMP_DTYPES = {'none': None, 'bf16': torch.bfloat16, 'fp16': torch.float16}


def machine(device: torch.device) -> str:
    if device.type == 'cuda':
        return f'{torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}'
    cpu = platform.processor() or platform.machine()
    try:
        with open('/proc/cpuinfo', encoding='utf-8') as f:
            cpu = next(line.split(':', 1)[1].strip() for line in f if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return f'{cpu}, {os.cpu_count()} cores visible, {torch.get_num_threads()} torch threads'


def _load() -> str:
    try:
        return ' / '.join(f'{v:.2f}' for v in os.getloadavg())
    except OSError:
        return 'n/a'


def main(argv=None):
    parser = argparse.ArgumentParser(description='Speed and memory of CSA vs GLMHA, side by side in one process: '
                                     'attention layers, whole models, training memory.')
    parser.add_argument('--parts', nargs='+', default=list(DEFAULT_PARTS), choices=PARTS,
                        help='runtimes: whole networks in eager, torch.compile and onnxruntime, with MAC and '
                             'bytes-moved ratios; paths: whole networks with each layer path forced on this device; '
                             'breakdown: a whole network\'s forward time split into attention, feed-forward and '
                             'layer norms per level')
    parser.add_argument('--device', default='auto', help='auto (cuda when available), cpu, cuda, cuda:1, ...')
    parser.add_argument('--threads', type=int, default=None, help='torch CPU threads (default: torch default)')
    parser.add_argument('--clock', default='wall', choices=bench.CLOCKS,
                        help='wall: elapsed time; cpu: process CPU time (CPU only; ignores time descheduled on a '
                             'shared machine)')
    parser.add_argument('--malloc', default='system', choices=bench.MALLOC_MODES,
                        help='system: the C library allocator as it is; keep: glibc keeps freed memory instead of '
                             'returning it to the kernel (no page faults per call; CPU, Linux)')
    parser.add_argument('--repeats', type=int, default=7, help='interleaved samples per variant (median reported)')
    parser.add_argument('--min-time', type=float, default=0.05, help='seconds per sample (short calls are looped)')
    parser.add_argument('--channels', type=int, nargs='+', default=[28, 31, 48, 96, 192, 384])
    parser.add_argument('--sides', type=int, nargs='+', default=[32, 64, 128, 256], help='N = side^2 pixels')
    parser.add_argument('--ratio', type=float, default=0.5, help='GLMHA / Linformer rank ratio')
    parser.add_argument('--batch', type=int, default=1, help='batch of the attention-layer benchmark')
    parser.add_argument('--profile', nargs='+', default=[], metavar='CxSIDE',
                        help='also profile CSA vs GLMHA per op at these layer sizes, e.g. 96x256 48x128')
    parser.add_argument('--hosts', nargs='+', default=list(HOSTS), help=f'known: {list(HOSTS)}')
    parser.add_argument('--guidance', nargs='+', default=['calibration'], choices=['calibration', 'none'])
    parser.add_argument('--model-size', nargs='+', metavar='HOST=CxHxW',
                        help="whole-model input per host (default: the host's first paper size)")
    parser.add_argument('--model-batch', type=int, default=1)
    parser.add_argument('--runtimes', nargs='+', choices=RUNTIMES, default=None,
                        help='runtimes of the runtimes part (default: all; onnxruntime only on CPU)')
    parser.add_argument('--runtime-size', nargs='+', metavar='HOST=CxHxW',
                        help="inputs of the runtimes, paths and breakdown parts, several per host allowed "
                                 "(default: the model size)")
    parser.add_argument('--work-dir', default=None,
                        help='where the runtimes part writes its ONNX files (default: OUT_DIR/onnx)')
    parser.add_argument('--memory-size', nargs='+', metavar='HOST=CxHxW',
                        help='training-step input per host (default: the model size)')
    parser.add_argument('--memory-batch', type=int, default=2)
    parser.add_argument('--checkpoint', action='store_true',
                        help='memory part: also measure each model with use_checkpoint (activation checkpointing per '
                             'transformer block) and print the ratio')
    parser.add_argument('--tiny', action='store_true', help="hosts' tiny configurations (smoke test)")
    parser.add_argument('--amp', default='none', choices=list(AMP_DTYPES),
                        help='measure under torch.autocast in this dtype (weights and inputs stay float32)')
    parser.add_argument('--out-dir', default='benchmark_report')
    args = parser.parse_args(argv)

    device = torch.device('cuda' if args.device == 'auto' and torch.cuda.is_available() else
                          'cpu' if args.device == 'auto' else args.device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        parser.error(f'--device {args.device}: CUDA is not available on this machine; use --device cpu')
    if args.clock == 'cpu' and device.type != 'cpu':
        parser.error('--clock cpu measures host CPU time; use --clock wall on a GPU')
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.malloc == 'keep':
        try:
            bench.keep_freed_memory()
        except ValueError as exc:
            parser.error(str(exc))
    try:
        hosts = [get_host(name) for name in args.hosts]
        given = {option: {k: v[-1] for k, v in parse_host_sizes(entries, hosts, option).items()}
                 for option, entries in (('--model-size', args.model_size), ('--memory-size', args.memory_size))}
        model_sizes = dict({h.name: h.paper_sizes[0] for h in hosts}, **given['--model-size'])
        memory_sizes = dict(model_sizes, **given['--memory-size'])
        runtime_sizes = dict({h.name: [model_sizes[h.name]] for h in hosts},
                             **parse_host_sizes(args.runtime_size, hosts, '--runtime-size'))
        runtimes = list(args.runtimes or [r for r in RUNTIMES if device.type == 'cpu' or r != 'onnxruntime'])
        if 'onnxruntime' in runtimes and device.type != 'cpu':
            raise ValueError(f'--runtimes onnxruntime runs on CPU; use --device cpu or leave it out on {device}')
    except ValueError as exc:
        parser.error(str(exc))

    try:
        profiles = [tuple(int(v) for v in p.lower().split('x')) for p in args.profile]
        if any(len(p) != 2 for p in profiles):
            raise ValueError
    except ValueError:
        parser.error(f'--profile entries must look like CxSIDE, e.g. 96x256; got {args.profile}')
    started, load_start, faults = time.strftime('%Y-%m-%d %H:%M'), _load(), bench.minor_page_faults()
    variants = attention_variants([args.ratio], args.guidance)
    amp = contextlib.ExitStack()  # every measurement (profiles too) runs inside; closed before writing
    if AMP_DTYPES[args.amp] is not None:
        amp.enter_context(torch.autocast(device.type, dtype=AMP_DTYPES[args.amp]))
    layers, models, memory, checkpoint, runtime_rows, path_rows, breakdown_rows = [], [], [], [], [], [], []
    if 'layers' in args.parts:
        layers = bench.benchmark_layers(args.channels, args.sides, args.ratio, args.repeats, device, args.batch,
                                        min_time=args.min_time, clock=args.clock)
    for host in hosts:
        overrides = host.tiny if args.tiny else None
        if 'models' in args.parts:
            models += bench.benchmark_models(host, model_sizes[host.name], variants, args.repeats, device,
                                             args.model_batch, overrides, clock=args.clock)
        if 'memory' in args.parts and args.checkpoint:
            plain, compared = bench.benchmark_checkpoint_memory(host, memory_sizes[host.name], variants, device,
                                                                args.memory_batch, overrides)
            memory += plain
            checkpoint += compared
        elif 'memory' in args.parts:
            memory += bench.benchmark_memory(host, memory_sizes[host.name], variants, device, args.memory_batch,
                                             overrides)
        for size in runtime_sizes[host.name]:
            if 'runtimes' in args.parts:
                work_dir = args.work_dir or osp.join(args.out_dir, 'onnx')
                os.makedirs(work_dir, exist_ok=True)
                runtime_rows += bench.benchmark_runtimes(host, size, variants, runtimes, args.repeats, device, work_dir,
                                                         args.model_batch, overrides, min_time=args.min_time,
                                                         clock=args.clock)
            if 'paths' in args.parts:
                path_rows += bench.benchmark_paths(host, size, variants, args.repeats, device, args.model_batch,
                                                   overrides, min_time=args.min_time, clock=args.clock)
            if 'breakdown' in args.parts:
                breakdown_rows += benchmark_breakdown(host, size, variants, args.repeats, device, args.model_batch,
                                                      overrides)

    precision = 'float32' if args.amp == 'none' else f'torch.autocast {args.amp} (weights, inputs float32)'
    allocator = 'glibc keeping freed memory (--malloc keep)' if args.malloc == 'keep' else 'system default'
    command = ([osp.relpath(sys.argv[0]) if argv is None else 'glmha benchmark']
               + (sys.argv[1:] if argv is None else list(argv)))
    header = [f'# Benchmark: CSA vs GLMHA ({started})', '',
              f'- device: {machine(device)}; torch {torch.__version__}',
              f'- clock: {args.clock}; {args.repeats} interleaved repeats, median; >= {args.min_time}s per sample',
              f'- precision: {precision}',
              f'- load average (1/5/15 min) at start: {load_start}; at end: {_load()}',
              f'- allocator: {allocator}'
              f'; {bench.minor_page_faults() - faults:,} minor page faults during the run',
              f'- command: `{" ".join(command)}`',
              '']
    sections = []
    if layers:
        sections += [f'## Attention layer alone (forward, no grad, batch {args.batch}, rank ratio {args.ratio:g})',
                     '', 'Heads: C/48 where 48 divides C, else 1. Target: GLMHA time ratio <= MAC ratio + 0.05 at '
                     'C >= 48 and N >= 64².', '', layers_markdown(layers)]
    if models:
        sections += ['## Whole model (forward without grad; forward + L1 loss + backward)', '',
                     'Target: GLMHA forward time ratio <= MAC ratio + 0.05.', '', models_markdown(models)]
    if runtime_rows:
        sections += ['## Whole networks in every runtime', '',
                     'Eager forward (no grad); eager train step (forward, L1 loss, backward, Adam step); the same '
                     'through torch.compile (compiled before timing); the network exported to ONNX '
                     '(glmha_plugin.deploy.onnx_export) and run by onnxruntime (CPU provider, torch\'s thread '
                     'count). Every ratio is to CSA in the same runtime, interleaved. MB moved: bytes read and '
                     'written by the operators of one eager forward (glmha_plugin.analysis.traffic; the floor '
                     'of a memory-bound machine). Target (GLMHA-Restormer, 3x128x128, eager and onnxruntime '
                     f'forward): <= '
                     f'{RUNTIME_TARGET}, or within {BOUND_SLACK} of the bytes ratio where that is above '
                     f'{RUNTIME_TARGET}.', '', runtimes_markdown(runtime_rows)]
    if path_rows:
        own = 'CUDA' if device.type == 'cuda' else 'CPU'
        sections += ['## Layer paths on this device', '', f'Each path of glmha_plugin.layers.paths forced on {device} '
                     f'(this device\'s own path: {own}); eager forward and train step, interleaved.', '',
                     paths_markdown(path_rows)]
    if breakdown_rows:
        sections += ['## Where the forward time goes (eager, no grad)', '',
                     'Each part timed by forward hooks inside the whole call, summed per level (the network\'s '
                     'top-level child); rest = the whole call minus the parts. Ratios to the first variant.', '',
                     breakdown_markdown(breakdown_rows)]
    if memory:
        sections += ['## Peak memory of a training step (forward, backward, Adam step)', '',
                     'CUDA: allocator peak; CPU: torch MemTracker peak (parameters, gradients, optimiser state, '
                     'activations, temporaries). Target: GLMHA <= 0.95 of CSA.', '', memory_markdown(memory)]
    if checkpoint:
        sections += ['## Peak training-step memory with activation checkpointing (use_checkpoint)', '',
                     'The same step, each transformer block checkpointed (non-reentrant). Target: GLMHA-Restormer '
                     f'and GLMHA-MST++ <= {CHECKPOINT_TARGET} of without.', '', checkpoint_markdown(checkpoint)]
    if profiles:
        sections += ['## Profiles (self time per op, CSA vs GLMHA)', '']
        for c, side in profiles:
            sections += [bench.profile_layers(c, side, args.ratio, args.repeats, device), '']
    amp.close()
    md = '\n'.join(header + sections)
    os.makedirs(args.out_dir, exist_ok=True)
    written = [osp.join(args.out_dir, 'benchmark.md')]
    with open(written[0], 'w', encoding='utf-8') as f:
        f.write(md)
    for name, rows in (('layers', layers), ('models', models), ('memory', memory), ('checkpoint', checkpoint),
                       ('runtimes', runtime_rows), ('paths', path_rows), ('breakdown', breakdown_rows)):
        if rows:
            written.append(osp.join(args.out_dir, f'benchmark_{name}.csv'))
            write_csv(rows, written[-1])
    if layers or models:
        written.append(osp.join(args.out_dir, 'benchmark.png'))
        plot(layers, models, written[-1])
    print(md)
    print('written: ' + ', '.join(written))
    return 0
