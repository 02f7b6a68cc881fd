"""The bundled demo's data and file layout, shared by the demo and the measurement tools built on it.

* :func:`make_rain_pairs`: a small paired deraining set in Restormer's folder layout from the photos
  scikit-image ships, with synthetic rain streaks (:func:`add_rain` for the test photos,
  :func:`add_training_rain` for the training tiles), under :data:`DATA_DIR`; :func:`write_pairs` writes
  such a layout for any degradation (the low-light pairs use it too);
* the demo's option files (:data:`DEMO_TRAIN_OPT`, :data:`DEMO_TEST_OPT` and the CSA twin's, named as in a
  checkout);
* :func:`result_images` and :func:`score`: a test run's saved images next to their inputs and targets, and
  basicsr's PSNR/SSIM of them.

Used by :mod:`glmha_plugin.demo.run` (the end-to-end demo), :mod:`glmha_plugin.analysis.compare` (equal-budget
runs on the demo data), :mod:`glmha_plugin.analysis.spectrum_report` (the demo photos as analysis input)
and :mod:`glmha_plugin.demo.lowlight`.
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import Iterator, Tuple

import cv2
import numpy as np

# Named as in a checkout; glmha_plugin.glue.option_files.shipped_file finds them in a wheel too.
DEMO_TRAIN_OPT = osp.join('options', 'tiny', 'Demo_Deraining_GLMHA.yml')
DEMO_TEST_OPT = osp.join('options', 'tiny', 'test_Demo_Deraining_GLMHA.yml')
DEMO_CSA_TRAIN_OPT = osp.join('options', 'tiny', 'Demo_Deraining_Restormer.yml')
DEMO_CSA_TEST_OPT = osp.join('options', 'tiny', 'test_Demo_Deraining_Restormer.yml')
DATA_DIR = osp.join('datasets', 'demo_rain')
TEST_SET = 'DemoRainTest'  # name of the test dataset in DEMO_TEST_OPT
# Colour photographs bundled with scikit-image (no download needed).
TRAIN_PHOTOS = ('astronaut', 'coffee', 'hubble_deep_field', 'immunohistochemistry', 'motorcycle_left',
                'motorcycle_right', 'retina')
TEST_PHOTOS = ('chelsea', 'rocket')
# Training tiles (make_rain_pairs): side, photo scales (x train_short_side), rain draws per tile position.
TILE = 128
TILE_SCALES = (1.0, 1.5)
TILE_ROUNDS = 2


# ---------------------------------------------------------------------------------------------- rain synthesis

@dataclass(frozen=True)
class Streaks:
    """Ranges of one layer of rain streaks; every value is drawn uniformly per layer (integers: [low, high))."""
    density: Tuple[float, float]   # fraction of pixels that start a drop
    length: Tuple[int, int]        # streak length in pixels
    angle: Tuple[float, float]     # degrees from vertical (training: around the image's wind direction)
    strength: Tuple[float, float]  # brightness added along a streak


# The test photos' rain: one layer, 5 % haze (unchanged since the first demo).
TEST_STREAKS = Streaks(density=(0.002, 0.006), length=(9, 19), angle=(-25, 25), strength=(0.35, 0.6))
TEST_HAZE = 0.05
# The training tiles' rain covers the test's on every axis: 1-2 layers around a wind direction in
# TRAIN_WIND (each layer within +-8 degrees of it), lengths, densities, strengths and haze around the test's.
TRAIN_STREAKS = Streaks(density=(0.001, 0.007), length=(7, 25), angle=(-8, 8), strength=(0.3, 0.65))
TRAIN_WIND = (-30.0, 30.0)
TRAIN_LAYERS = (1, 2)   # inclusive
TRAIN_HAZE = (0.0, 0.1)


def streak_layer(shape: Tuple[int, int], rng: np.random.Generator, streaks: Streaks,
                 wind: float = 0.0) -> np.ndarray:
    """One H x W float32 layer: sparse drops smeared by a line kernel of random length and angle (+ ``wind``)."""
    drops = (rng.random(shape) < rng.uniform(*streaks.density)).astype(np.float32)
    drops *= rng.uniform(0.6, 1.0, size=shape).astype(np.float32)
    length = int(rng.integers(*streaks.length))
    angle = wind + rng.uniform(*streaks.angle)
    kernel = np.zeros((length, length), np.float32)
    kernel[:, length // 2] = 1.0
    rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), angle, 1.0)
    kernel = cv2.warpAffine(kernel, rot, (length, length))
    kernel /= max(kernel.sum(), 1e-6)
    return cv2.filter2D(drops, -1, kernel) * length * rng.uniform(*streaks.strength)


def _composite(img: np.ndarray, streaks: np.ndarray, haze: float) -> np.ndarray:
    out = img.astype(np.float32) / 255.0
    out = out * (1 - haze) + haze * 0.85
    out = out + streaks[..., None]
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def add_rain(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The test rain on an H x W x 3 uint8 image: one layer of :data:`TEST_STREAKS`, :data:`TEST_HAZE` haze."""
    return _composite(img, streak_layer(img.shape[:2], rng, TEST_STREAKS), TEST_HAZE)


