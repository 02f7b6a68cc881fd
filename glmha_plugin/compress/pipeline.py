"""``glmha compress``: a trained channel-attention network -> a cheaper GLMHA network, without its targets.

Steps (each one's result is kept in ``--out``, so ``--resume`` continues where a run stopped):

1. check everything (network and weights, images, attention layers, the budget) before writing anything;
2. plan the ranks per layer (:mod:`.planning`) on crops of the training images -> ``plan.json``;
3. swap the attention with the SVD warm start (with ``--refit``: then refit the output projections by least
   squares, :mod:`.refit`) -> ``warm_start.pth``, ``network_g.yml``, ``train.yml``;
4. distil through basicsr's own ``train_pipeline`` (``python -m glmha_plugin.commands.train -opt train.yml``, model
   ``DistillModel``, data ``UnpairedImageDataset``), with a progress bar -> ``experiments/compress/``;
5. evaluate the warm start and the distilled student on held-out images against the teacher (and the
   targets when known) -> ``student.pth``, ``report.json``, ``report.md``, ``report.png``.
"""
import copy
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
from typing import Dict, List, Optional

import torch
import yaml

from ..swap import swap_attention
from . import images as imgs
from . import planning
from .network import CompressError, NetworkSource, network_from_args, run_network

MARKER = 'compress.json'
EXPERIMENT = 'compress'
# What a run writes into --out (the only entries --overwrite removes).
OUTPUTS = (MARKER, 'plan.json', 'warm_start.pth', 'network_g.yml', 'train.yml', 'student.pth', 'report.json',
           'report.md', 'report.png', 'refit.json', 'distill.log', 'images_train.txt', 'images_heldout.txt',
           'experiments', 'tb_logger', 'results')
# --augment: the training crops' flips and rotations, as dataset options.
AUGMENTS = {'dihedral': {'geometric_augs': True}, 'hflip': {'use_hflip': True}, 'none': {}}
# Arguments that must match when a run is resumed.
RESUME_KEYS = ('network', 'options', 'opt', 'weights', 'param_key', 'images', 'val_lq', 'val_gt', 'holdout',
               'budget', 'energy', 'macs_at', 'guidance', 'gamma', 'candidates', 'plan_crops', 'iters', 'crop',
               'batch', 'lr', 'augment', 'feature_weight', 'val_freq', 'window_size', 'seed', 'strict', 'refit',
               'refit_crops')
# Settings added later: a run recorded without them was made with these values.
RESUME_DEFAULTS = {'refit': False, 'refit_crops': 32}
ITER_LINE = re.compile(r'\[epoch:\s*\d+, iter:\s*([\d,]+), lr:')
VAL_LINE = re.compile(r'Distillation validation (\{.*\})')


def say(text: str) -> None:
    print(f'[compress] {text}', flush=True)


def _tqdm(total, desc, unit):
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit=unit, dynamic_ncols=True)


# ------------------------------------------------------------------------------------------- the --out folder


def out_state(out: str, resume: bool, overwrite: bool) -> str:
    """'new', 'resume' or 'overwrite' for ``out``; refuses a folder with an earlier run (unless asked) or with
    files that are not a compress run."""
    entries = sorted(os.listdir(out)) if osp.isdir(out) else []
    if osp.exists(out) and not osp.isdir(out):
        raise CompressError(f'--out {out!r} is a file; give a folder')
    if not entries:
        if resume:
            raise CompressError(f'--resume: {out!r} holds no earlier run to continue; leave out --resume')
        return 'new'
    if MARKER not in entries:
        raise CompressError(f'--out {out!r} holds files that are not a compress run ({", ".join(entries[:5])}); '
                            f'give a new or empty folder')
    if resume and overwrite:
        raise CompressError('give --resume (continue the run in --out) or --overwrite (replace it), not both')
    if resume:
        return 'resume'
    if overwrite:
        foreign = [e for e in entries if e not in OUTPUTS]
        if foreign:
            raise CompressError(f'--overwrite: {out!r} also holds files compress did not write '
                                f'({", ".join(foreign[:5])}); move them away or give another --out')
        return 'overwrite'
    raise CompressError(f'--out {out!r} holds an earlier compress run; pass --resume to continue it or --overwrite '
                        f'to replace it (or give another --out)')


