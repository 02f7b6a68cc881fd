"""The bundled demo: derain real photos with a tiny GLMHA-Restormer, end to end, and show what GLMHA saves.

``glmha demo [--workdir demo_run] [--compare]`` (or ``bash tools/demo.sh``):

1. builds a small paired deraining set in Restormer's folder layout from the
   photos scikit-image ships, with synthetic rain streaks
   (:func:`glmha_plugin.demo.data.make_rain_pairs`);
2. trains ``options/tiny/Demo_Deraining_GLMHA.yml`` (the plugin's
   ``ImageCleanModel``: Restormer's progressive patches and cosine schedule)
   through basicsr's ``train_pipeline`` (``glmha-train``), with its progress log;
3. tests the final weights through ``test_pipeline`` (``glmha-test``);
4. prints input-vs-output PSNR/SSIM per image and the trade: parameters and
   MACs of the network against its CSA twin (counted, not trained) and the
   measured time per iteration; writes a side-by-side PNG (rainy input |
   GLMHA output | ground truth).

``--compare`` also trains and tests the CSA twin
(``options/tiny/Demo_Deraining_Restormer.yml``: same recipe, data and seed)
and adds its column.  Everything is written under the work directory; a
second run reuses the data and resumes training from the last checkpoint
(``--auto_resume``).
"""
import argparse
import datetime
import glob
import math
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..glue.option_files import load_options, shipped_file
from .data import (
    DATA_DIR,
    DEMO_CSA_TEST_OPT,
    DEMO_CSA_TRAIN_OPT,
    DEMO_TEST_OPT,
    DEMO_TRAIN_OPT,
    make_rain_pairs,
    result_images,
    score,
)

# ---------------------------------------------------------------------------------------------- options for --iters

def stretch(parts: Sequence[int], total: int) -> List[int]:
    """``parts`` rescaled to sum to ``total`` (largest remainders), each at least 1."""
    parts = [int(p) for p in parts]
    if total <= len(parts):
        return [1] * len(parts)
    exact = [p * total / sum(parts) for p in parts]
    out = [max(1, math.floor(e)) for e in exact]
    for i in sorted(range(len(parts)), key=lambda i: exact[i] - math.floor(exact[i]), reverse=True):
        if sum(out) >= total:
            break
        out[i] += 1
    while sum(out) > total:  # the floor at 1 took some
        out[out.index(max(out))] -= 1
    return out


def iteration_overrides(opt: dict, iters: int) -> List[str]:
    """``--force_yml`` entries that run ``opt`` for ``iters`` iterations: ``train.total_iter``; the cosine
    periods and progressive stages stretched in proportion (they sum to ``total_iter`` in the demo files); for a
    run shorter than the log and checkpoint periods, periods that still log progress and save its last state."""
    out = [f'train:total_iter={iters}']
    periods = (opt['train'].get('scheduler') or {}).get('periods')
    if periods:
        out.append(f'train:scheduler:periods=[{",".join(map(str, stretch(periods, iters)))}]')
    stages = opt['datasets']['train'].get('iters')
    if stages:
        out.append(f'datasets:train:iters=[{",".join(map(str, stretch(stages, iters)))}]')
    logger = opt['logger']
    if iters < logger['save_checkpoint_freq']:
        out.append(f'logger:save_checkpoint_freq={iters}')
    if iters < 4 * logger['print_freq']:
        out.append(f'logger:print_freq={max(1, iters // 4)}')
    return out


# ---------------------------------------------------------------------------------------------- measuring

LOG_LINE = re.compile(r'^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) INFO: \[.*?iter:\s*([\d,]+), lr:')


def seconds_per_iteration(log_files: Sequence[str]) -> Optional[float]:
    """Mean wall time per iteration between the first and the last progress line of each basicsr training log
    (checkpoints and validation in between included); None when no log has two progress lines."""
    seconds = iterations = 0.0
    for path in log_files:
        points = []
        with open(path, encoding='utf-8', errors='replace') as f:
            for line in f:
                m = LOG_LINE.match(line)
                if m:
                    stamp = datetime.datetime.strptime(m.group(1), '%Y-%m-%d %H:%M:%S,%f')
                    points.append((stamp, int(m.group(2).replace(',', ''))))
        if len(points) >= 2 and points[-1][1] > points[0][1]:
            seconds += (points[-1][0] - points[0][0]).total_seconds()
            iterations += points[-1][1] - points[0][1]
    return seconds / iterations if iterations else None


@dataclass
class Net:
    """One network of the trade table: counted on the test size; trained when ``sec_per_iter`` is set."""
    label: str
    params: int
    gmacs: float
    sec_per_iter: Optional[float] = None


def count_network(label: str, network_g: dict, image_hw: Tuple[int, int]) -> Net:
    """Parameters and GMACs of ``network_g`` at ``image_hw`` (glmha_plugin.analysis, mmengine's counter)."""
    from ..analysis.compare import complexity_of
    params, gmacs = complexity_of(network_g, image_hw)
    return Net(label, params, gmacs)


