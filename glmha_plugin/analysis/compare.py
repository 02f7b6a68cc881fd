"""Equal-budget quality comparison: CSA vs GLMHA variants of a tiny host network (Restormer, Retinexformer), same
data, iterations and seeds.

Each (variant, seed) run goes through the real pipelines: an option file
derived from the demo's (``options/tiny/``) is trained by
``python -m glmha_plugin.commands.train`` (basicsr's ``train_pipeline``) and tested by
``python -m glmha_plugin.commands.test`` (``test_pipeline``, saving the restored
images), then PSNR/SSIM of the saved images against the targets are computed
with basicsr's metrics (RGB, no border crop).  The variants differ only in
``network_g``; everything else, seeds included, is shared, so per seed the
runs are paired.

Warm start (``warm_start=True``): each GLMHA variant is also run a second
time ("... warm start"), initialised from the same seed's trained CSA run
converted by truncated SVD (:func:`glmha_plugin.swap.convert.convert_checkpoint`,
what ``glmha convert`` does) and then trained for the same
number of iterations, so it has seen the CSA run's iterations as well.

:func:`main` is ``glmha compare``.
"""
import argparse
import copy
import os
import os.path as osp
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

import cv2
import torch
import yaml

from ..demo.data import DATA_DIR, DEMO_TEST_OPT, DEMO_TRAIN_OPT, make_rain_pairs, result_images
from ..demo.data import score as demo_score
from ..glue.option_files import load_options, shipped_file
from .complexity import count
from .tables import write_csv

CSA = 'CSA'                  # label of the baseline variant
WARM_SUFFIX = ' warm start'  # label suffix of warm-started GLMHA runs


@dataclass
class Run:
    variant: str
    seed: int
    psnr: float
    ssim: float
    params: int
    gmacs: float   # at the test images' size (first test image)
    log: str       # training log file


COMPARE_HOSTS = ('restormer', 'retinexformer')   # RGB -> RGB hosts: they train on the demo's image pairs
GLMHA_OPTIONS = ('rank', 'rank_ratio', 'guidance', 'gamma', 'attention')


def variants(ratios: Sequence[float] = (0.5,), guidances: Sequence[str] = ('calibration',),
             host: str = 'restormer') -> Dict[str, Dict]:
    """``network_g`` overrides per variant label: CSA (the host's CSA type) and GLMHA per rank ratio and guidance.

    For Restormer the overrides apply to the demo option file's network; for another host
    (:data:`COMPARE_HOSTS`) each override is the host's whole tiny network.
    """
    from .hosts import get_host
    if host not in COMPARE_HOSTS:
        raise ValueError(f'compare trains on the demo\'s RGB image pairs: host must be one of {COMPARE_HOSTS}, '
                         f'got {host!r}')
    spec = get_host(host)
    network = {} if host == 'restormer' else dict(spec.default_options, **spec.tiny)
    out = {CSA: dict(network, type=spec.arch, attention='csa')}
    for ratio in ratios:
        for guidance in guidances:
            label = f'GLMHA r={ratio:g}' + ('' if guidance == 'calibration' else ' no guidance')
            out[label] = dict(network, type=spec.other_archs[0], rank_ratio=ratio, guidance=guidance)
    return out


def _network_g(template: Dict, overrides: Dict) -> Dict:
    """The demo network with ``overrides``, or ``overrides`` alone when they are another host's network."""
    from .hosts import host_for_arch
    same_host = host_for_arch(template['type']).name == host_for_arch(overrides['type']).name
    net = {k: v for k, v in template.items() if k not in GLMHA_OPTIONS} if same_host else {}
    net.update(overrides)
    return net


