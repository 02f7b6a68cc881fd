"""Steps ``benchmark`` / ``benchmark_amp``: ``tools/benchmark.py``'s layer, model and memory tables on this device.

``--precision fp32``: the layer, model and memory parts in float32, and the
paths part (every network with each layer path forced on this device: does the
device's own path pay there, docs/layer_paths.md); ``--precision bf16``: the
model and memory parts under bf16 autocast (``--amp bf16``) with per-op
profiles of two attention layers.  Sizes: on CUDA the setting of the
CUDA targets (the hosts' paper sizes, Restormer 3 x 256 x 256, batch 2); on CPU
64 x 64 inputs (a 256 x 256 Restormer training step does not fit a small
machine's memory), under bf16 the hosts' tiny configurations (bf16 on a CPU
without bf16 units is many times slower); ``--quick``: Restormer's tiny
configuration at 32 x 32.
The memory part adds the ``use_checkpoint`` rows (``--checkpoint``).  Targets are reported, not
asserted: a missed target does not fail the step.
"""
import csv
import os.path as osp
import sys
import time

from . import FAIL, PASS, StepResult, step_main, step_parser

HOSTS_AT = {'cuda': 256, 'cpu': 64, 'quick': 32}
# the CUDA targets (docs/gpu_check.md) for GLMHARestormer vs Restormer (bf16 autocast, 3 x 256 x 256, batch 2,
# training step); the time margin over the MAC ratio is the benchmark's own (analysis.benchmark_report.TIME_SLACK)
MEMORY_TARGET, CHECKPOINT_TARGET = 0.93, 0.5


def benchmark_args(precision: str, quick: bool, cuda: bool, out_dir: str):
    """The ``tools/benchmark.py`` command line of this step."""
    where = 'quick' if quick else 'cuda' if cuda else 'cpu'
    side = HOSTS_AT[where]
    args = ['--out-dir', out_dir, '--model-batch', '2', '--memory-batch', '2']
    if where != 'cuda':
        from glmha_plugin.analysis.hosts import HOSTS, get_host
        names = ['restormer'] if quick else list(HOSTS)
        args += ['--hosts', *names,
                 '--model-size', *[f'{n}={get_host(n).paper_sizes[0][0]}x{side}x{side}' for n in names]]
    if where == 'quick':
        args += ['--tiny', '--repeats', '2', '--min-time', '0.01', '--channels', '48', '--sides', '32']
    elif where == 'cpu':
        args += ['--repeats', '3', '--channels', '48', '96', '--sides', '64', '128']
        if precision != 'fp32':  # bf16 autocast without bf16 units: a full-size model took over 20 minutes
            args.append('--tiny')
    else:
        args += ['--repeats', '5']
    if precision == 'fp32':
        args += ['--parts', 'layers', 'models', 'memory', 'paths']
    else:
        args += ['--parts', 'models', 'memory', '--amp', precision, '--profile',
                 *(['48x32'] if quick else ['48x256', '96x128'])]
    return args + ['--checkpoint']


def _csv(path: str):
    if not osp.isfile(path):
        return []
    with open(path, encoding='utf-8') as f:
        return list(csv.DictReader(f))


def targets_markdown(out_dir: str, cuda: bool, quick: bool) -> str:
    """Issue 11's targets for GLMHARestormer vs Restormer, from this run's CSV files."""
    from glmha_plugin.analysis.benchmark_report import TIME_SLACK, _verdict

    def restormer_rows(part):
        return [r for r in _csv(osp.join(out_dir, f'benchmark_{part}.csv'))
                if r['host'] == 'restormer' and r['variant'] != 'CSA']

    lines = ['| quantity | ratio | target | verdict |', '|---|---:|---:|---|']
    for r in restormer_rows('models'):
        limit, ratio = float(r['mac_ratio']) + TIME_SLACK, float(r['fwd_bwd_ratio'])
        lines.append(f'| training-step time (fwd + bwd) / CSA, {r["size"]}, batch {r["batch"]}, {r["variant"]} | '
                     f'{ratio:.3f} | <= {limit:.3f} | {_verdict(ratio <= limit)} |')
    for r in restormer_rows('memory'):
        ratio = float(r['ratio'])
        lines.append(f'| peak training memory / CSA, {r["size"]}, batch {r["batch"]}, {r["variant"]} | {ratio:.3f} | '
                     f'<= {MEMORY_TARGET} | {_verdict(ratio <= MEMORY_TARGET)} |')
    for r in restormer_rows('checkpoint'):
        ratio = float(r['ratio'])
        verdict = _verdict(ratio <= CHECKPOINT_TARGET)
        lines.append(f'| peak training memory with / without use_checkpoint, {r["size"]}, batch {r["batch"]}, '
                     f'{r["variant"]} | {ratio:.3f} | <= {CHECKPOINT_TARGET} | {verdict} |')
    where = ('' if cuda and not quick else
             '\n\nNot the target setting (CUDA, 3x256x256, batch 2): the verdicts are for this run only.')
    return ('Issue 11 (CUDA, bf16 autocast, Restormer 3x256x256, batch 2): GLMHARestormer training-step time <= MAC '
            f'ratio + {TIME_SLACK}, peak memory <= {MEMORY_TARGET} of Restormer\'s, with use_checkpoint <= '
            f'{CHECKPOINT_TARGET} of without (the checkpointing table).{where}\n\n'
            + '\n'.join(lines) + '\n')


def run_benchmark(argv) -> int:
    """``tools/benchmark.py``'s ``main(argv)`` in this process (one interpreter start fewer); its exit status."""
    from glmha_plugin.analysis.benchmark_report import main
    try:
        return main(argv)
    except SystemExit as exc:  # argparse's errors
        return exc.code if isinstance(exc.code, int) else 2


def run(args) -> StepResult:
    import torch
    cuda = torch.cuda.is_available()
    argv = benchmark_args(args.precision, args.quick, cuda, args.out)
    print('$ tools/benchmark.py ' + ' '.join(argv), flush=True)
    t0 = time.perf_counter()
    code = run_benchmark(argv)
    seconds = time.perf_counter() - t0
    md_path = osp.join(args.out, 'benchmark.md')
    md = f'`{" ".join(["tools/benchmark.py"] + argv).replace(args.out, "OUT")}` ({seconds:.0f} s)\n\n'
    if code != 0 or not osp.isfile(md_path):
        return StepResult(FAIL, f'tools/benchmark.py exited {code} (see gpu_check.log)', md)
    with open(md_path, encoding='utf-8') as f:
        report = f.read()
    md += report.replace('\n## ', '\n#### ').replace('# Benchmark', '#### Benchmark', 1) + '\n'
    if args.precision != 'fp32':
        md += '\n#### Targets\n\n' + targets_markdown(args.out, cuda, args.quick)
    where = 'CUDA' if cuda else 'CPU'
    return StepResult(PASS, f'{where} tables written ({seconds:.0f} s)', md)


def parser():
    p = step_parser(__doc__.split('\n\n')[0])
    p.add_argument('--precision', default='fp32', choices=['fp32', 'bf16'])
    return p


if __name__ == '__main__':
    sys.exit(step_main(run, parser()))
