"""Score ``results/<dataset>/*.png`` against ``<gt_dir>/<dataset>/target`` and print Restormer's table.

``glmha evaluate --task Deraining`` replaces
``Deraining/evaluate_PSNR_SSIM.m`` (Y channel after MATLAB's uint8
``rgb2ycbcr``, Wang SSIM; it also prints the mean over the datasets);
``--task Motion_Deblurring`` replaces ``evaluate_gopro_hide.m`` for GoPro and
HIDE (MATLAB's built-in ``psnr``/``ssim`` on RGB) and
``evaluate_realblur.py`` for RealBlur_J/R (homography-aligned, masked);
``--task LowLight`` scores as Retinexformer's ``Enhancement/test_from_dataset.py``
(PSNR/SSIM on RGB; ``--gt_mean`` is its ``--GT_mean``), here on the saved
8-bit results (the script scores the float output, as ``glmha-test`` with
``options/test_LowLight_*.yml`` does; 8-bit rounding lowers PSNR slightly).
The metrics are in :mod:`glmha_plugin.metrics`.

Output lines use the scripts' wording (``For Rain100L dataset PSNR: ...
SSIM: ...``); a bar chart (PNG) and per-image scores (JSON) are written next
to the results.  Results and targets are paired by file stem (the MATLAB
scripts pair by listing order; ``--pair_by order`` does that).

``--task CASSI --mat results/<name>/visualization/KAIST_10/Test_result.mat``
replaces MST's ``simulation/test_code/Quality_Metrics/Cal_quality_assessment.m``
on the file ``glmha-test`` (or MST's ``test.py``) writes: per scene and the
means, ending with the script's two lines (``The PNSR=...``, its spelling,
and ``The SSIM=...``); per-scene scores go to ``evaluation_CASSI.json`` beside
the file.  The metrics and the script's bug left out are described in
:mod:`glmha_plugin.metrics.spectral_metrics`.
"""
import argparse
import json
import os
import os.path as osp
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from .inference import DEFAULT_INPUT_DIR, TASKS, test_folder

EXTENSIONS = ('.jpg', '.png')  # the MATLAB scripts list *.jpg, then *.png


class EvaluationError(Exception):
    """A problem with the user's folders; printed without a traceback."""


def protocol(task: str, dataset: str, gt_mean: bool = False) -> str:
    """'y' (deraining script), 'rgb' (GoPro/HIDE script), 'realblur' (RealBlur script) or 'lowlight' /
    'lowlight_gt_mean' (Retinexformer's script without / with --GT_mean)."""
    if task == 'LowLight':
        return 'lowlight_gt_mean' if gt_mean else 'lowlight'
    if task == 'Deraining':
        return 'y'
    return 'realblur' if dataset.lower().startswith('realblur') else 'rgb'


def _is_grey_file(path: str) -> bool:
    """True for a single-channel 8-bit image file (MATLAB's imread gives H x W, which the deraining script scores
    without its rgb2ycbcr)."""
    import cv2
    raw = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    return raw is not None and raw.ndim == 2 and raw.dtype == np.uint8


def score_pair(pair: Tuple[str, str, str]) -> Tuple[float, float]:
    """(PSNR, SSIM) of one (protocol, result path, target path)."""
    import cv2

    from ..metrics import (
        calculate_psnr_lowlight,
        calculate_psnr_matlab,
        calculate_ssim_lowlight,
        calculate_ssim_matlab,
        matlab_y,
        realblur_scores,
    )
    kind, result, target = pair
    img, gt = cv2.imread(result, cv2.IMREAD_COLOR), cv2.imread(target, cv2.IMREAD_COLOR)
    for path, im in ((result, img), (target, gt)):
        if im is None:
            raise EvaluationError(f'cannot read image {path!r}')
    if img.shape[:2] != gt.shape[:2]:
        raise EvaluationError(f'{result!r} is {img.shape[1]}x{img.shape[0]} but its target {target!r} is '
                              f'{gt.shape[1]}x{gt.shape[0]}')
    if kind == 'y':  # evaluate_PSNR_SSIM.m: Y of an RGB file, the values of a grey one (MATLAB reads it as H x W)
        img, gt = (im[..., :1] if _is_grey_file(path) else matlab_y(im) for path, im in ((result, img), (target, gt)))
    if kind == 'realblur':
        return realblur_scores(img[..., ::-1], gt[..., ::-1])
    if kind.startswith('lowlight'):
        gt_mean = kind == 'lowlight_gt_mean'
        return calculate_psnr_lowlight(img, gt, gt_mean=gt_mean), calculate_ssim_lowlight(img, gt, gt_mean=gt_mean)
    return calculate_psnr_matlab(img, gt), calculate_ssim_matlab(img, gt)  # 'y': one channel, scored as it is


