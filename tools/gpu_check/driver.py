"""The prepared GPU check: one command, a Markdown report, every step timed (docs/gpu_check.md).

    bash tools/gpu_check.sh OUTDIR            # what to run on the GPU machine (8 minutes on one H200)
    bash tools/gpu_check.sh OUTDIR [--quick] [--steps parity train_fp32 ...] [--work DIR]
    bash tools/gpu_check.sh --list-wheels   # what tools/gpu_wheels.sh downloads

Steps, in order: install (offline, from .gpu_wheels/: what this Python lacks,
then the plugin and its import hook), environment, parity (CUDA vs CPU
float32, every architecture), train_fp32 / train_bf16 / train_fp16 (50
iterations through basicsr's train_pipeline, saved, resumed), torchrun
(--launcher pytorch, NCCL), benchmark (layer, model, memory tables),
benchmark_amp (bf16 autocast).  Each step after install runs as its own
process (``python -m gpu_check.<module>``) with a time limit; a
failed step is recorded and the next one runs.  OUTDIR gets report.md
(rewritten after every step), gpu_check.log (all output) and the benchmark
plots; the scratch folder (data, experiments) is --work (default: a new
temporary folder).  The exit status is 1 if any step failed.

Standard library only: it runs before basicsr is installed.
"""
import argparse
import importlib.metadata
import importlib.util
import os
import os.path as osp
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import List, Optional

TOOLS = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(TOOLS)
WHEEL_DIR = osp.join(REPO, '.gpu_wheels')
GPU_BUDGET_S = 480  # the whole check on one GPU


import gpu_check as P  # noqa: E402  (the steps' protocol, stdlib only: loads before the plugin is installed)

# What the GPU machine lacks (module -> (distribution, version, wheel|sdist)); tools/gpu_wheels.sh downloads these.
# Found by importing the plugin and running every step here, then listing the distributions of sys.modules
# that the GPU machine's image does not have; mmengine needs addict, termcolor, yapf; yapf needs platformdirs.
WHEELS = {
    'basicsr': ('basicsr', '1.4.2', 'sdist'),
    'mmengine': ('mmengine', '0.10.7', 'wheel'),
    'lmdb': ('lmdb', '3.0.0', 'wheel'),
    'addict': ('addict', '2.4.0', 'wheel'),
    'yapf': ('yapf', '0.43.0', 'wheel'),
    'hdf5storage': ('hdf5storage', '0.2.2', 'wheel'),
    'termcolor': ('termcolor', '3.3.0', 'wheel'),
    'platformdirs': ('platformdirs', '4.14.9', 'wheel'),
}
# What the check imports and expects the machine to have already (the GPU machine's image has all of them).
PRESENT = ('torch', 'torchvision', 'numpy', 'scipy', 'timm', 'cv2', 'skimage', 'matplotlib', 'h5py', 'yaml', 'tqdm',
           'rich', 'PIL', 'requests')


@dataclass
class Step:
    name: str
    what: str
    budget_s: int          # seconds on one GPU (scaled on CPU)
    module: Optional[str]  # gpu_check.<module>; None: runs in the driver
    args: tuple = ()


STEPS: List[Step] = [
    Step('install', 'offline install of what this Python lacks, the plugin and its import hook', 90, None),
    Step('environment', 'machine, versions, registrations', 30, 'environment'),
    Step('parity', 'CUDA vs CPU float32 parity of every architecture (<= 1e-4 relative)', 60, 'parity'),
    Step('train_fp32', '50 iterations through train_pipeline, float32, saved, resumed to 75', 75, 'training',
         ('--precision', 'fp32')),
    Step('train_bf16', 'the same with use_amp: true, amp_bf16: true', 60, 'training', ('--precision', 'bf16')),
    Step('train_fp16', 'the same with use_amp: true, amp_bf16: false (GradScaler)', 60, 'training',
         ('--precision', 'fp16')),
    Step('torchrun', 'torchrun --nproc_per_node=1 ... --launcher pytorch (NCCL on a GPU)', 60, 'training',
         ('--launcher', 'torchrun')),
    Step('benchmark', 'tools/benchmark.py layer, model and memory tables, float32', 150, 'bench',
         ('--precision', 'fp32')),
    Step('benchmark_amp', 'tools/benchmark.py model and memory tables, bf16 autocast, profiles', 120, 'bench',
         ('--precision', 'bf16')),
]