def change(new: float, old: float) -> str:
    return f'{100 * (new - old) / old:+.1f} %'


def trade_lines(glmha: Net, csa: Net, image_hw: Tuple[int, int]) -> List[str]:
    """The printed trade table: both networks, and GLMHA's change against the CSA twin."""
    def spi(net):
        return f'{net.sec_per_iter:.3f}' if net.sec_per_iter else '-'
    lines = [f'the trade at the {image_hw[0]}x{image_hw[1]} test size (MACs: multiply-accumulates, counted, not '
             f'trained; s/iter: measured here)',
             f'{"network":<30} {"params":>9} {"GMACs":>7} {"s/iter":>7}']
    for net in (csa, glmha):
        lines.append(f'{net.label:<30} {net.params / 1e6:8.3f}M {net.gmacs:7.3f} {spi(net):>7}')
    changes = [change(glmha.params, csa.params), change(glmha.gmacs, csa.gmacs),
              change(glmha.sec_per_iter, csa.sec_per_iter) if glmha.sec_per_iter and csa.sec_per_iter else '-']
    lines.append(f'{"GLMHA vs CSA":<30} {changes[0]:>9} {changes[1]:>7} {changes[2]:>7}')
    return lines


# ---------------------------------------------------------------------------------------------- running

@dataclass(frozen=True)
class DemoRun:
    label: str       # in the PNG and the trade table
    column: str      # in the PSNR/SSIM table
    train_opt: str   # a shipped option file's name (glmha_plugin.glue.option_files.shipped_file)
    test_opt: str


GLMHA_RUN = DemoRun('GLMHA-Restormer', 'GLMHA', DEMO_TRAIN_OPT, DEMO_TEST_OPT)
CSA_RUN = DemoRun('Restormer (CSA twin)', 'CSA', DEMO_CSA_TRAIN_OPT, DEMO_CSA_TEST_OPT)