def _listing(folder: str, what: str) -> List[str]:
    if not osp.isdir(folder):
        raise EvaluationError(f'{what} folder {folder!r} does not exist')
    names = os.listdir(folder)
    files = [osp.join(folder, n) for ext in EXTENSIONS for n in sorted(names) if osp.splitext(n)[1].lower() == ext]
    if not files:
        raise EvaluationError(f'{what} folder {folder!r} has no .jpg or .png images')
    return files


def pair_files(result_dir: str, target_dir: str, pair_by: str = 'name') -> List[Tuple[str, str]]:
    """(result, target) paths; by stem, or by listing order like the MATLAB scripts."""
    results, targets = _listing(result_dir, 'result'), _listing(target_dir, 'target')
    if pair_by == 'order':
        if len(results) != len(targets):
            raise EvaluationError(f'{len(results)} results in {result_dir!r} but {len(targets)} targets in '
                                  f'{target_dir!r}')
        return list(zip(results, targets, strict=True))
    by_stem = {osp.splitext(osp.basename(t))[0]: t for t in targets}
    missing = [r for r in results if osp.splitext(osp.basename(r))[0] not in by_stem]
    unscored = sorted(set(by_stem) - {osp.splitext(osp.basename(r))[0] for r in results})
    if missing or unscored:
        raise EvaluationError(
            f'results in {result_dir!r} and targets in {target_dir!r} do not pair by name: '
            + (f'{len(missing)} results without a target (e.g. {osp.basename(missing[0])}); ' if missing else '')
            + (f'{len(unscored)} targets without a result (e.g. {unscored[0]}); ' if unscored else '')
            + 'restore every image with glmha infer, or pass --pair_by order to pair by listing order as the '
              'MATLAB scripts do')
    return [(r, by_stem[osp.splitext(osp.basename(r))[0]]) for r in results]


def target_folder(task: str, gt_dir: str, dataset: str) -> str:
    """``<gt_dir>/<dataset>/target``; LowLight: ``<gt_dir>/<dataset>/Test/target`` (Retinexformer's layout)."""
    return test_folder(task, gt_dir, dataset, 'target') if task == 'LowLight' else osp.join(gt_dir, dataset, 'target')


def evaluate(task: str, datasets: Sequence[str], result_dir: str, gt_dir: str, pair_by: str = 'name',
             workers: int = 1, gt_mean: bool = False) -> Dict[str, dict]:
    """``{dataset: {'psnr', 'ssim', 'protocol', 'images': {stem: [psnr, ssim]}}}`` (progress bar)."""
    from tqdm import tqdm
    jobs = {d: pair_files(osp.join(result_dir, d), target_folder(task, gt_dir, d), pair_by) for d in datasets}
    scores = {}
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for d, pairs in jobs.items():
            kind = protocol(task, d, gt_mean)
            items = [(kind, r, t) for r, t in pairs]
            mapped = pool.map(score_pair, items) if pool else map(score_pair, items)
            per_image = list(tqdm(mapped, total=len(items), desc=d, unit='img'))
            psnr, ssim = (float(np.mean(v)) for v in zip(*per_image, strict=True))
            scores[d] = {'psnr': psnr, 'ssim': ssim, 'protocol': kind, 'images': {
                osp.splitext(osp.basename(r))[0]: [p, s] for (r, _), (p, s) in zip(pairs, per_image, strict=True)}}
    finally:
        if pool:
            pool.shutdown()
    return scores


def identical_note(name: str, s: dict) -> Optional[str]:
    """A line for a dataset where some results equal their targets (PSNR inf, so the mean is inf too)."""
    psnrs = [p for p, _ in s['images'].values()]
    same = sum(1 for p in psnrs if p == float('inf'))
    if not same:
        return None
    rest = [p for p in psnrs if p != float('inf')]
    other = f'; the mean PSNR over the other {len(rest)}: {np.mean(rest):f}' if rest else ''
    return (f'  ({same} of {len(psnrs)} {name} results are identical to their targets: PSNR inf, so the mean PSNR '
            f'is inf{other})')