def _settings(args) -> dict:
    values = {k: getattr(args, k) for k in RESUME_KEYS}
    for k in ('weights', 'images', 'val_lq', 'val_gt', 'opt'):
        if values[k]:
            values[k] = osp.abspath(values[k])
    return json.loads(json.dumps(values))   # as saved (tuples become lists)


def check_resumable(out: str, args) -> None:
    with open(osp.join(out, MARKER), encoding='utf-8') as f:
        saved = json.load(f).get('settings', {})
    now = _settings(args)
    differ = [f'{k} {saved.get(k, RESUME_DEFAULTS.get(k))!r} -> {now[k]!r}' for k in RESUME_KEYS
              if saved.get(k, RESUME_DEFAULTS.get(k)) != now[k]]
    if differ:
        raise CompressError(f'--resume: the run in {out!r} was made with other settings ({"; ".join(differ[:4])}); '
                            f'resume with the same arguments, or pass --overwrite to start again')


def clear_run(out: str) -> None:
    for entry in os.listdir(out):
        path = osp.join(out, entry)
        if entry in OUTPUTS:
            shutil.rmtree(path) if osp.isdir(path) else os.remove(path)


# ------------------------------------------------------------------------------------------- checks


class Inputs:
    """Everything checked before anything is written."""

    def __init__(self, args):
        self.args = args
        self.device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
        self.source: NetworkSource = network_from_args(args)
        if self.source.in_channels != 3:
            raise CompressError(f'the network takes {self.source.in_channels} input channels; compress reads RGB '
                                f'images (3 channels)')
        sizes = imgs.checked_folder(args.images, '--images', args.crop)
        if args.val_gt and not args.val_lq:
            raise CompressError('--val-gt needs --val-lq (the validation inputs)')
        if args.val_lq:
            self.train_paths, self.heldout_paths = sorted(sizes), []
            self.val_sizes = imgs.checked_folder(args.val_lq, '--val-lq')
            self.val_pairs = None
            if args.val_gt:
                from ..data.pairing import paired_paths
                imgs.checked_folder(args.val_gt, '--val-gt')
                try:
                    self.val_pairs = paired_paths(args.val_lq, args.val_gt)
                except (FileNotFoundError, ValueError) as exc:
                    raise CompressError(f'--val-lq / --val-gt: {exc}') from None
        else:
            self.train_paths, self.heldout_paths = imgs.split_held_out(list(sizes), args.holdout)
            self.val_pairs = None
        self.replica, self.layers = planning.swappable_layers(self.source.module, args.strict)
        probe = imgs.random_crops(self.train_paths, 1, args.crop, args.seed)
        with torch.no_grad():
            try:
                out = run_network(self.source.module, probe)
            except CompressError:
                raise
            except Exception as exc:  # noqa: BLE001 (the user's network)
                raise CompressError(f'the teacher does not run on a 1x3x{args.crop}x{args.crop} crop of the images '
                                    f'({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ""})') from None
        self.scale = out.shape[-1] // probe.shape[-1]
        self.shape = (1, 3, *args.macs_at)
        self.teacher_macs = planning.measure_macs(self.source.module, self.layers, self.shape, args.guidance,
                                                  args.gamma, args.strict)
        self.teacher_params = sum(p.numel() for p in self.source.module.parameters())
        if args.budget is not None:
            planning.check_budget(args.budget, self.teacher_macs, self.layers, self.shape)

    def evaluation_pairs(self) -> List[dict]:
        """[{'lq': path, 'gt': path or None}] of the held-out images."""
        if self.val_pairs is not None:
            return [{'lq': p['lq_path'], 'gt': p['gt_path']} for p in self.val_pairs]
        if self.args.val_lq:
            return [{'lq': p, 'gt': None} for p in sorted(self.val_sizes)]
        return [{'lq': p, 'gt': None} for p in self.heldout_paths]


