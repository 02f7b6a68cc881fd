"""The bundled demo's data and file layout, shared by the demo and the measurement tools built on it.

* :func:`make_rain_pairs`: a small paired deraining set in Restormer's folder layout from the colour photos
  scikit-image ships, with synthetic rain streaks (:func:`add_rain`), under :data:`DATA_DIR`;
* the demo's option files (:data:`DEMO_TRAIN_OPT`, :data:`DEMO_TEST_OPT`, relative to :data:`ROOT`);
* :func:`result_images` and :func:`score`: a test run's saved images next to their inputs and targets, and
  basicsr's PSNR/SSIM of them.

Used by :mod:`glmha_plugin.demo` (the end-to-end demo), :mod:`glmha_plugin.analysis.compare` (equal-budget
runs on the demo data) and :mod:`glmha_plugin.analysis.spectrum_report` (the demo photos as analysis input).
"""
import os
import os.path as osp
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