def _run(cmd, cwd):
    print('$', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def train_and_test(run: DemoRun, opt: dict, workdir: str, iters: Optional[int]) -> Tuple[str, Optional[float], float]:
    """Train (resuming) and test one network, ``opt`` being its training options as read from ``run.train_opt``;
    returns (test name, s/iteration of its training logs, seconds)."""
    start = time.time()
    train_opt, test_opt = shipped_file(run.train_opt), shipped_file(run.test_opt)
    force = ['--force_yml'] + iteration_overrides(opt, iters) if iters else []
    exp = osp.join(workdir, 'experiments', opt['name'])
    if osp.isdir(osp.join(exp, 'training_states')) and os.listdir(osp.join(exp, 'training_states')):
        print(f'[demo] resuming {run.label} from {exp} (its learning-rate schedule is the one saved there; '
              f'--fresh starts over)', flush=True)
    print(f'[demo] training the tiny {run.label} (basicsr train_pipeline)', flush=True)
    _run([sys.executable, '-m', 'glmha_plugin.commands.train', '-opt', train_opt, '--auto_resume'] + force, workdir)
    weights = osp.join('experiments', opt['name'], 'models', 'net_g_latest.pth')
    print(f'[demo] testing {run.label} (basicsr test_pipeline)', flush=True)
    _run([sys.executable, '-m', 'glmha_plugin.commands.test', '-opt', test_opt, '--force_yml',
          f'path:pretrain_network_g={weights}'], workdir)
    logs = sorted(glob.glob(osp.join(exp, f'train_{opt["name"]}_*.log')))
    return load_options(test_opt)['name'], seconds_per_iteration(logs), time.time() - start


@dataclass
class Row:
    image: str
    scores: Dict[str, Tuple[float, float]]   # 'input', then one (PSNR, SSIM) per network label


def score_runs(workdir: str, tests: Dict[str, str]) -> Tuple[List[Row], Dict[str, List[np.ndarray]]]:
    """Rows of PSNR/SSIM (input and each network's output, ``tests``: column -> test run name) and the images
    per column ('input', 'ground truth', then the networks'), BGR."""
    rows, images = [], {}
    for label, test_name in tests.items():
        for i, (name, lq, pred, gt) in enumerate(result_images(workdir, test_name)):
            if len(rows) <= i:
                rows.append(Row(name, {'input': score(lq, gt)}))
                images.setdefault('input', []).append(lq)
                images.setdefault('ground truth', []).append(gt)
            rows[i].scores[label] = score(pred, gt)
            images.setdefault(label, []).append(pred)
    return rows, images


def table_lines(rows: Sequence[Row]) -> List[str]:
    """PSNR/SSIM per image and their mean, then the gain of each network over the rainy input."""
    columns = list(rows[0].scores)
    head = f'{"image":<12}' + ''.join(f' {"PSNR " + c:>11} {"SSIM " + c:>11}' for c in columns)
    lines = [head]
    for row in list(rows) + [Row('mean', {c: tuple(np.mean([r.scores[c] for r in rows], axis=0)) for c in columns})]:
        lines.append(f'{row.image:<12}' + ''.join(f' {row.scores[c][0]:11.2f} {row.scores[c][1]:11.4f}'
                                                  for c in columns))
    for c in columns[1:]:
        gains = [r.scores[c][0] - r.scores['input'][0] for r in rows]
        ssim = np.mean([r.scores[c][1] - r.scores['input'][1] for r in rows])
        each = ', '.join(f'{r.image} {g:+.2f}' for r, g in zip(rows, gains, strict=True))
        lines.append(f'gain of {c}: {np.mean(gains):+.2f} dB PSNR ({each}), {ssim:+.4f} SSIM')
    return lines


def plot(rows: Sequence[Row], images: Dict[str, List[np.ndarray]], labels: Dict[str, str], title: str,
         out_png: str) -> None:
    """Side by side: rainy input | each network's output | ground truth, PSNR in the titles (``labels``:
    column -> name shown)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    columns = ['input'] + [c for c in images if c not in ('input', 'ground truth')] + ['ground truth']
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(3.4 * len(columns), 2.8 * len(rows) + 0.6),
                             squeeze=False)
    for i, row in enumerate(rows):
        for ax, c in zip(axes[i], columns, strict=True):
            ax.imshow(images[c][i][..., ::-1])
            label = {'input': 'rainy input', **labels}.get(c, c)
            ax.set_title(f'{row.image}: {label}' + (f' {row.scores[c][0]:.2f} dB' if c in row.scores else ''),
                         fontsize=9)
            ax.axis('off')
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)


def picture_title(glmha: Net, csa: Net, image_hw: Tuple[int, int], iters: int) -> str:
    """Two lines for the PNG: what was trained, and the trade (counted sizes, measured time per iteration)."""
    def spi(net):
        return f'{net.sec_per_iter:.3f} s/iteration' if net.sec_per_iter else 'not trained'
    trained = f'{glmha.label} ({spi(glmha)})' + (f' and {csa.label} ({spi(csa)})' if csa.sec_per_iter else '')
    return (f'{trained}, {iters} iterations on the demo photos\n'
            f'GLMHA: {glmha.params / 1e6:.3f}M parameters ({change(glmha.params, csa.params)} vs CSA), '
            f'{glmha.gmacs:.3f} GMACs ({change(glmha.gmacs, csa.gmacs)}) at {image_hw[0]}x{image_hw[1]}')


def _minutes(seconds: float) -> str:
    return f'{int(seconds // 60)} min {seconds % 60:02.0f} s'


def main(argv=None):
    started = time.time()
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--workdir', default='demo_run', help='where data, experiments/ and results/ go')
    parser.add_argument('--iters', type=int, default=None,
                        help='train this many iterations instead of the YAML\'s total_iter (the cosine periods and '
                             'progressive stages are stretched to match)')
    parser.add_argument('--compare', action='store_true',
                        help='also train and test the CSA twin (plain Restormer) for the same iterations: about '
                             'twice the time')
    parser.add_argument('--fresh', action='store_true', help='delete the work directory first')
    args = parser.parse_args(argv)
    if args.iters is not None and args.iters < 1:
        parser.error('--iters must be a positive number of iterations')

    workdir = osp.abspath(args.workdir)
    if args.fresh and osp.isdir(workdir):
        shutil.rmtree(workdir)
    os.makedirs(workdir, exist_ok=True)
    if not osp.isdir(osp.join(workdir, DATA_DIR, 'test', 'target')):
        print(f'[demo] building the rain dataset under {osp.join(workdir, DATA_DIR)}', flush=True)
        make_rain_pairs(osp.join(workdir, DATA_DIR))

    runs = [CSA_RUN, GLMHA_RUN] if args.compare else [GLMHA_RUN]
    opts = {run.column: load_options(shipped_file(run.train_opt)) for run in (GLMHA_RUN, CSA_RUN)}
    done = {run.column: train_and_test(run, opts[run.column], workdir, args.iters) for run in runs}
    rows, images = score_runs(workdir, {run.column: done[run.column][0] for run in runs})
    image_hw = images['input'][0].shape[:2]
    glmha, csa = (count_network(run.label, opts[run.column]['network_g'], image_hw) for run in (GLMHA_RUN, CSA_RUN))
    glmha.sec_per_iter = done[GLMHA_RUN.column][1]
    if args.compare:
        csa.sec_per_iter = done[CSA_RUN.column][1]
    iters = args.iters or opts[GLMHA_RUN.column]['train']['total_iter']
    png = osp.join(workdir, 'demo_side_by_side.png')
    plot(rows, images, {run.column: run.label for run in runs}, picture_title(glmha, csa, image_hw, iters), png)
    print()
    print('\n'.join(table_lines(rows)))
    print()
    print('\n'.join(trade_lines(glmha, csa, image_hw)))
    print(f'\n[demo] side-by-side comparison: {png}')
    spent = ', '.join(f'{run.label} {_minutes(done[run.column][2])}' for run in runs)
    print(f'[demo] {iters} iterations; time: {_minutes(time.time() - started)} in all (train + test: {spent})')
