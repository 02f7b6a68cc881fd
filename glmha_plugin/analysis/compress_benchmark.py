"""Benchmark of ``glmha compress`` on the demo photos (a measurement script, not a test).

``python -m glmha_plugin.analysis.compress_benchmark --teacher-iters T`` in a working folder:

1. trains the demo's tiny CSA Restormer (``options/tiny/Demo_Deraining_Restormer.yml``, its recipe stretched to
   T iterations) on the rainy demo photos, with targets: the teacher;
2. compresses it with ``glmha compress`` at each ``--budgets`` fraction of its MACs (at 3x256x256): plan, SVD
   warm start, then 0.1 T distillation iterations on the training inputs alone (no targets); a budget below
   the smallest reachable one is reported with the command's refusal, and the smallest reachable budget is
   run instead;
3. beside them: GLMHA (rank ratio 0.5, calibration) trained from scratch for T iterations with targets (the
   demo's GLMHA recipe), and the teacher swapped to GLMHA at rank ratio 0.5 with the SVD warm start and
   fine-tuned with targets for 0.1 T iterations (the compress distillation's learning rate and warm-up);
4. scores every network on the held-out demo test photos (never trained on) against the targets and against
   the teacher's output, and writes ``compress_benchmark.md`` / ``.json``.

Every training run goes through ``python -m glmha_plugin.commands.train`` (basicsr's ``train_pipeline``); a run whose
weights exist is reused, so an interrupted benchmark continues where it stopped.
"""
import argparse
import copy
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Dict, List, Optional

import torch
import yaml

DEFAULT_BUDGETS = (0.85, 0.75, 0.65)
MACS_AT = (256, 256)


def _say(text: str) -> None:
    print(f'[compress-benchmark] {text}', flush=True)


def _options(name: str) -> dict:
    from ..glue.option_files import load_options, shipped_file
    return load_options(shipped_file(name))


def _train(opt: dict, workdir: str, timings: Dict[str, float]) -> str:
    """Train ``opt`` (resuming) through glmha_plugin.commands.train in ``workdir``; returns its latest weights."""
    weights = osp.join(workdir, 'experiments', opt['name'], 'models', 'net_g_latest.pth')
    if osp.isfile(weights):
        _say(f'{opt["name"]}: reusing {weights}')
        return weights
    path = osp.join(workdir, 'options', f'{opt["name"]}.yml')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    _say(f'training {opt["name"]} for {opt["train"]["total_iter"]} iterations')
    start = time.time()
    subprocess.run([sys.executable, '-m', 'glmha_plugin.commands.train', '-opt', path, '--auto_resume'], cwd=workdir,
                   check=True)
    timings[opt['name']] = time.time() - start
    return weights