# ---------------------------------------------------------------- install

def _pip(python: str, *args) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != 'BASICSR_EXT'}  # basicsr's setup.py: no CUDA extensions
    env['PIP_NO_INDEX'] = '1'  # setup_requires, if anything is missing, must fail rather than look for an index
    cmd = [python, '-m', 'pip', 'install', '--no-index', '--no-deps', '--no-build-isolation', '--no-cache-dir',
           '--disable-pip-version-check', *args]
    print('$ ' + ' '.join(cmd), flush=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True)


def wheel_file(dist: str, version: str, wheel_dir: str) -> Optional[str]:
    """The downloaded file of ``dist==version`` in ``wheel_dir`` (wheel or sdist), or None."""
    prefix = f'{dist.lower().replace("-", "_")}-{version}'
    names = sorted(os.listdir(wheel_dir)) if osp.isdir(wheel_dir) else []
    for name in names:
        rest = name.lower()[len(prefix):]
        if name.lower().startswith(prefix) and rest[:1] in ('-', '.') and name.endswith(('.whl', '.tar.gz')):
            return osp.join(wheel_dir, name)
    return None


def check_env(python: str, env: dict) -> subprocess.CompletedProcess:
    """A fresh interpreter imports the plugin, and plain ``import basicsr`` finds its names (the hook)."""
    code = ('import basicsr, mmengine, lmdb, hdf5storage\n'
            'from basicsr.utils.registry import ARCH_REGISTRY\n'
            'assert "GLMHARestormer" in ARCH_REGISTRY._obj_map, "import basicsr did not register the plugin (hook)"\n'
            'import glmha_plugin; print("plugin", glmha_plugin.__file__, "basicsr", basicsr.__version__)\n')
    return subprocess.run([python, '-c', code], env=env, capture_output=True, text=True, cwd=tempfile.gettempdir())


def install(python: str, wheel_dir: str, env: dict) -> dict:
    """Install, offline, what ``python`` lacks: :data:`WHEELS`, then this checkout (plugin and import hook)."""
    lines, status = [], P.PASS
    absent = [m for m in PRESENT if importlib.util.find_spec(m) is None]
    if absent:
        return {'status': P.FAIL, 'summary': f'missing and not carried: {", ".join(absent)}',
                'markdown': 'The check expects these on the machine already (see docs/gpu_check.md).\n'}
    missing = {m: spec for m, spec in WHEELS.items() if importlib.util.find_spec(m) is None}
    files, no_file = [], []
    for dist, version, _ in missing.values():
        path = wheel_file(dist, version, wheel_dir)
        (files.append(path) if path else no_file.append(f'{dist}=={version}'))
    if no_file:
        return {'status': P.FAIL, 'summary': f'missing, and not in {wheel_dir}: {", ".join(no_file)}',
                'markdown': 'Run `bash tools/gpu_wheels.sh` on a machine that reaches PyPI and carry `.gpu_wheels`.\n'}
    if files:
        proc = _pip(python, *files)
        lines.append(f'installed from {osp.relpath(wheel_dir, REPO)}: {", ".join(osp.basename(f) for f in files)}')
        if proc.returncode != 0:
            return {'status': P.FAIL, 'summary': f'pip install of {len(files)} files failed',
                    'markdown': P.fenced(proc.stdout + proc.stderr)}
    else:
        lines.append('nothing to install: ' + ', '.join(sorted(WHEELS)) + ' are importable')
    try:
        importlib.metadata.distribution('glmha-plugin')
        lines.append('glmha-plugin already installed here (this checkout runs first on PYTHONPATH)')
    except importlib.metadata.PackageNotFoundError:
        proc = _pip(python, REPO)
        lines.append('installed this checkout (pip install --no-deps --no-build-isolation .: plugin, entry points, '
                     'import hook)')
        if proc.returncode != 0:
            return {'status': P.FAIL, 'summary': 'pip install of the plugin failed',
                    'markdown': P.fenced(proc.stdout + proc.stderr)}
    proc = check_env(python, env)
    lines.append(f'fresh interpreter: {(proc.stdout or proc.stderr).strip().splitlines()[-1:]}')
    if proc.returncode != 0:
        status = P.FAIL
        lines.append(P.fenced(proc.stderr))
    summary = lines[0] if status == P.PASS else 'the plugin does not import after the install'
    return {'status': status, 'summary': summary,
            'markdown': ''.join(f'- {line}\n' for line in lines)}


