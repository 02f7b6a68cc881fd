"""The bundled demo: derain real photos with a tiny GLMHA-Restormer, end to end.

``python -m glmha_plugin.demo [--workdir demo_run]`` (or ``bash tools/demo.sh``):

1. builds a small paired deraining set in Restormer's folder layout from the
   colour photos scikit-image ships, with synthetic rain streaks
   (:func:`make_rain_pairs`);
2. trains ``options/tiny/Demo_Deraining_GLMHA.yml`` through basicsr's
   ``train_pipeline`` (``glmha-train``), with basicsr's progress log;
3. tests the final weights through ``test_pipeline`` (``glmha-test``);
4. prints input-vs-output PSNR/SSIM per image and writes a side-by-side PNG
   (rainy input | GLMHA output | ground truth).

Everything is written under the work directory; a second run reuses the data
and resumes training from the last checkpoint (``--auto_resume``).
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys
from typing import Iterator, Tuple

import cv2
import numpy as np

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
DEMO_TRAIN_OPT = osp.join('options', 'tiny', 'Demo_Deraining_GLMHA.yml')
DEMO_TEST_OPT = osp.join('options', 'tiny', 'test_Demo_Deraining_GLMHA.yml')
DATA_DIR = osp.join('datasets', 'demo_rain')
TEST_SET = 'DemoRainTest'  # name of the test dataset in DEMO_TEST_OPT
# Colour photographs bundled with scikit-image (no download needed).
TRAIN_PHOTOS = ('astronaut', 'coffee', 'hubble_deep_field', 'immunohistochemistry', 'motorcycle_left',
                'motorcycle_right', 'retina')
TEST_PHOTOS = ('chelsea', 'rocket')


def add_rain(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Synthetic rain on an H x W x 3 uint8 image: sparse drops smeared into slanted streaks, plus light haze."""
    h, w = img.shape[:2]
    drops = (rng.random((h, w)) < rng.uniform(0.002, 0.006)).astype(np.float32)
    drops *= rng.uniform(0.6, 1.0, size=(h, w)).astype(np.float32)
    length = int(rng.integers(9, 19))
    angle = rng.uniform(-25, 25)
    kernel = np.zeros((length, length), np.float32)
    kernel[:, length // 2] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(kernel.sum(), 1e-6)
    streaks = cv2.filter2D(drops, -1, kernel) * length * rng.uniform(0.35, 0.6)
    out = img.astype(np.float32) / 255.0
    out = out * (1 - 0.05) + 0.05 * 0.85  # haze
    out = out + streaks[..., None]
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def _photo(name: str) -> np.ndarray:
    from skimage import data
    if name.startswith('motorcycle_'):
        img = data.stereo_motorcycle()[0 if name.endswith('left') else 1]
    else:
        img = getattr(data, name)()
    if img.ndim == 2:
        img = np.stack([img] * 3, -1)
    return np.ascontiguousarray(img[..., :3])


def _resize_short_side(img: np.ndarray, short: int) -> np.ndarray:
    h, w = img.shape[:2]
    s = short / min(h, w)
    return cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)


def make_rain_pairs(out_dir: str, train_short_side: int = 192, test_size=(132, 180), seed: int = 0,
                    train_photos=TRAIN_PHOTOS, test_photos=TEST_PHOTOS) -> dict:
    """Write ``{out_dir}/{train,test}/{input,target}/<name>.png`` (Restormer's layout).

    Test images are ``test_size`` (H, W), deliberately not multiples of 8.
    Returns the folders written.
    """
    rng = np.random.default_rng(seed)
    folders = {}
    for split, names in (('train', train_photos), ('test', test_photos)):
        for kind in ('input', 'target'):
            folders[f'{split}_{kind}'] = osp.join(out_dir, split, kind)
            os.makedirs(folders[f'{split}_{kind}'], exist_ok=True)
        for name in names:
            img = _photo(name)
            if split == 'train':
                img = _resize_short_side(img, train_short_side)
            else:
                img = _resize_short_side(img, max(test_size))[:test_size[0], :test_size[1]]
            rainy = add_rain(img, rng)
            cv2.imwrite(osp.join(folders[f'{split}_target'], f'{name}.png'), img[..., ::-1])
            cv2.imwrite(osp.join(folders[f'{split}_input'], f'{name}.png'), rainy[..., ::-1])
    return folders