def add_training_rain(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The training rain: :data:`TRAIN_LAYERS` layers of :data:`TRAIN_STREAKS` around one wind direction."""
    wind = rng.uniform(*TRAIN_WIND)
    haze = rng.uniform(*TRAIN_HAZE)
    layers = int(rng.integers(TRAIN_LAYERS[0], TRAIN_LAYERS[1] + 1))
    streaks = sum(streak_layer(img.shape[:2], rng, TRAIN_STREAKS, wind) for _ in range(layers))
    return _composite(img, streaks, haze)


# ---------------------------------------------------------------------------------------------- photos and pairs

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


def tiles(img: np.ndarray, size: int) -> Iterator[Tuple[int, int, np.ndarray]]:
    """(top, left, tile) covering ``img`` with tiles of ``size`` (smaller images: one tile per short axis)."""
    from ..prepare import patch_corners
    h, w = img.shape[:2]
    th, tw = min(size, h), min(size, w)
    for top in patch_corners(h, th, 0):
        for left in patch_corners(w, tw, 0):
            yield top, left, img[top:top + th, left:left + tw]


def make_rain_pairs(out_dir: str, train_short_side: int = 192, test_size=(132, 180), seed: int = 0,
                    train_photos=TRAIN_PHOTOS, test_photos=TEST_PHOTOS, tile_rounds: int = TILE_ROUNDS) -> dict:
    """Write ``{out_dir}/{train,test}/{input,target}/<name>.png`` (Restormer's layout).

    Training pairs: each photo at ``train_short_side`` with the test's rain
    model (``<photo>.png``), and, ``tile_rounds`` times, :data:`TILE` tiles
    covering the photo at each of :data:`TILE_SCALES`, each tile with its own
    training rain (:func:`add_training_rain`; ``<photo>_s<scale>_r<round>_<top>_<left>.png``).
    Test pairs: each test photo cropped to ``test_size`` (H, W, deliberately
    not multiples of 8) with the test rain (:func:`add_rain`).  One stream of
    seed ``seed`` draws the photos' rain and then the test rain, as in the
    first demo (so the test pairs are unchanged); the tiles have their own.
    Returns the folders written.
    """
    rng = np.random.default_rng(seed)
    folders = write_pairs(out_dir, lambda img: add_rain(img, rng), (('train', train_photos), ('test', test_photos)),
                          train_short_side, test_size)
    tile_rng = np.random.default_rng([seed, 1])
    for name in train_photos:
        img = _photo(name)
        for scale in TILE_SCALES:
            scaled = _resize_short_side(img, round(train_short_side * scale))
            for r in range(tile_rounds):
                for top, left, tile in tiles(scaled, TILE):
                    write_pair(folders, 'train', f'{name}_s{scale:g}_r{r}_{top}_{left}', tile,
                               add_training_rain(tile, tile_rng))
    return folders


def write_pair(folders: dict, split: str, name: str, clean: np.ndarray, degraded: np.ndarray) -> None:
    """``<name>.png`` into the split's target and input folders (H x W x 3 RGB uint8 images)."""
    cv2.imwrite(osp.join(folders[f'{split}_target'], f'{name}.png'), clean[..., ::-1])
    cv2.imwrite(osp.join(folders[f'{split}_input'], f'{name}.png'), degraded[..., ::-1])


def write_pairs(out_dir: str, degrade, splits, train_short_side: int, test_size) -> dict:
    """``{out_dir}/{split}/{input,target}/<name>.png`` for ``splits`` = ((split, photo names), ...): targets
    are the photos (the first split resized to ``train_short_side``, the others cropped to ``test_size``),
    inputs ``degrade(target)`` (H x W x 3 RGB uint8 -> same).  Returns ``{'<split>_<input|target>': folder}``."""
    folders = {}
    for i, (split, names) in enumerate(splits):
        for kind in ('input', 'target'):
            folders[f'{split}_{kind}'] = osp.join(out_dir, split, kind)
            os.makedirs(folders[f'{split}_{kind}'], exist_ok=True)
        for name in names:
            img = _photo(name)
            if i == 0:
                img = _resize_short_side(img, train_short_side)
            else:
                img = _resize_short_side(img, max(test_size))[:test_size[0], :test_size[1]]
            write_pair(folders, split, name, img, degrade(img))
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