# ------------------------------------------------------------------------------------------- planning


def make_plan(inp: Inputs, out: str) -> dict:
    args = inp.args
    net = inp.source.module
    crops = imgs.random_crops(inp.train_paths, args.plan_crops, args.crop, args.seed)
    layers = inp.layers
    total = sum(len(planning.candidate_ranks(layer.channels, layer.heads, args.candidates)) for layer in layers)
    started = time.time()
    say(f'measuring {len(layers)} attention layer(s) x their candidate ranks ({total} forward passes) on '
        f'{len(crops)} crops of {args.crop}x{args.crop}')
    with _tqdm(total, 'plan', 'pass') as bar:
        planning.layer_errors(net, layers, crops, args.guidance, args.gamma, args.candidates, args.strict, bar)
    planning.attention_energy(inp.replica, layers, crops)
    if args.budget is not None:
        plan = planning.plan_for_budget(inp.teacher_macs, layers, args.budget)
        others = [planning.energy_plan_for_budget(inp.teacher_macs, layers, args.budget),
                  planning.uniform_plan_for_budget(inp.teacher_macs, layers, args.budget)]
    else:
        plan = planning.plan_for_energy(inp.teacher_macs, layers, args.energy)
        others = [planning.uniform_plan_for_budget(inp.teacher_macs, layers, plan.predicted_macs / inp.teacher_macs)]
    plan.macs, params = planning.count_ranks(net, plan.ranks, inp.shape, args.guidance, args.gamma, args.strict)
    if plan.macs != plan.predicted_macs:
        raise RuntimeError(f'internal: the counter gives {plan.macs} MACs for the plan, the per-layer model '
                           f'{plan.predicted_macs}; please report this')
    if args.budget is not None and plan.macs > args.budget * inp.teacher_macs:
        raise RuntimeError(f'internal: the plan has {plan.macs} MACs, over the budget; please report this')
    compared = planning.compare_plans(net, [plan] + [p for p in others if p is not None], crops, args.guidance,
                                      args.gamma, args.strict)
    result = {
        'input_shape': list(inp.shape), 'teacher_macs': inp.teacher_macs, 'teacher_params': inp.teacher_params,
        'student_macs': plan.macs, 'student_params': params, 'plan': plan.to_dict(),
        'layers': [dict(vars(layer), errors={str(k): v for k, v in layer.errors.items()}) for layer in layers],
        'compared': compared, 'crops': [len(crops), args.crop], 'seconds': time.time() - started,
    }
    _write_json(osp.join(out, 'plan.json'), result)
    return result


def print_plan(result: dict) -> None:
    layers = {layer['path']: layer for layer in result['layers']}
    width = max(len(p) for p in layers)
    say(f'{"layer":{width}s} {"C":>4s} {"heads":>5s} {"rank":>4s} {"energy":>7s} {"alone dB":>8s}')
    for path, rank in result['plan']['ranks'].items():
        layer = layers[path]
        energy = planning.AttentionLayer(**{k: layer[k] for k in ('path', 'kind', 'channels', 'heads')},
                                         energy=layer['energy']).energy_at(rank)
        err = layer['errors'].get(str(rank))   # not measured: a rank the energy target chose outside the candidates
        alone = f'{planning.psnr_of_mse(err):8.2f}' if err is not None else f'{"-":>8s}'
        shown = f'{energy:7.4f}' if energy is not None else f'{"-":>7s}'
        say(f'{path:{width}s} {layer["channels"]:4d} {layer["heads"]:5d} {rank:4d} {shown} {alone}')
    say(f'MACs {result["student_macs"] / 1e9:.3f} G of {result["teacher_macs"] / 1e9:.3f} G '
        f'({result["student_macs"] / result["teacher_macs"]:.4f}) at {"x".join(map(str, result["input_shape"][1:]))}'
        f' (counter: mmengine FlopAnalyzer, as the complexity report)')
    for c in result['compared']:
        say(f'  warm start of {c["method"]}: {c["warm_start_psnr_vs_teacher"]:.2f} dB vs the teacher on the crops '
            f'({c["macs"] / result["teacher_macs"]:.4f} of the MACs)')