def _recipe(template: str, name: str, iters: int, network_g: dict) -> dict:
    """The demo recipe ``template`` renamed, stretched to ``iters`` iterations, without validation."""
    opt = _options(template)
    opt['name'] = name
    opt['network_g'] = network_g
    opt['train']['total_iter'] = iters
    opt['train']['scheduler']['periods'] = [iters]
    opt['datasets'].pop('val', None)
    opt.pop('val', None)
    opt['logger'].update(print_freq=max(1, iters // 20), save_checkpoint_freq=max(1, iters // 4))
    for key in ('dataroot_gt', 'dataroot_lq'):
        opt['datasets']['train'][key] = osp.abspath(opt['datasets']['train'][key])
    return opt


def _compress(workdir: str, weights: str, network_g: dict, budget: float, iters: int, args) -> dict:
    from ..compress.command import main as compress
    from ..demo.data import DATA_DIR
    out = osp.join(workdir, 'students', f'budget_{budget:g}' + ('_refit' if args.refit else ''))
    report = osp.join(out, 'report.json')
    if not osp.isfile(report):
        data = osp.join(workdir, DATA_DIR)
        argv = ['--network', network_g['type'], '--options', json.dumps({k: v for k, v in network_g.items()
                                                                          if k != 'type'}),
                '--weights', weights, '--images', osp.join(data, 'train', 'input'),
                '--val-lq', osp.join(data, 'test', 'input'), '--val-gt', osp.join(data, 'test', 'target'),
                '--budget', str(budget), '--macs-at', 'x'.join(map(str, MACS_AT)), '--iters', str(iters),
                '--crop', str(args.crop), '--batch', str(args.batch), '--lr', str(args.lr), '--workers', '2',
                '--augment', 'hflip',   # as the teacher's recipe: flips, no rotations (the rain falls from above)
                '--seed', str(args.seed), '--out', out]
        if args.refit:
            argv.append('--refit')
        if osp.isdir(out):
            argv.append('--resume')
        _say('glmha compress ' + ' '.join(argv))
        if compress(argv) != 0:
            raise SystemExit(f'compress at budget {budget} failed')
    with open(report, encoding='utf-8') as f:
        return json.load(f)


def _count(net: torch.nn.Module):
    from .complexity import count
    c = count(net.eval(), torch.rand(1, 3, *MACS_AT))
    return c.macs, c.params


def run(args) -> dict:
    from basicsr.archs import build_network

    from ..archs import swap_arch  # noqa: F401  (GLMHASwap registered)
    from ..compress import planning
    from ..compress.pipeline import build_student, evaluate
    from ..demo.data import DATA_DIR, DEMO_CSA_TRAIN_OPT, DEMO_TRAIN_OPT, make_rain_pairs
    from ..swap import swap_attention

    workdir = osp.abspath(args.workdir)
    os.makedirs(workdir, exist_ok=True)
    started = time.time()
    timings: Dict[str, float] = {}
    data = osp.join(workdir, DATA_DIR)
    if not osp.isdir(osp.join(data, 'test', 'target')):
        _say(f'writing the demo photos to {data}')
        make_rain_pairs(data)
    os.chdir(workdir)   # the demo recipes name the data relative to the working folder
    T, short = args.teacher_iters, max(1, round(0.1 * args.teacher_iters))
    teacher_opt = _recipe(DEMO_CSA_TRAIN_OPT, 'bench_teacher_CSA', T, _options(DEMO_CSA_TRAIN_OPT)['network_g'])
    teacher_block = teacher_opt['network_g']
    teacher_weights = _train(teacher_opt, workdir, timings)
    glmha_block = _options(DEMO_TRAIN_OPT)['network_g']
    scratch_weights = _train(_recipe(DEMO_TRAIN_OPT, 'bench_GLMHA_scratch', T, glmha_block), workdir, timings)

    # GLMHA r = 0.5 from the teacher (SVD warm start), fine-tuned with targets for 0.1 T iterations
    teacher = build_network(copy.deepcopy(teacher_block))
    teacher.load_state_dict(torch.load(teacher_weights, map_location='cpu', weights_only=True)['params'])
    teacher.eval()
    swap_block = {'type': 'GLMHASwap', 'base': teacher_block, 'rank_ratio': 0.5, 'guidance': 'calibration',
                  'warm_start': False}
    warm_path = osp.join(workdir, 'glmha_r0.5_warm_start.pth')
    if not osp.isfile(warm_path):
        warm = copy.deepcopy(teacher)
        swap_attention(warm, rank_ratio=0.5, guidance='calibration')
        torch.save({'params': warm.state_dict()}, warm_path)
    tune = _recipe(DEMO_CSA_TRAIN_OPT, 'bench_GLMHA_warm_finetune', short, swap_block)
    tune['path']['pretrain_network_g'] = warm_path
    tune['train']['optim_g']['lr'] = args.lr
    tune['train']['scheduler']['eta_mins'] = [args.lr / 100]
    tune['train']['warmup_iter'] = max(1, short // 10)
    tune_weights = _train(tune, workdir, timings)

    # students
    _, layers = planning.swappable_layers(teacher)
    teacher_macs = planning.measure_macs(teacher, layers, (1, 3, *MACS_AT), 'calibration', 8)
    floor = planning.smallest_budget(teacher_macs, layers)
    budgets: List[float] = []
    refused: Dict[float, str] = {}
    for b in args.budgets:
        try:
            planning.check_budget(b, teacher_macs, layers, (1, 3, *MACS_AT))
            budgets.append(b)
        except planning.CompressError as exc:
            refused[b] = str(exc)
            _say(f'budget {b}: refused: {exc}')
    if refused:
        budgets.append(float(f'{floor + 0.0005:.3f}'))
    students = {}
    for b in budgets:
        start = time.time()
        students[b] = _compress(workdir, teacher_weights, teacher_block, b, short, args)
        timings[f'compress budget {b:g}'] = time.time() - start

    # scores on the held-out test photos
    from ..compress.images import checked_folder
    from ..data.pairing import paired_paths
    pairs = [{'lq': p['lq_path'], 'gt': p['gt_path']}
             for p in paired_paths(osp.join(data, 'test', 'input'), osp.join(data, 'test', 'target'))]
    checked_folder(osp.join(data, 'test', 'input'), 'test inputs')
    nets = {'teacher': teacher}
    scratch = build_network(copy.deepcopy(glmha_block))
    scratch.load_state_dict(torch.load(scratch_weights, map_location='cpu', weights_only=True)['params'])
    nets['scratch'] = scratch.eval()
    nets['finetune'] = build_student(swap_block, tune_weights)
    for b in students:
        folder = osp.join(workdir, 'students', f'budget_{b:g}' + ('_refit' if args.refit else ''))
        with open(osp.join(folder, 'network_g.yml'), encoding='utf-8') as f:
            block = yaml.safe_load(f)['network_g']
        nets[f'warm {b:g}'] = build_student(block, osp.join(folder, 'warm_start.pth'))
        nets[f'student {b:g}'] = build_student(block, osp.join(folder, 'student.pth'))
    scores = evaluate(nets, pairs, 0, torch.device('cpu'))
    inputs = _input_scores(pairs)
    sizes = {name: _count(net) for name, net in nets.items()}
    rows = _rows(T, short, scores, sizes, refused, students, inputs)
    result = {'teacher_iters': T, 'short_iters': short, 'budgets': list(args.budgets), 'floor': floor,
              'refused': {str(k): v for k, v in refused.items()}, 'rows': rows, 'timings_s': timings,
              'seconds': time.time() - started, 'held_out_images': [osp.basename(p['lq']) for p in pairs],
              'command': 'python -m glmha_plugin.analysis.compress_benchmark ' + ' '.join(args.argv),
              'students': {str(b): {'ranks': r['ranks'], 'plans_at_this_budget': r['plans_at_this_budget'],
                                    'curve': r['curve']} for b, r in students.items()}}
    with open(osp.join(workdir, 'compress_benchmark.json'), 'w', encoding='utf-8') as f:
        json.dump(result, f, indent=1)
    text = markdown(result)
    with open(osp.join(workdir, 'compress_benchmark.md'), 'w', encoding='utf-8') as f:
        f.write(text)
    print(text)
    return result


def _input_scores(pairs) -> dict:
    from basicsr.metrics import calculate_psnr, calculate_ssim

    from ..compress.images import load
    psnr = ssim = 0.0
    for p in pairs:
        lq, gt = (load(p[k]).squeeze(0).permute(1, 2, 0).double().numpy() * 255 for k in ('lq', 'gt'))
        psnr += calculate_psnr(lq, gt, 0)
        ssim += calculate_ssim(lq, gt, 0)
    return {'psnr': psnr / len(pairs), 'ssim': ssim / len(pairs)}


def _rows(T, short, scores, sizes, refused, students, inputs) -> List[dict]:
    t_macs, t_params = sizes['teacher']

    def row(label, name, iters, targets):
        s = scores[name]
        macs, params = sizes[name]
        return {'variant': label, 'iterations': iters, 'targets': targets, 'macs_ratio': macs / t_macs,
                'params_ratio': params / t_params, 'psnr': s['psnr'], 'ssim': s['ssim'],
                'delta_psnr': s['psnr'] - scores['teacher']['psnr'], 'psnr_vs_teacher': s.get('psnr_teacher')}

    rows = [{'variant': 'rainy input', 'iterations': '-', 'targets': '-', 'macs_ratio': None, 'params_ratio': None,
             'psnr': inputs['psnr'], 'ssim': inputs['ssim'], 'delta_psnr': inputs['psnr'] - scores['teacher']['psnr'],
             'psnr_vs_teacher': None},
            row('teacher: CSA Restormer', 'teacher', f'T = {T}', 'yes')]
    for b in sorted(students, reverse=True):
        rows.append(row(f'budget {b:g}: warm start only', f'warm {b:g}', '0', 'no'))
        rows.append(row(f'budget {b:g}: distilled', f'student {b:g}', f'0.1 T = {short}', 'no'))
    for b, why in refused.items():
        rows.append({'variant': f'budget {b:g}: refused', 'note': why})
    rows.append(row('GLMHA r=0.5 from scratch', 'scratch', f'T = {T}', 'yes'))
    rows.append(row('GLMHA r=0.5 warm start + fine-tuning', 'finetune', f'0.1 T = {short}', 'yes'))
    return rows


def markdown(r: dict) -> str:
    def f(v, spec):
        return '-' if v is None else format(v, spec)
    lines = [f'Held-out demo test photos: {", ".join(r["held_out_images"])} (RGB PSNR/SSIM by basicsr on the float '
             f'outputs, no border crop). MACs at 3x{MACS_AT[0]}x{MACS_AT[1]} by the complexity report\'s counter. '
             f'{r["seconds"] / 60:.1f} min in all.', '',
             '| variant | iterations | targets | MACs / teacher | params / teacher | PSNR (dB) | SSIM | ΔPSNR vs '
             'teacher | PSNR vs teacher output |', '|---|---|---|---:|---:|---:|---:|---:|---:|']
    notes = []
    for row in r['rows']:
        if 'note' in row:
            notes.append(f'- {row["variant"]}: {row["note"]}')
            continue
        lines.append(f'| {row["variant"]} | {row["iterations"]} | {row["targets"]} | {f(row["macs_ratio"], ".3f")} | '
                     f'{f(row["params_ratio"], ".3f")} | {row["psnr"]:.2f} | {row["ssim"]:.4f} | '
                     f'{row["delta_psnr"]:+.2f} | {f(row["psnr_vs_teacher"], ".2f")} |')
    return '\n'.join(lines + [''] + notes) + '\n'


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    p = argparse.ArgumentParser(prog='python -m glmha_plugin.analysis.compress_benchmark', description=__doc__.split(
        '\n\n')[0])
    p.add_argument('--teacher-iters', type=int, default=800, help='T: the teacher\'s iterations (default 800)')
    p.add_argument('--budgets', type=float, nargs='+', default=list(DEFAULT_BUDGETS))
    p.add_argument('--lr', type=float, default=5e-4, help='distillation and fine-tuning learning rate (default 5e-4)')
    p.add_argument('--crop', type=int, default=64)
    p.add_argument('--batch', type=int, default=4)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--refit', action='store_true', help='compress with --refit (the warm start\'s output projections '
                   'refit by least squares; students in students/budget_B_refit)')
    p.add_argument('--workdir', default='compress_benchmark')
    p.add_argument('--threads', type=int, help='CPU threads of every process (OMP_NUM_THREADS; on a shared 2-core '
                   'machine 1 was 5x faster than 2)')
    args = p.parse_args(argv)
    args.argv = argv
    if args.threads:
        os.environ['OMP_NUM_THREADS'] = str(args.threads)
        torch.set_num_threads(args.threads)
    run(args)
    return 0


if __name__ == '__main__':
    sys.exit(main())
