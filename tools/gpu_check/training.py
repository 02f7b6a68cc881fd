"""Steps ``train_fp32`` / ``train_bf16`` / ``train_fp16`` / ``torchrun``: training through basicsr's ``train_pipeline``.

``--precision fp32|bf16|fp16`` trains ``options/tiny/GPU_Check_GLMHA.yml``
(ImageCleanModel: AdamW, gradient clipping, mixup, progressive learning) for
50 iterations with checkpoints every 25, then continues it with
``--auto_resume`` to 75.  bf16 and fp16 set the options ``use_amp: true`` and
``amp_bf16: true|false`` (docs/gpu_training.md).  Checked:
both runs exit 0; every iteration's loss, the validation PSNR and the final
weights are finite; the checkpoints and training states exist; the second run
resumed from iteration 50; the network's convolutions ran in the requested
dtype (seen by :mod:`.probe`, in training and in validation).

``--launcher torchrun`` runs ``torchrun --nproc_per_node=1 ... --launcher
pytorch`` for 20 iterations (one loader worker, spawned as basicsr's
distributed init asks): NCCL on a GPU, gloo on CPU.  ``--quick`` (the CPU
test): 4 iterations, resumed to 6; torchrun 4 with the loader in the process.
"""
import collections
import json
import math
import os
import os.path as osp
import re
import socket
import subprocess
import sys
import time

import yaml

from . import FAIL, PASS, StepResult, fenced, step_main, step_parser

PACKAGE = osp.dirname(osp.dirname(osp.abspath(__file__)))
BASE_OPTIONS = osp.join(osp.dirname(PACKAGE), 'options', 'tiny', 'GPU_Check_GLMHA.yml')
# precision -> (top-level AMP options of docs/gpu_training.md, the dtype the convolutions must then run in)
PRECISIONS = {'fp32': ({}, 'torch.float32'),
              'bf16': ({'use_amp': True, 'amp_bf16': True}, 'torch.bfloat16'),
              'fp16': ({'use_amp': True, 'amp_bf16': False}, 'torch.float16')}
# (first run's total_iter, checkpoint interval, resumed run's total_iter); torchrun's iterations
FULL, QUICK = (50, 25, 75), (4, 2, 6)
TORCHRUN_ITERS = {False: 20, True: 4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def ensure_data(work: str) -> str:
    """The demo's photo pairs (test images 64 x 90) under ``work/data/datasets``, made once per check."""
    root = osp.join(work, 'data')
    if not osp.isdir(osp.join(root, 'datasets', 'demo_rain', 'test', 'input')):
        from glmha_plugin.demo.data import make_rain_pairs
        make_rain_pairs(osp.join(root, 'datasets', 'demo_rain'), test_size=(64, 90))
    return osp.join(root, 'datasets')


def write_options(path: str, name: str, precision: str, total_iter: int, save_freq: int, workers: int) -> dict:
    with open(BASE_OPTIONS, encoding='utf-8') as f:
        opt = yaml.safe_load(f)
    opt.update(PRECISIONS[precision][0], name=name)
    opt['train']['total_iter'] = total_iter
    opt['logger'].update(save_checkpoint_freq=save_freq, print_freq=min(10, total_iter))
    opt['datasets']['train'].update(num_worker_per_gpu=workers, persistent_workers=workers > 0)
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return opt


def run_logged(cmd, cwd: str, keep: int = 60) -> tuple:
    """Run ``cmd``, its output passed on as it comes; ``(exit status, seconds, its last ``keep`` lines)``."""
    print('$ ' + ' '.join(cmd), flush=True)
    tools = osp.dirname(osp.dirname(osp.abspath(__file__)))   # so that `-m gpu_check.probe` is found
    env = dict(os.environ, PYTHONUNBUFFERED='1',
               PYTHONPATH=os.pathsep.join([tools] + [p for p in [os.environ.get('PYTHONPATH')] if p]))
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors='replace')
    tail = collections.deque(maxlen=keep)
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
        tail.append(line)
    return proc.wait(), time.perf_counter() - t0, ''.join(tail)


def train_log(exp_dir: str) -> str:
    """The newest ``train_*.log`` of the experiment ('' when none)."""
    logs = sorted(f for f in os.listdir(exp_dir) if f.startswith('train_') and f.endswith('.log')) \
        if osp.isdir(exp_dir) else []
    if not logs:
        return ''
    with open(osp.join(exp_dir, logs[-1]), encoding='utf-8') as f:
        return f.read()