def evaluate_cassi(mat_path: str) -> dict:
    """``{'psnr', 'ssim', 'scenes': [[psnr, ssim], ...], 'shape', 'protocol'}`` of a ``Test_result.mat`` (``pred`` and
    ``truth``, N x H x W x C), as ``Cal_quality_assessment.m`` scores it (progress bar)."""
    from tqdm import tqdm

    from ..data.matfile import read_mat
    from ..metrics import cassi_matlab_scores
    from ..metrics.matlab_metrics import MIN_SSIM_SIDE
    try:
        pred, truth = read_mat(mat_path, 'pred'), read_mat(mat_path, 'truth')
    except (OSError, KeyError, ValueError) as exc:
        reason = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc  # a KeyError's str() adds quotes
        raise EvaluationError(f'cannot read pred and truth from {mat_path!r} ({reason}); give the Test_result.mat '
                              f'that glmha-test or MST\'s test.py wrote') from None
    if pred.ndim != 4 or pred.shape != truth.shape:
        raise EvaluationError(f'{mat_path!r}: pred {pred.shape} and truth {truth.shape} must both be N x H x W x C '
                              f'(scenes, rows, columns, bands) as MST\'s test.py writes them')
    for name, cube in (('pred', pred), ('truth', truth)):
        bad = np.isnan(cube).any(axis=(1, 2, 3))
        if bad.any():
            raise EvaluationError(f'{mat_path!r}: {name} has NaN values in scene(s) {np.flatnonzero(bad) + 1} '
                                  f'(1-based); MATLAB\'s im2uint8 would score them as 0 without a word: find where '
                                  f'they come from before scoring')
    if min(pred.shape[1:3]) < MIN_SSIM_SIDE:
        raise EvaluationError(f'{mat_path!r}: scenes of {pred.shape[1]} x {pred.shape[2]} are smaller than SSIM\'s '
                              f'{MIN_SSIM_SIDE} x {MIN_SSIM_SIDE} window')
    scenes = []
    for i in tqdm(range(pred.shape[0]), desc=osp.basename(mat_path), unit='scene'):
        scenes.append(list(cassi_matlab_scores(pred[i], truth[i])))
    psnr, ssim = (float(np.mean(v)) for v in zip(*scenes, strict=True))
    return {'psnr': psnr, 'ssim': ssim, 'scenes': scenes, 'shape': list(pred.shape),
            'protocol': "MST's Quality_Metrics/Cal_quality_assessment.m, without its pixel overwrite"}


def report_cassi(scores: dict) -> str:
    """Per scene, then ``Cal_quality_assessment.m``'s two lines (its spelling ``PNSR``)."""
    n = len(scores['scenes'])
    lines = [f'Scene {i + 1}: PSNR={p:f} SSIM={s:f}' for i, (p, s) in enumerate(scores['scenes'])]
    if n != 10:
        lines.append(f'({n} scenes; MST\'s script itself loops over exactly 10, the KAIST test set)')
    return '\n'.join(lines + [f'The PNSR={scores["psnr"]:f}', f'The SSIM={scores["ssim"]:f}'])


def report(task: str, scores: Dict[str, dict]) -> str:
    """The MATLAB scripts' lines, plus the mean over datasets for deraining (as evaluate_PSNR_SSIM.m); a note
    under a dataset whose results include copies of their targets (PSNR inf, as MATLAB's psnr gives)."""
    lines = []
    for d, s in scores.items():
        lines.append(f'For {d} dataset PSNR: {s["psnr"]:f} SSIM: {s["ssim"]:f}')
        note = identical_note(d, s)
        if note:
            lines.append(note)
    if task == 'Deraining' and scores:
        lines.append(f'For all datasets PSNR: {np.mean([s["psnr"] for s in scores.values()]):f} '
                     f'SSIM: {np.mean([s["ssim"] for s in scores.values()]):f}')
    return '\n'.join(lines)