def refit_warm_start(inp: Inputs, student: torch.nn.Module, paths: List[str], out: str) -> None:
    """``--refit``: the output projections of the swapped layers refit by least squares to the teacher's layer
    outputs on ``--refit-crops`` crops of the training images (:mod:`.refit`) -> ``refit.json``."""
    from .refit import refit_projections, refit_summary
    args = inp.args
    crops = imgs.random_crops(inp.train_paths, args.refit_crops, args.crop, args.seed + 1).to(inp.device)
    teacher = inp.source.module.to(inp.device)
    started = time.time()
    say(f'refitting the output projections of {len(paths)} layer(s) on {len(crops)} crops of {args.crop}x{args.crop}')
    with _tqdm(len(paths), 'refit', 'layer') as bar:
        results = refit_projections(student.to(inp.device), teacher, paths, crops, bar=bar)
    student.cpu()
    teacher.cpu()
    seconds = time.time() - started
    say(refit_summary(results, seconds))
    _write_json(osp.join(out, 'refit.json'), {'crops': [len(crops), args.crop], 'seconds': seconds, 'layers': results})


# ------------------------------------------------------------------------------------------- option files


def _type_first(block: dict) -> dict:
    return {'type': block['type'], **{k: v for k, v in block.items() if k != 'type'}}


def network_g_block(inp: Inputs, ranks: Dict[str, int]) -> dict:
    return {'type': 'GLMHASwap', 'base': _type_first(inp.source.block), 'rank': dict(ranks),
            'guidance': inp.args.guidance, 'gamma': inp.args.gamma, 'warm_start': False, 'strict': inp.args.strict}