def read_probe(probe_dir: str, rank: int = 0):
    try:
        with open(osp.join(probe_dir, f'rank{rank}.json'), encoding='utf-8') as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def state_keys(path: str) -> str:
    """The keys of a training state, for the report (the GradScaler's state belongs there with fp16)."""
    import torch
    try:
        return f'training state keys: {", ".join(sorted(torch.load(path, map_location="cpu", weights_only=True)))}'
    except Exception as exc:  # noqa: BLE001  compat's resume reads states with weights_only=True too: worth saying
        return f'the training state {osp.basename(path)} does not load with weights_only=True: {exc}'


def validation_psnr(log: str) -> list:
    """The PSNR of every validation in a basicsr training log."""
    return [float(v) for v in re.findall(r'# psnr: (\S+)', log)]


def check_run(code: int, probe, log: str, first_iter: int, last_iter: int, dtype: str, on_cpu: bool) -> list:
    """What is wrong with one training run (empty when nothing is)."""
    if code != 0:
        return [f'exit status {code}']
    if probe is None:
        return ['the probe wrote no record']
    problems = []
    iters = [it for it, _ in probe['losses']]
    if iters[:1] != [first_iter] or iters[-1:] != [last_iter]:
        problems.append(f'iterations {iters[:1]}..{iters[-1:]}, expected {first_iter}..{last_iter}')
    if not probe['losses_finite']:
        bad = [it for it, losses in probe['losses'] if not all(math.isfinite(v) for v in losses.values())]
        problems.append(f'non-finite loss at iterations {bad[:10]}')
    if not probe['weights_finite']:
        problems.append('non-finite weights at the end')
    psnr = validation_psnr(log)
    if not psnr or not all(math.isfinite(v) for v in psnr):
        problems.append(f'validation PSNR {psnr or "missing"}')
    seen = probe['conv_dtypes']
    expected = ran_dtype(dtype, on_cpu)
    for phase in ('train', 'eval'):
        if not seen.get(phase) or set(seen[phase]) != {expected}:
            problems.append(f'convolutions in {phase} ran in {seen.get(phase)}, expected {expected}')
    return problems


def ran_dtype(dtype: str, on_cpu: bool) -> str:
    """The dtype the convolutions must run in: the requested one, except float16 on a CPU, where ``use_amp``
    autocasts to bfloat16 (docs/gpu_training.md)."""
    return 'torch.bfloat16' if on_cpu and dtype == 'torch.float16' else dtype


def _row(label: str, cmd_note: str, code: int, seconds: float, probe, log: str, problems: list) -> str:
    losses = (probe or {}).get('losses') or []
    first = next(iter(losses[0][1].values()), float('nan')) if losses else float('nan')
    last = next(iter(losses[-1][1].values()), float('nan')) if losses else float('nan')
    dtypes = (probe or {}).get('conv_dtypes') or {}
    psnr = validation_psnr(log)
    return (f'| {label} | {cmd_note} | {seconds:.1f} | {len(losses)} | {first:.4f} | {last:.4f} | '
            f'{psnr[-1] if psnr else "-"} | '
            f'{"/".join(dtypes.get("train", [])) or "-"} / {"/".join(dtypes.get("eval", [])) or "-"} | '
            f'{"ok" if not problems else "**" + "; ".join(problems) + "**"} |')


TABLE_HEAD = ('| run | how | seconds | iterations | first loss | last loss | validation PSNR | '
              'conv dtype (train / validation) | result |\n|---|---|---:|---:|---:|---:|---:|---|---|\n')