def _run(cmd, cwd):
    print('$', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def score(pred: np.ndarray, gt: np.ndarray) -> Tuple[float, float]:
    """(PSNR, SSIM) with basicsr's metrics on the RGB images, no border crop."""
    from basicsr.metrics import calculate_psnr, calculate_ssim
    return calculate_psnr(pred, gt, crop_border=0), calculate_ssim(pred, gt, crop_border=0)


def result_images(workdir: str, test_name: str) -> Iterator[Tuple[str, np.ndarray, np.ndarray, np.ndarray]]:
    """(stem, rainy input, output, target) of every demo test image, BGR uint8; the output is the image the
    test run ``test_name`` saved under ``results/``."""
    test_dir = osp.join(workdir, DATA_DIR, 'test')
    vis_dir = osp.join(workdir, 'results', test_name, 'visualization', TEST_SET)
    for name in sorted(osp.splitext(f)[0] for f in os.listdir(osp.join(test_dir, 'target'))):
        out_path = osp.join(vis_dir, f'{name}_{test_name}.png')
        pred = cv2.imread(out_path)
        if pred is None:
            raise FileNotFoundError(f'test output {out_path} is missing: did the test step run?')
        yield (name, cv2.imread(osp.join(test_dir, 'input', f'{name}.png')), pred,
               cv2.imread(osp.join(test_dir, 'target', f'{name}.png')))


def evaluate(workdir: str, test_name: str, out_png: str) -> list:
    """PSNR/SSIM of rainy input and model output against the target; side-by-side PNG. Returns table rows."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    images = list(result_images(workdir, test_name))
    rows = []
    fig, axes = plt.subplots(len(images), 3, figsize=(10, 3.3 * len(images)), squeeze=False)
    for i, (name, lq, pred, gt) in enumerate(images):
        (p_in, s_in), (p_out, s_out) = score(lq, gt), score(pred, gt)
        rows.append((name, p_in, s_in, p_out, s_out))
        for ax, img, title in zip(axes[i], (lq, pred, gt), (f'rainy input {p_in:.2f} dB',
                                                              f'GLMHA-Restormer {p_out:.2f} dB', 'ground truth')):
            ax.imshow(img[..., ::-1])
            ax.set_title(f'{name}: {title}', fontsize=9)
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return rows


def print_table(rows):
    print(f'\n{"image":<12} {"PSNR in":>8} {"SSIM in":>8} {"PSNR out":>9} {"SSIM out":>9}')
    for name, p_in, s_in, p_out, s_out in rows:
        print(f'{name:<12} {p_in:8.2f} {s_in:8.4f} {p_out:9.2f} {s_out:9.4f}')
    mean = np.mean([r[1:] for r in rows], axis=0)
    print(f'{"mean":<12} {mean[0]:8.2f} {mean[1]:8.4f} {mean[2]:9.2f} {mean[3]:9.4f}')
    print(f'gain: {mean[2] - mean[0]:+.2f} dB PSNR, {mean[3] - mean[1]:+.4f} SSIM')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--workdir', default='demo_run', help='where data, experiments/ and results/ go')
    parser.add_argument('--iters', type=int, default=None, help='override total_iter of the demo YAML')
    parser.add_argument('--fresh', action='store_true', help='delete the work directory first')
    args = parser.parse_args(argv)

    workdir = osp.abspath(args.workdir)
    if args.fresh and osp.isdir(workdir):
        shutil.rmtree(workdir)
    os.makedirs(workdir, exist_ok=True)
    if not osp.isdir(osp.join(workdir, DATA_DIR, 'test', 'target')):
        print(f'[demo] building the rain dataset under {osp.join(workdir, DATA_DIR)}', flush=True)
        make_rain_pairs(osp.join(workdir, DATA_DIR))
    train_opt, test_opt = osp.join(ROOT, DEMO_TRAIN_OPT), osp.join(ROOT, DEMO_TEST_OPT)
    # the cosine schedule spans the run (basicsr's CosineAnnealingRestartLR fails past its periods)
    force = ['--force_yml', f'train:total_iter={args.iters}', f'train:scheduler:periods=[{args.iters}]'] if args.iters \
        else []

    print('[demo] training the tiny GLMHA-Restormer (basicsr train_pipeline)', flush=True)
    _run([sys.executable, '-m', 'glmha_plugin.train', '-opt', train_opt, '--auto_resume'] + force, workdir)
    import yaml
    with open(train_opt, encoding='utf-8') as f:
        train_name = yaml.safe_load(f)['name']
    weights = osp.join('experiments', train_name, 'models', 'net_g_latest.pth')
    print('[demo] testing (basicsr test_pipeline)', flush=True)
    _run([sys.executable, '-m', 'glmha_plugin.test', '-opt', test_opt, '--force_yml',
          f'path:pretrain_network_g={weights}'], workdir)
    with open(test_opt, encoding='utf-8') as f:
        test_name = yaml.safe_load(f)['name']
    png = osp.join(workdir, 'demo_side_by_side.png')
    rows = evaluate(workdir, test_name, png)
    print_table(rows)
    print(f'[demo] side-by-side comparison: {png}')


if __name__ == '__main__':
    main()