def plot(task: str, scores: Dict[str, dict], path: str) -> None:
    """Bar chart of per-dataset PSNR and SSIM (PNG); an infinite PSNR (results identical to their targets) is
    drawn as a hatched bar above the finite ones and labelled inf."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    names = list(scores)
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.2 * len(names), 3.6))
    for ax, key, label in ((axes[0], 'psnr', 'PSNR (dB)'), (axes[1], 'ssim', 'SSIM')):
        vals = [scores[n][key] for n in names]
        finite = [v for v in vals if np.isfinite(v)]
        top = max(finite) * 1.1 if finite and max(finite) > 0 else 100.0   # where an inf bar ends
        heights = [v if np.isfinite(v) else top for v in vals]
        bars = ax.bar(names, heights, color='tab:blue')
        for bar, v in zip(bars, vals, strict=True):
            if not np.isfinite(v):
                bar.set_hatch('//')
                bar.set_alpha(0.5)
        ax.bar_label(bars, labels=['inf' if not np.isfinite(v) else f'{v:.2f}' if key == 'psnr' else f'{v:.4f}'
                                   for v in vals], fontsize=8)
        ax.set_ylabel(label)
        ax.set_ylim(min(heights) * 0.9, max(heights) * 1.05)
        ax.tick_params(axis='x', labelrotation=30)
    fig.suptitle(f'{task}: ' + ', '.join(f'{n} ({scores[n]["protocol"]})' for n in names), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--task', choices=sorted(TASKS) + ['CASSI'], required=True)
    p.add_argument('--mat', help="CASSI: the Test_result.mat to score (pred and truth, as MST's test.py writes)")
    p.add_argument('--result_dir', default='results', help='folder with <dataset>/<stem>.png (default: results)')
    p.add_argument('--gt_dir', help='folder with <dataset>/target (default: datasets/<task>/test; LowLight: data, '
                   'with <dataset>/Test/target)')
    p.add_argument('--dataset', nargs='+', help='datasets (default: all of the task)')
    p.add_argument('--pair_by', choices=('name', 'order'), default='name')
    p.add_argument('--gt_mean', '--GT_mean', action='store_true',
                   help="LowLight: rescale each result to its target's mean grey level first "
                                               "(Retinexformer's --GT_mean)")
    p.add_argument('--workers', type=int, default=min(4, os.cpu_count() or 1))
    p.add_argument('--plot', help='bar chart PNG (default: <result_dir>/evaluation_<task>.png)')
    p.add_argument('--json', help='per-image scores (default: <result_dir>/evaluation_<task>.json; CASSI: '
                   'evaluation_CASSI.json beside the .mat)')
    return p


def main_cassi(args: argparse.Namespace) -> int:
    """``--task CASSI --mat ...``: the per-scene scores and the script's two lines; the JSON beside the file."""
    try:
        scores = evaluate_cassi(args.mat)
    except EvaluationError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    json_path = args.json or osp.join(osp.dirname(osp.abspath(args.mat)), 'evaluation_CASSI.json')
    with open(json_path, 'w', encoding='utf-8') as f:
        json.dump(dict(scores, mat=args.mat), f, indent=1)
    n, h, w, c = scores['shape']
    print(f"{args.mat}: {n} scenes of {h} x {w} x {c}, scored as MST's Cal_quality_assessment.m (per-scene "
          f'scores: {json_path})')
    print(report_cassi(scores))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.task == 'CASSI' and args.mat is None:
        parser.error('--task CASSI scores one Test_result.mat: give it with --mat <file>')
    if args.mat is not None and args.task != 'CASSI':
        parser.error(f'--mat is for --task CASSI; --task {args.task} scores the images in --result_dir')
    if args.task == 'CASSI':
        return main_cassi(args)
    datasets = args.dataset or list(TASKS[args.task])
    gt_dir = args.gt_dir or (DEFAULT_INPUT_DIR[args.task] if args.task == 'LowLight'
                             else osp.join(DEFAULT_INPUT_DIR[args.task], 'test'))
    try:
        scores = evaluate(args.task, datasets, args.result_dir, gt_dir, args.pair_by, args.workers, args.gt_mean)
    except EvaluationError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(report(args.task, scores))
    plot_path = args.plot or osp.join(args.result_dir, f'evaluation_{args.task}.png')
    json_path = args.json or osp.join(args.result_dir, f'evaluation_{args.task}.json')
    with open(json_path, 'w', encoding='utf-8') as f:   # first: the scores are kept whatever the plot does
        json.dump(scores, f, indent=1)                   # an infinite PSNR is written as Infinity (Python's json)
    print(f'per-image scores: {json_path}')
    plot(args.task, scores, plot_path)
    print(f'plot: {plot_path}')
    return 0