def train_and_resume(args, precision: str) -> StepResult:
    import torch
    options, dtype = PRECISIONS[precision]
    first_total, save_freq, resumed_total = QUICK if args.quick else FULL
    cwd = osp.join(args.work, f'train_{precision}')
    os.makedirs(cwd, exist_ok=True)
    if not osp.exists(osp.join(cwd, 'datasets')):
        os.symlink(ensure_data(args.work), osp.join(cwd, 'datasets'))
    name = f'GPU_Check_{precision}'
    exp_dir = osp.join(cwd, 'experiments', name)
    yml = osp.join(cwd, f'{name}.yml')
    on_cpu = not torch.cuda.is_available()
    rows, problems_all, notes = [], [], []
    for label, total, extra, first in (('first', first_total, [], 1),
                                       ('resumed', resumed_total, ['--auto_resume'], first_total + 1)):
        write_options(yml, name, precision, total, save_freq, workers=2)
        probe_dir = osp.join(args.out, f'probe_{label}')
        code, seconds, output = run_logged([sys.executable, '-m', 'gpu_check.probe', '--probe-out',
                                            probe_dir, '-opt', yml, *extra], cwd)
        probe, log = read_probe(probe_dir), train_log(exp_dir)
        problems = check_run(code, probe, log, first, total, dtype, on_cpu)
        if label == 'first':
            wanted = [osp.join('training_states', f'{it}.state') for it in range(save_freq, total + 1, save_freq)]
            wanted += [osp.join('models', f'net_g_{total}.pth'), osp.join('models', 'net_g_latest.pth')]
            problems += [f'{w} missing' for w in wanted if not osp.isfile(osp.join(exp_dir, w))]
        else:
            if code == 0 and ('Resuming training from epoch' not in log or f'iter: {first_total}.' not in log):
                problems.append(f'the log does not say it resumed from iteration {first_total}')
            state = osp.join(exp_dir, 'training_states', f'{total}.state')
            if osp.isfile(state):
                notes.append(state_keys(state))
            else:
                problems.append(f'training_states/{total}.state missing')
        rows.append(_row(label, f'{first}..{total}{" --auto_resume" if extra else ""}', code, seconds, probe, log,
                         problems))
        problems_all += [f'{label}: {p}' for p in problems]
        if code != 0:
            notes.append(f'{label} run, end of its output:\n\n' + fenced(output, 3000))
    md = (f'`{osp.relpath(BASE_OPTIONS, osp.dirname(PACKAGE))}` with {options or "no precision options"}, '
          f'checkpoints every {save_freq} iterations.\n\n' + TABLE_HEAD + '\n'.join(rows) + '\n\n'
          + ''.join(f'- {n}\n' for n in notes))
    if problems_all:
        return StepResult(FAIL, '; '.join(problems_all)[:400], md)
    ran = ran_dtype(dtype, on_cpu).split('.')[-1]
    cpu_note = ' (float16 requested: bfloat16 on a CPU)' if ran != dtype.split('.')[-1] else ''
    return StepResult(PASS, f'{resumed_total} iterations ({first_total}, then resumed), finite, convolutions in '
                            f'{ran}{cpu_note}', md)


def torchrun(args) -> StepResult:
    import torch
    iters = TORCHRUN_ITERS[args.quick]
    cwd = osp.join(args.work, 'torchrun')
    os.makedirs(cwd, exist_ok=True)
    if not osp.exists(osp.join(cwd, 'datasets')):
        os.symlink(ensure_data(args.work), osp.join(cwd, 'datasets'))
    name, probe_dir = 'GPU_Check_torchrun', osp.join(args.out, 'probe')
    yml = osp.join(cwd, f'{name}.yml')
    write_options(yml, name, 'fp32', iters, iters, workers=0 if args.quick else 1)
    code, seconds, output = run_logged([sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=1',
                                        '--master_addr=127.0.0.1', f'--master_port={free_port()}',
                                        '-m', 'gpu_check.probe', '--probe-out', probe_dir, '-opt',
                                        yml, '--launcher', 'pytorch'], cwd)
    probe, log = read_probe(probe_dir), train_log(osp.join(cwd, 'experiments', name))
    problems = check_run(code, probe, log, 1, iters, 'torch.float32', on_cpu=not torch.cuda.is_available())
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if probe is not None:
        if probe['backend'] != backend or probe['world_size'] != 1:
            problems.append(f'backend {probe["backend"]}, world size {probe["world_size"]}; expected {backend}, 1')
        if not probe['device'].startswith('cuda' if backend == 'nccl' else 'cpu'):
            problems.append(f'the model is on {probe["device"]}')
    md = (f'`torchrun --nproc_per_node=1 -m gpu_check.probe ... --launcher pytorch`, {iters} iterations, '
          f'{"no" if args.quick else "one spawned"} DataLoader worker; backend {(probe or {}).get("backend")}, '
          f'model on {(probe or {}).get("device")}.\n\n' + TABLE_HEAD
          + _row('torchrun', f'1..{iters}', code, seconds, probe, log, problems) + '\n')
    if code != 0:
        md += '\nEnd of its output:\n\n' + fenced(output, 3000)
    return StepResult(FAIL if problems else PASS, '; '.join(problems)[:400] if problems else
                      f'{backend}, world size 1, {iters} iterations on {probe["device"]}, finite', md)


def run(args) -> StepResult:
    return torchrun(args) if args.launcher == 'torchrun' else train_and_resume(args, args.precision)


def parser():
    p = step_parser(__doc__.split('\n\n')[0])
    p.add_argument('--precision', default='fp32', choices=sorted(PRECISIONS))
    p.add_argument('--launcher', default='none', choices=['none', 'torchrun'])
    return p


if __name__ == '__main__':
    sys.exit(step_main(run, parser()))