def train_options(inp: Inputs, out: str, network_g: dict) -> dict:
    args = inp.args
    iters = max(1, args.iters)
    val_freq = args.val_freq or max(1, iters // 10)
    n_train = len(inp.train_paths)
    train_ds = {'name': 'CompressTrain', 'type': 'UnpairedImageDataset', 'dataroot_lq': osp.abspath(args.images),
                'meta_info_file': osp.join(out, 'images_train.txt'), 'io_backend': {'type': 'disk'},
                'gt_size': args.crop, **AUGMENTS[args.augment], 'use_shuffle': True,
                'num_worker_per_gpu': args.workers, 'batch_size_per_gpu': args.batch,
                'dataset_enlarge_ratio': max(1, -(-200 * args.batch // n_train)), 'prefetch_mode': None}
    if inp.val_pairs is not None:
        val_ds = {'name': 'CompressHeldOut', 'type': 'Dataset_PairedImage', 'dataroot_lq': osp.abspath(args.val_lq),
                  'dataroot_gt': osp.abspath(args.val_gt), 'io_backend': {'type': 'disk'}}
    elif args.val_lq:
        val_ds = {'name': 'CompressHeldOut', 'type': 'UnpairedImageDataset', 'dataroot_lq': osp.abspath(args.val_lq),
                  'io_backend': {'type': 'disk'}}
    else:
        val_ds = {'name': 'CompressHeldOut', 'type': 'UnpairedImageDataset', 'dataroot_lq': osp.abspath(args.images),
                  'meta_info_file': osp.join(out, 'images_heldout.txt'), 'io_backend': {'type': 'disk'}}
    train = {
        'ema_decay': 0,
        'optim_g': {'type': 'AdamW', 'lr': args.lr, 'weight_decay': 1e-4, 'betas': [0.9, 0.999]},
        'scheduler': {'type': 'CosineAnnealingRestartCyclicLR', 'periods': [iters], 'restart_weights': [1],
                      'eta_mins': [args.lr / 100]},
        # a linear warm-up: the student starts next to the teacher, and Adam's first full-size steps would
        # throw it away from there before they help (measured: -4 dB vs the teacher after 3 steps without)
        'total_iter': iters, 'warmup_iter': max(1, iters // 10),
        'distill_opt': {'type': 'L1Loss', 'loss_weight': 1.0, 'reduction': 'mean'},
    }
    if args.feature_weight:
        train['feature_opt'] = {'type': 'MSELoss', 'loss_weight': args.feature_weight, 'reduction': 'mean'}
    metric = {'crop_border': 0, 'test_y_channel': False}
    return {
        'name': EXPERIMENT, 'model_type': 'DistillModel', 'scale': inp.scale, 'num_gpu': 'auto',
        'manual_seed': args.seed,
        'datasets': {'train': train_ds, 'val': val_ds},
        'network_g': network_g,
        'network_teacher': _type_first(inp.source.block),
        'path': {'pretrain_network_g': osp.join(out, 'warm_start.pth'), 'strict_load_g': True, 'resume_state': None,
                 'pretrain_network_teacher': inp.source.weights, 'param_key_teacher': inp.source.param_key,
                 'strict_load_teacher': True, 'ignore_resume_networks': ['network_teacher']},
        'train': train,
        'val': {'val_freq': val_freq, 'save_img': False, 'use_image': False, 'window_size': args.window_size,
                'metrics': {'psnr': dict(type='calculate_psnr', **metric),
                            'ssim': dict(type='calculate_ssim', **metric)}},
        'logger': {'print_freq': max(1, iters // 100), 'save_checkpoint_freq': val_freq, 'use_tb_logger': False},
    }


TRAIN_HEADER = """\
# Written by glmha compress: distils the GLMHA student (network_g) from the trained network
# (network_teacher) on the images, without targets.  Run from this folder:
#   glmha-train -opt train.yml --auto_resume        (or: python -m basicsr.train -opt train.yml --auto_resume)
# continues an interrupted run.  To fine-tune with targets instead, set datasets.train to a paired set
# (type: Dataset_PairedImage, dataroot_lq / dataroot_gt, gt_size, geometric_augs) and add
# train.pixel_opt ({type: L1Loss, loss_weight: 1.0}): the ground truth is then mixed in.
"""
NETWORK_HEADER = """\
# Written by glmha compress: the compressed network.  Build it through basicsr's registry and load the weights:
#   net = basicsr.archs.build_network(yaml.safe_load(open('network_g.yml'))['network_g'])
#   net.load_state_dict(torch.load('student.pth')['params'], strict=True)
# or put the block into an option file with path.pretrain_network_g: student.pth.
"""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data):   # the teacher's block appears twice: write it out twice, no &id anchors
        return True


def _write_yaml(path: str, data: dict, header: str) -> None:
    tmp = f'{path}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        f.write(header)
        yaml.dump(data, f, Dumper=_Dumper, sort_keys=False, default_flow_style=None, width=110)
    os.replace(tmp, path)


def _write_json(path: str, data) -> None:
    tmp = f'{path}.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(data, f, indent=1)
    os.replace(tmp, path)


def _save(path: str, state: dict) -> None:
    tmp = f'{path}.tmp'
    torch.save({'params': state}, tmp)
    os.replace(tmp, path)


def build_student(network_g: dict, weights: Optional[str] = None) -> torch.nn.Module:
    """The student from ``network_g`` through basicsr's ``build_network``, ``weights`` loaded strict."""
    from basicsr.archs import build_network
    net = build_network(copy.deepcopy(network_g))
    if weights:
        net.load_state_dict(torch.load(weights, map_location='cpu', weights_only=True)['params'], strict=True)
    return net.eval()


# ------------------------------------------------------------------------------------------- distillation


def distil(out: str, iters: int, resume: bool) -> List[dict]:
    """Run ``train.yml`` through ``python -m glmha_plugin.commands.train`` in ``out`` with a progress bar; returns the
    validation lines (dicts) of the log."""
    cmd = [sys.executable, '-m', 'glmha_plugin.commands.train', '-opt', osp.join(out, 'train.yml')]
    if resume:
        cmd.append('--auto_resume')
    log_path = osp.join(out, 'distill.log')
    curve, tail = [], []
    env = dict(os.environ, PYTHONUNBUFFERED='1')
    with open(log_path, 'a', encoding='utf-8') as log, _tqdm(iters, 'distil', 'iter') as bar:
        proc = subprocess.Popen(cmd, cwd=out, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        for line in proc.stdout:
            log.write(line)
            tail = (tail + [line])[-30:]
            m = ITER_LINE.search(line)
            if m:
                bar.n = min(iters, int(m.group(1).replace(',', '')))
                bar.refresh()
            v = VAL_LINE.search(line)
            if v:
                point = json.loads(v.group(1))
                curve.append(point)
                if 'psnr_teacher' in point:
                    bar.set_postfix_str(f'{point["psnr_teacher"]:.2f} dB vs teacher')
        code = proc.wait()
        if code == 0:
            bar.n = iters
            bar.refresh()
    if code != 0:
        raise CompressError(f'distillation stopped (exit code {code}); its log is {log_path}; last lines:\n'
                            + ''.join(tail[-12:]) + 'fix the cause and run the same command with --resume')
    return curve


def validation_curve(out: str, iters: int) -> List[dict]:
    """Every validation line of the run's training logs (a resumed run has several), by iteration; basicsr's
    validation after the last iteration counts as iteration ``iters`` (the same weights)."""
    folder = osp.join(out, 'experiments', EXPERIMENT)
    points = {}
    if osp.isdir(folder):
        for name in sorted(os.listdir(folder)):
            if name.startswith('train_') and name.endswith('.log'):
                with open(osp.join(folder, name), encoding='utf-8') as f:
                    for line in f:
                        v = VAL_LINE.search(line)
                        if v:
                            point = json.loads(v.group(1))
                            point['iter'] = min(int(point['iter']), iters)
                            points[point['iter']] = point
    return [points[k] for k in sorted(points)]


def latest_student(out: str) -> str:
    path = osp.join(out, 'experiments', EXPERIMENT, 'models', 'net_g_latest.pth')
    if not osp.isfile(path):
        raise CompressError(f'the distillation wrote no {path}; see {osp.join(out, "distill.log")}')
    return path


# ------------------------------------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(nets: Dict[str, torch.nn.Module], pairs: List[dict], window: int, device) -> Dict[str, dict]:
    """PSNR/SSIM (basicsr's, RGB, float images in [0, 255] not rounded, no border crop) of each network against
    the teacher's output (``*_teacher``) and the targets where known; ``nets`` holds ``teacher``."""
    from basicsr.metrics import calculate_psnr, calculate_ssim

    from ..layers import pad_to_multiple

    def image(t):
        return t.squeeze(0).clamp(0, 1).permute(1, 2, 0).double().cpu().numpy() * 255.0

    sums = {name: {} for name in nets}
    for pair in pairs:
        lq = imgs.load(pair['lq']).to(device)
        h, w = lq.shape[-2:]
        x = pad_to_multiple(lq, window) if window > 1 else lq
        outs = {}
        for name, net in nets.items():
            y = run_network(net, x)
            s = y.shape[-1] // x.shape[-1]
            outs[name] = image(y[..., :h * s, :w * s])
        gt = image(imgs.load(pair['gt'])) if pair.get('gt') else None
        for name, out in outs.items():
            scores = {}
            if name != 'teacher':
                scores['psnr_teacher'] = calculate_psnr(out, outs['teacher'], 0)
                scores['ssim_teacher'] = calculate_ssim(out, outs['teacher'], 0)
            if gt is not None:
                scores['psnr'] = calculate_psnr(out, gt, 0)
                scores['ssim'] = calculate_ssim(out, gt, 0)
            for k, v in scores.items():
                sums[name][k] = sums[name].get(k, 0.0) + float(v)
    return {name: {k: v / len(pairs) for k, v in s.items()} for name, s in sums.items()}


# ------------------------------------------------------------------------------------------- the command


def run(args) -> int:
    out = osp.abspath(args.out)
    state = out_state(out, args.resume, args.overwrite)
    if state == 'resume':
        check_resumable(out, args)
    say('checking the network, the weights and the images')
    inp = Inputs(args)
    if state == 'overwrite':
        clear_run(out)
    os.makedirs(out, exist_ok=True)
    started = time.time()
    if state != 'resume':
        _write_json(osp.join(out, MARKER), {'settings': _settings(args), 'argv': getattr(args, 'argv', None)})
        imgs.write_list(osp.join(out, 'images_train.txt'), inp.train_paths)
        if inp.heldout_paths:
            imgs.write_list(osp.join(out, 'images_heldout.txt'), inp.heldout_paths)
    plan_path = osp.join(out, 'plan.json')
    if osp.isfile(plan_path):
        with open(plan_path, encoding='utf-8') as f:
            plan = json.load(f)
        say(f'plan from {plan_path}')
    else:
        plan = make_plan(inp, out)
    print_plan(plan)
    ranks = plan['plan']['ranks']
    network_g = network_g_block(inp, ranks)
    warm_path = osp.join(out, 'warm_start.pth')
    if not osp.isfile(warm_path):
        student = copy.deepcopy(inp.source.module)
        swap_attention(student, rank=dict(ranks), guidance=args.guidance, gamma=args.gamma, strict=args.strict)
        if args.refit:
            refit_warm_start(inp, student, list(ranks), out)
        _save(warm_path, student.state_dict())
    _write_yaml(osp.join(out, 'network_g.yml'), {'network_g': network_g}, NETWORK_HEADER)
    _write_yaml(osp.join(out, 'train.yml'), train_options(inp, out, network_g), TRAIN_HEADER)
    build_student(network_g, warm_path)    # the block builds and takes the weights (strict) before training
    marker = osp.join(out, MARKER)
    with open(marker, encoding='utf-8') as f:
        record = json.load(f)
    if args.iters > 0 and record.get('distilled'):
        say(f'distillation finished earlier ({args.iters} iterations)')
    elif args.iters > 0:
        say(f'distilling {args.iters} iterations (log: {osp.join(out, "distill.log")})')
        has_states = osp.isdir(osp.join(out, 'experiments', EXPERIMENT, 'training_states'))
        distil(out, args.iters, resume=state == 'resume' and has_states)
        _write_json(marker, dict(record, distilled=True))
    if args.iters > 0:
        state_dict = torch.load(latest_student(out), map_location='cpu', weights_only=True)['params']
    else:
        state_dict = torch.load(warm_path, map_location='cpu', weights_only=True)['params']
    student_path = osp.join(out, 'student.pth')
    _save(student_path, state_dict)
    say('evaluating on the held-out images')
    pairs = inp.evaluation_pairs()
    nets = {'teacher': inp.source.module.to(inp.device).eval(),
            'warm_start': build_student(network_g, warm_path).to(inp.device),
            'student': build_student(network_g, student_path).to(inp.device)}
    scores = evaluate(nets, pairs, args.window_size, inp.device)
    from .report import write_report
    report = write_report(out, args, inp, plan, scores, validation_curve(out, args.iters), pairs, time.time() - started)
    say(report['summary'])
    say(f'wrote {student_path}, network_g.yml, train.yml, report.json, report.md, report.png in {out}')
    return 0
