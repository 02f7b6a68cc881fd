"""Speed and memory of CSA vs GLMHA, side by side in one process: attention layers, whole models, training memory.

    .venv/bin/python tools/benchmark.py                          # everything, CUDA when available, else CPU
    .venv/bin/python tools/benchmark.py --parts layers --channels 48 96 --sides 64 128
    .venv/bin/python tools/benchmark.py --parts models memory --model-size restormer=3x128x128
    .venv/bin/python tools/benchmark.py --parts memory --checkpoint --hosts restormer mst_plus_plus   # use_checkpoint
    .venv/bin/python tools/benchmark.py --tiny --repeats 2 --out-dir /tmp/bench   # seconds-long smoke run

Every comparison is interleaved (each repeat runs every variant once, in a
rotating order) and reported as the median over repeats, with ratios to CSA
and the project's targets checked per row.  On CUDA, timed calls are
synchronised.  Writes benchmark.md, benchmark_*.csv and benchmark.png.
"""
import argparse
import os
import os.path as osp
import platform
import sys
import time

import torch

import glmha_plugin  # noqa: F401  (registers the architectures)
from glmha_plugin.analysis import benchmark as bench
from glmha_plugin.analysis import benchmark_report as report
from glmha_plugin.analysis.complexity_report import parse_host_sizes
from glmha_plugin.analysis.hosts import HOSTS, attention_variants, get_host
from glmha_plugin.analysis.tables import write_csv

PARTS = ('layers', 'models', 'memory')


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
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--parts', nargs='+', default=list(PARTS), choices=PARTS)
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
    parser.add_argument('--memory-size', nargs='+', metavar='HOST=CxHxW',
                        help='training-step input per host (default: the model size)')
    parser.add_argument('--memory-batch', type=int, default=2)
    parser.add_argument('--checkpoint', action='store_true',
                        help='memory part: also measure each model with use_checkpoint (activation checkpointing per '
                             'transformer block) and print the ratio')
    parser.add_argument('--tiny', action='store_true', help="hosts' tiny configurations (smoke test)")
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
    layers, models, memory, checkpoint = [], [], [], []
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

    header = [f'# Benchmark: CSA vs GLMHA ({started})', '',
              f'- device: {machine(device)}; torch {torch.__version__}',
              f'- clock: {args.clock}; {args.repeats} interleaved repeats, median; >= {args.min_time}s per sample',
              f'- load average (1/5/15 min) at start: {load_start}; at end: {_load()}',
              f'- allocator: {"glibc keeping freed memory (--malloc keep)" if args.malloc == "keep" else "system default"}'
              f'; {bench.minor_page_faults() - faults:,} minor page faults during the run',
              f'- command: `{" ".join([osp.relpath(sys.argv[0]) if argv is None else "tools/benchmark.py"] + (sys.argv[1:] if argv is None else list(argv)))}`',
              '']
    sections = []
    if layers:
        sections += [f'## Attention layer alone (forward, no grad, batch {args.batch}, rank ratio {args.ratio:g})',
                     '', 'Heads: C/48 where 48 divides C, else 1. Target: GLMHA time ratio <= MAC ratio + 0.05 at '
                     'C >= 48 and N >= 64².', '', report.layers_markdown(layers)]
    if models:
        sections += ['## Whole model (forward without grad; forward + L1 loss + backward)', '',
                     'Target: GLMHA forward time ratio <= MAC ratio + 0.05.', '', report.models_markdown(models)]
    if memory:
        sections += ['## Peak memory of a training step (forward, backward, Adam step)', '',
                     'CUDA: allocator peak; CPU: torch MemTracker peak (parameters, gradients, optimiser state, '
                     'activations, temporaries). Target: GLMHA <= 0.95 of CSA.', '', report.memory_markdown(memory)]
    if checkpoint:
        sections += ['## Peak training-step memory with activation checkpointing (use_checkpoint)', '',
                     'The same step, each transformer block checkpointed (non-reentrant). Target: GLMHA-Restormer '
                     f'and GLMHA-MST++ <= {report.CHECKPOINT_TARGET} of without.', '',
                     report.checkpoint_markdown(checkpoint)]
    if profiles:
        sections += ['## Profiles (self time per op, CSA vs GLMHA)', '']
        for c, side in profiles:
            sections += [bench.profile_layers(c, side, args.ratio, args.repeats, device), '']
    md = '\n'.join(header + sections)
    os.makedirs(args.out_dir, exist_ok=True)
    written = [osp.join(args.out_dir, 'benchmark.md')]
    with open(written[0], 'w', encoding='utf-8') as f:
        f.write(md)
    for name, rows in (('layers', layers), ('models', models), ('memory', memory), ('checkpoint', checkpoint)):
        if rows:
            written.append(osp.join(args.out_dir, f'benchmark_{name}.csv'))
            write_csv(rows, written[-1])
    if layers or models:
        written.append(osp.join(args.out_dir, 'benchmark.png'))
        report.plot(layers, models, written[-1])
    print(md)
    print('written: ' + ', '.join(written))
    return 0


if __name__ == '__main__':
    sys.exit(main())