def train_options(template: Dict, name: str, network_g: Dict, seed: int, iters: int, batch: int, gt_size: int,
                  workers: int, pretrain: Optional[str] = None) -> Dict:
    """The demo's training options with the run's network, seed and budget; no validation during training."""
    opt = copy.deepcopy(template)
    opt['name'] = name
    opt['manual_seed'] = seed
    opt['network_g'] = network_g
    opt.pop('val', None)
    opt['datasets'] = {'train': opt['datasets']['train']}
    train_set = opt['datasets']['train']
    train_set.update(batch_size_per_gpu=batch, gt_size=gt_size, num_worker_per_gpu=workers)
    opt['train']['total_iter'] = iters
    opt['train']['scheduler']['periods'] = [iters]
    opt['logger'].update(print_freq=max(1, iters // 5), save_checkpoint_freq=iters, use_tb_logger=False)
    opt['path'] = {'pretrain_network_g': pretrain, 'strict_load_g': True, 'resume_state': None}
    return opt


def test_options(template: Dict, name: str, network_g: Dict, weights: str, seed: int) -> Dict:
    opt = copy.deepcopy(template)
    opt['name'] = name
    opt['manual_seed'] = seed
    opt['network_g'] = network_g
    opt['path'] = {'pretrain_network_g': weights, 'strict_load_g': True, 'param_key_g': 'params'}
    opt['val'].update(save_img=True, suffix=None, pbar=False)
    return opt


def _write(opt: Dict, path: str) -> str:
    with open(path, 'w', encoding='utf-8') as f:
        yaml.safe_dump(opt, f, sort_keys=False)
    return path


def _run(cmd: List[str], cwd: str, log: str, threads: Optional[int]) -> None:
    env = dict(os.environ)
    if threads:
        env['OMP_NUM_THREADS'] = str(threads)
    with open(log, 'w', encoding='utf-8') as f:
        proc = subprocess.run(cmd, cwd=cwd, stdout=f, stderr=subprocess.STDOUT, env=env)
    if proc.returncode != 0:
        with open(log, encoding='utf-8') as f:
            tail = f.read()[-3000:]
        raise RuntimeError(f'{" ".join(cmd)} failed (exit {proc.returncode}); log {log}:\n{tail}')


def score(workdir: str, test_name: str) -> (float, float):
    """Mean PSNR/SSIM (basicsr metrics, RGB, no crop) of the saved test outputs against the targets."""
    psnrs, ssims = zip(*(demo_score(pred, gt) for _, _, pred, gt in result_images(workdir, test_name)), strict=True)
    return statistics.fmean(psnrs), statistics.fmean(ssims)


def complexity_of(network_g: Dict, image_hw) -> (int, float):
    """Parameters and GMACs of ``network_g`` on one image of size ``image_hw``."""
    from basicsr.utils.registry import ARCH_REGISTRY
    net = dict(network_g)
    model = ARCH_REGISTRY.get(net.pop('type'))(**net).eval()
    c = count(model, torch.rand(1, 3, *image_hw))
    return c.params, c.macs / 1e9


def _tag(variant: str, seed: int) -> str:
    return f'compare_{variant.replace(" ", "_").replace("=", "")}_s{seed}'


def _weights(workdir: str, name: str) -> str:
    return osp.join(workdir, 'experiments', name, 'models', 'net_g_latest.pth')


def warm_start_weights(workdir: str, seed: int, network_g: Dict, dst: str) -> str:
    """The same seed's trained CSA run, converted for ``network_g`` by truncated SVD, written to ``dst``.

    Restormer through :func:`glmha_plugin.swap.convert.convert_checkpoint` (what ``glmha convert``
    does), other hosts through :func:`glmha_plugin.swap_attention` on the CSA network (``glmha swap``).
    """
    from ..swap.convert import convert_checkpoint
    from .hosts import host_for_arch
    src = _weights(workdir, _tag(CSA, seed))
    if not osp.isfile(src):
        raise FileNotFoundError(f'warm start: the CSA run of seed {seed} has no checkpoint {src}')
    host = host_for_arch(network_g['type'])
    if host.name == 'restormer':
        convert_checkpoint(src, dst, network_g, overwrite=True)
        return dst
    from basicsr.archs import build_network

    from ..glue.checkpoints import load_into
    from ..swap.attention_swap import swap_attention
    parent = build_network(dict({k: v for k, v in network_g.items() if k not in GLMHA_OPTIONS}, type=host.arch))
    load_into(parent, src, 'params', strict=True)
    swap_attention(parent, **{k: network_g[k] for k in ('rank', 'rank_ratio', 'guidance', 'gamma') if k in network_g})
    torch.save({'params': parent.state_dict()}, dst)
    return dst


def run_comparison(workdir: str, variant_opts: Dict[str, Dict], seeds: Sequence[int], iters: int, batch: int = 4,
                   gt_size: int = 48, workers: int = 0, warm_start: bool = False, threads: Optional[int] = None,
                   progress: Callable[[str], None] = print) -> List[Run]:
    """Train and test every variant for every seed under ``workdir`` (which holds ``datasets/demo_rain``).

    ``warm_start`` adds, after each GLMHA variant, its warm-started twin
    (module docstring; needs the ``CSA`` variant).  ``threads`` sets
    ``OMP_NUM_THREADS`` (torch's CPU threads) of the runs.
    """
    train_template = load_options(shipped_file(DEMO_TRAIN_OPT))
    test_template = load_options(shipped_file(DEMO_TEST_OPT))
    if warm_start and CSA not in variant_opts:
        raise ValueError(f'warm start converts the CSA runs; the variants {list(variant_opts)} have no {CSA!r}')
    if not osp.isdir(osp.join(workdir, DATA_DIR, 'train', 'input')):
        raise FileNotFoundError(f'no demo data under {osp.join(workdir, DATA_DIR)}')
    opt_dir = osp.join(workdir, 'compare_options')
    os.makedirs(opt_dir, exist_ok=True)
    first_test = sorted(os.listdir(osp.join(workdir, DATA_DIR, 'test', 'target')))[0]
    test_hw = cv2.imread(osp.join(workdir, DATA_DIR, 'test', 'target', first_test)).shape[:2]
    sizes = {v: complexity_of(_network_g(train_template['network_g'], o), test_hw) for v, o in variant_opts.items()}
    jobs = []  # (seed, label, variant): a CSA run comes before its seed's warm starts
    for seed in seeds:
        for v in variant_opts:
            jobs.append((seed, v, v))
            if warm_start and v != CSA:
                jobs.append((seed, v + WARM_SUFFIX, v))
    runs = []
    for i, (seed, label, variant) in enumerate(jobs, 1):
        network_g = _network_g(train_template['network_g'], variant_opts[variant])
        name = _tag(label, seed)
        pretrain = None
        if label != variant:
            progress(f'[{i}/{len(jobs)}] {label}, seed {seed}: converting the CSA run by truncated SVD')
            pretrain = warm_start_weights(workdir, seed, network_g, osp.join(opt_dir, f'{name}.init.pth'))
        progress(f'[{i}/{len(jobs)}] {label}, seed {seed}: training {iters} iterations')
        log = osp.join(opt_dir, f'{name}.train.log')
        opt = train_options(train_template, name, network_g, seed, iters, batch, gt_size, workers, pretrain)
        train_yml = _write(opt, osp.join(opt_dir, f'{name}.yml'))
        _run([sys.executable, '-m', 'glmha_plugin.commands.train', '-opt', train_yml],
             workdir, log, threads)
        progress(f'[{i}/{len(jobs)}] {label}, seed {seed}: testing')
        test_name = f'test_{name}'
        topt = test_options(test_template, test_name, network_g, _weights(workdir, name), seed)
        test_yml = _write(topt, osp.join(opt_dir, f'{test_name}.yml'))
        _run([sys.executable, '-m', 'glmha_plugin.commands.test', '-opt', test_yml],
             workdir, osp.join(opt_dir, f'{test_name}.log'), threads)
        psnr, ssim = score(workdir, test_name)
        runs.append(Run(label, seed, psnr, ssim, sizes[variant][0], sizes[variant][1], log))
    return runs


def _mean_sd(values: Sequence[float]) -> (float, float):
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summary_markdown(runs: Sequence[Run]) -> str:
    """Per variant: params, GMACs, PSNR/SSIM mean ± sample std over seeds, and the paired difference to CSA."""
    labels = list(dict.fromkeys(r.variant for r in runs))
    by = {(r.variant, r.seed): r for r in runs}
    seeds = sorted({r.seed for r in runs})
    lines = ['| variant | params | GMACs | PSNR (dB) mean ± sd | SSIM mean ± sd | ΔPSNR vs CSA (paired) | '
             'ΔSSIM vs CSA (paired) | seeds |', '|---|---:|---:|---:|---:|---:|---:|---|']
    for label in labels:
        sel = [by[(label, s)] for s in seeds if (label, s) in by]
        p, ps = _mean_sd([r.psnr for r in sel])
        s, ss = _mean_sd([r.ssim for r in sel])
        if label != CSA and all((CSA, r.seed) in by for r in sel):
            dp, dps = _mean_sd([r.psnr - by[(CSA, r.seed)].psnr for r in sel])
            ds, dss = _mean_sd([r.ssim - by[(CSA, r.seed)].ssim for r in sel])
            delta = f'{dp:+.2f} ± {dps:.2f} | {ds:+.4f} ± {dss:.4f}'
        else:
            delta = '- | -'
        lines.append(f'| {label} | {sel[0].params:,} | {sel[0].gmacs:.3f} | {p:.2f} ± {ps:.2f} | {s:.4f} ± {ss:.4f} | '
                     f'{delta} | {", ".join(str(r.seed) for r in sel)} |')
    lines += ['', '| variant | seed | PSNR | SSIM |', '|---|---:|---:|---:|']
    lines += [f'| {r.variant} | {r.seed} | {r.psnr:.2f} | {r.ssim:.4f} |' for r in runs]
    return '\n'.join(lines) + '\n'


def plot(runs: Sequence[Run], path: str) -> None:
    """PSNR and SSIM per variant: one dot per seed, bar = mean."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    labels = list(dict.fromkeys(r.variant for r in runs))
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, attr, unit in ((axes[0], 'psnr', 'PSNR (dB)'), (axes[1], 'ssim', 'SSIM')):
        for i, label in enumerate(labels):
            vals = [getattr(r, attr) for r in runs if r.variant == label]
            ax.bar(i, statistics.fmean(vals), color='tab:gray' if label == CSA else 'tab:blue', alpha=0.5)
            ax.scatter([i] * len(vals), vals, color='k', s=12, zorder=3)
        lo = min(getattr(r, attr) for r in runs)
        hi = max(getattr(r, attr) for r in runs)
        ax.set_ylim(lo - (hi - lo + 1e-3) * 1.5, hi + (hi - lo + 1e-3) * 0.8)
        ax.set_xticks(range(len(labels)), labels, fontsize=8)
        ax.set_ylabel(unit)
    fig.suptitle('equal budget: same data, iterations and seeds (dots: seeds)', fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description='Equal-budget quality comparison of CSA and GLMHA on the bundled demo '
                                     'data, through the real train/test pipelines.')
    parser.add_argument('--workdir', default='compare_run', help='data, experiments/, results/ and the report go here')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=200, help='training iterations of every run')
    parser.add_argument('--host', default='restormer', choices=COMPARE_HOSTS,
                        help="the network compared (its tiny configuration); the data is the demo's for every host")
    parser.add_argument('--ratios', type=float, nargs='+', default=[0.5], help='GLMHA rank ratios')
    parser.add_argument('--guidance', nargs='+', default=['calibration'], choices=['calibration', 'none'])
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--gt-size', type=int, default=48, help='training patch size')
    parser.add_argument('--workers', type=int, default=0, help='data-loader workers per run')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads per run (OMP_NUM_THREADS; 0 = torch default). The tiny model gains '
                             'little from more, and one thread does not stall when other processes share the cores')
    parser.add_argument('--warm-start', action='store_true',
                        help='also run every GLMHA variant started from the same seed\'s trained CSA run, converted '
                             'by truncated SVD (glmha_plugin.swap.warm_start, as glmha convert), then trained '
                             '--iters more iterations')
    parser.add_argument('--fresh', action='store_true', help='delete the work directory first')
    args = parser.parse_args(argv)
    if args.iters < 1:  # (--seeds takes one or more values: argparse already asks for a seed)
        parser.error('give a positive --iters')

    workdir = osp.abspath(args.workdir)
    if args.fresh and osp.isdir(workdir):
        shutil.rmtree(workdir)
    if not osp.isdir(osp.join(workdir, DATA_DIR, 'test', 'target')):
        print(f'[compare] building the demo rain dataset under {osp.join(workdir, DATA_DIR)}', flush=True)
        make_rain_pairs(osp.join(workdir, DATA_DIR))
    t0 = time.time()
    runs = run_comparison(workdir, variants(args.ratios, args.guidance, args.host), args.seeds, args.iters, args.batch,
                          args.gt_size, args.workers, args.warm_start, args.threads or None,
                          progress=lambda msg: print(f'[compare] {msg}', flush=True))
    warm = (f' "{WARM_SUFFIX.strip()}": initialised from the same seed\'s CSA run (after its {args.iters} '
            f'iterations) by truncated SVD, then trained {args.iters} iterations.' if args.warm_start else '')
    md = (f'# Equal-budget comparison on the demo data\n\n{args.iters} iterations, batch {args.batch}, patch '
          f'{args.gt_size}, seeds {args.seeds}; test: {DATA_DIR}/test (RGB PSNR/SSIM, no crop); GMACs at the first '
          f'test image\'s size; {time.time() - t0:.0f} s in total.{warm}\n\n' + summary_markdown(runs))
    with open(osp.join(workdir, 'compare.md'), 'w', encoding='utf-8') as f:
        f.write(md)
    write_csv(runs, osp.join(workdir, 'compare.csv'))
    plot(runs, osp.join(workdir, 'compare.png'))
    print(md)
    print(f'written: {", ".join(osp.join(workdir, f) for f in ("compare.md", "compare.csv", "compare.png"))}')
    return 0