# ---------------------------------------------------------------- running the steps

class Tee:
    """Write to the console and the log file."""

    def __init__(self, path: str):
        self.file = open(path, 'a', encoding='utf-8')

    def write(self, text: str):
        sys.stdout.write(text)
        sys.stdout.flush()
        self.file.write(text)
        self.file.flush()


def run_step_process(cmd: List[str], env: dict, timeout: float, tee: Tee) -> tuple:
    """Run ``cmd`` in its own process group, output to ``tee``; ``(exit status or None on timeout, seconds)``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors='replace', start_new_session=True)
    reader = threading.Thread(target=lambda: [tee.write(line) for line in proc.stdout], daemon=True)
    reader.start()
    try:
        code = proc.wait(timeout=max(timeout, 1))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        code = None
    reader.join(timeout=10)
    return code, time.perf_counter() - t0


def git_commit() -> str:
    try:
        out = subprocess.run(['git', '-C', REPO, 'log', '-1', '--format=%h %s'], capture_output=True, text=True)
        dirty = subprocess.run(['git', '-C', REPO, 'status', '--porcelain', '--untracked-files=no'],
                               capture_output=True, text=True).stdout.strip()
        return (out.stdout.strip()[:100] + (' (with uncommitted changes)' if dirty else '')) or 'unknown'
    except OSError:
        return 'unknown (no git here)'


def write_report(path: str, header: List[str], results: List[dict]) -> None:
    counts = {s: sum(r['status'] == s for r in results) for s in P.STATUSES}
    lines = header + ['', '## Summary', '',
                      '| # | step | what | status | seconds | limit s | result |', '|---:|---|---|---|---:|---:|---|']
    for i, r in enumerate(results, 1):
        status = r['status'] if r['status'] == P.PASS else f'**{r["status"]}**'
        lines.append(f'| {i} | {r["name"]} | {r["what"]} | {status} | {r["seconds"]:.1f} | {r["limit"]:.0f} | '
                     f'{r["summary"].replace("|", "/")} |')
    lines += ['', f'Total {sum(r["seconds"] for r in results):.0f} s; ' +
              ', '.join(f'{n} {s}' for s, n in counts.items() if n) + '.', '']
    for i, r in enumerate(results, 1):
        lines += [f'## {i}. {r["name"]}: {r["what"]}', '', f'Status: **{r["status"]}** ({r["seconds"]:.1f} s). '
                  f'{r["summary"]}', '', r['markdown'].rstrip(), '']
    with open(path, 'w', encoding='utf-8') as f:
        f.write('\n'.join(lines) + '\n')


def cuda_available(python: str) -> bool:
    proc = subprocess.run([python, '-c', 'import torch; print(torch.cuda.is_available())'], capture_output=True,
                          text=True)
    return proc.stdout.strip().endswith('True')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('outdir', nargs='?', help='folder for report.md, gpu_check.log and the plots')
    parser.add_argument('--quick', action='store_true', default=os.environ.get('GLMHA_GPU_CHECK_QUICK') == '1',
                        help='fewer iterations, smaller sizes (the CPU test; also GLMHA_GPU_CHECK_QUICK=1)')
    parser.add_argument('--steps', nargs='+', choices=[s.name for s in STEPS], help='only these steps')
    parser.add_argument('--work', help='scratch folder (default: a new temporary folder, kept)')
    parser.add_argument('--wheels', default=WHEEL_DIR, help='where tools/gpu_wheels.sh put the wheels')
    parser.add_argument('--deadline', type=float, default=None,
                        help=f'seconds for the whole check (default {GPU_BUDGET_S} with CUDA, none without)')
    parser.add_argument('--list-wheels', action='store_true', help='print what tools/gpu_wheels.sh downloads')
    args = parser.parse_args(argv)
    if args.list_wheels:
        for dist, version, kind in WHEELS.values():
            print(dist, version, kind)
        return 0
    if not args.outdir:
        parser.error('give OUTDIR, the folder for the report')
    os.makedirs(args.outdir, exist_ok=True)
    work = args.work or tempfile.mkdtemp(prefix='glmha_gpu_check_')
    os.makedirs(work, exist_ok=True)
    python = sys.executable
    env = dict(os.environ, PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([REPO, TOOLS] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    cuda = cuda_available(python)
    scale = 1 if cuda else 15
    deadline = args.deadline if args.deadline is not None else (GPU_BUDGET_S if cuda else 0)
    steps = [s for s in STEPS if not args.steps or s.name in args.steps]
    tee = Tee(osp.join(args.outdir, 'gpu_check.log'))
    report = osp.join(args.outdir, 'report.md')
    header = ['# GLMHA GPU check', '',
              f'- started {time.strftime("%Y-%m-%d %H:%M:%S %Z")} on {os.uname().nodename}; '
              f'{"CUDA" if cuda else "no CUDA device (CPU run)"}; mode {"quick" if args.quick else "full"}',
              f'- checkout: {git_commit()}',
              f'- time limits: {"whole check " + str(int(deadline)) + " s; " if deadline else ""}per step as below'
              f'{"" if cuda else " (15 x the GPU budget on CPU)"}',
              f'- scratch folder: {work}']
    started, results = time.perf_counter(), []
    for i, step in enumerate(steps, 1):
        left = deadline - (time.perf_counter() - started) if deadline else float('inf')
        limit = min(step.budget_s * scale, left)
        tee.write(f'\n===== [{i}/{len(steps)}] {step.name}: {step.what} (limit {limit:.0f} s) =====\n')
        t0 = time.perf_counter()
        if limit <= 1:
            result = {'status': P.FAIL, 'summary': f'not started: the {deadline:.0f} s of the whole check were used',
                      'markdown': ''}
        elif step.module is None:
            try:
                result = install(python, args.wheels, env)
            except Exception as exc:  # noqa: BLE001  recorded; the next step runs
                result = {'status': P.FAIL, 'summary': f'{type(exc).__name__}: {exc}', 'markdown': ''}
        else:
            out = osp.join(work, 'steps', step.name)
            shutil.rmtree(out, ignore_errors=True)
            cmd = [python, '-m', f'gpu_check.{step.module}', '--out', out, '--work', work, *step.args]
            code, _ = run_step_process(cmd + (['--quick'] if args.quick else []), env, limit, tee)
            got = P.read_result(out)
            if code is None:
                result = {'status': P.FAIL, 'summary': f'stopped after its {limit:.0f} s limit', 'markdown': ''}
            elif got is None:
                result = {'status': P.FAIL, 'summary': f'exited {code} without a result (see gpu_check.log)',
                          'markdown': ''}
            else:
                result = {'status': got.status, 'summary': got.summary, 'markdown': got.markdown}
            for name in sorted(os.listdir(out)) if osp.isdir(out) else []:
                if name.endswith('.png'):
                    shutil.copy(osp.join(out, name), osp.join(args.outdir, f'{step.name}_{name}'))
        result.update(name=step.name, what=step.what, seconds=time.perf_counter() - t0, limit=limit)
        results.append(result)
        write_report(report, header, results)
        tee.write(f'----- {step.name}: {result["status"]} in {result["seconds"]:.1f} s '
                  f'(total {time.perf_counter() - started:.0f} s): {result["summary"]}\n')
    tee.write('\n' + '\n'.join(f'{r["name"]:14s} {r["status"]:8s} {r["seconds"]:6.1f} s  {r["summary"][:150]}'
                               for r in results) + '\n')
    failed = [r['name'] for r in results if r['status'] == P.FAIL]
    tee.write(f'total {time.perf_counter() - started:.0f} s; report: {report}; '
              f'{"FAILED: " + ", ".join(failed) if failed else "no step failed"}\n')
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
