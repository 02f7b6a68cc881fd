"""Image sets in the layout Restormer's MATLAB evaluation scripts read, written independently of glmha_plugin.

``results/<dataset>/<stem>.png`` (a "restored" output) and ``Datasets/test/<dataset>/target/<stem>.png`` under a
root, for the datasets the scripts name: ``Deraining/evaluate_PSNR_SSIM.m`` (Test100, Rain100H, Rain100L,
Test2800, Test1200) and ``Motion_Deblurring/evaluate_gopro_hide.m`` (GoPro, HIDE).  Targets are crops and
resizes of scikit-image's bundled photographs (odd sizes included, one grey image); results are the target with
rain-like streaks, blur and noise left in, rounded to 8 bits.  PNG only (lossless: every decoder reads the same values).
numpy's legacy RandomState is used because its streams are frozen across numpy versions.
fixtures/restormer_matlab_octave.json holds what the MATLAB scripts give on these sets under GNU Octave.
"""
import os
import os.path as osp
from typing import Dict, List

import cv2
import numpy as np

DERAINING = ('Test100', 'Rain100H', 'Rain100L', 'Test2800', 'Test1200')
DEBLURRING = ('GoPro', 'HIDE')
# (scikit-image image, (row, col) of the crop's corner, crop (h, w), output (h, w)) per dataset
_SOURCES: Dict[str, List[tuple]] = {
    'Test100': [('astronaut', (0, 0), (512, 512), (321, 321)), ('coffee', (10, 40), (380, 520), (190, 261)),
                ('camera', (100, 50), (200, 251), (200, 251))],                  # a grey PNG
    'Rain100H': [('chelsea', (0, 0), (300, 451), (300, 451)), ('rocket', (40, 100), (300, 400), (150, 211))],
    'Rain100L': [('immunohistochemistry', (100, 50), (301, 402), (301, 402)), ('cat', (0, 0), (300, 451),
                                                                               (167, 250))],
    'Test2800': [('hubble_deep_field', (200, 300), (400, 500), (233, 289)), ('colorwheel', (0, 0), (370, 371),
                                                                             (185, 185))],
    'Test1200': [('retina', (300, 300), (800, 800), (256, 256)), ('astronaut', (100, 150), (300, 300),
                                                                  (300, 300))],
    'GoPro': [('rocket', (0, 0), (427, 640), (214, 320)), ('coffee', (0, 0), (400, 600), (201, 301))],
    'HIDE': [('chelsea', (20, 30), (260, 400), (260, 400)), ('immunohistochemistry', (0, 0), (512, 512),
                                                                  (224, 224))],
}


def _bgr(im):
    return im[..., ::-1] if im.ndim == 3 else im


def _target(name: str, corner, crop, size) -> np.ndarray:
    from skimage import data
    img = getattr(data, name)()
    img = img[..., :3] if img.ndim == 3 else img
    (r, c), (h, w) = corner, crop
    img = img[r:r + h, c:c + w]
    if img.shape[:2] != tuple(size):
        img = cv2.resize(img, size[::-1], interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)                                            # RGB or grey


def _degrade(img: np.ndarray, rs: np.random.RandomState, deblurring: bool) -> np.ndarray:
    x = img.astype(np.float64)
    if deblurring:                                                              # residual motion blur
        k = np.zeros((7, 7))
        k[3, rs.randint(0, 3):rs.randint(4, 7)] = 1
        x = cv2.filter2D(x, -1, k / k.sum(), borderType=cv2.BORDER_REFLECT)
    else:                                                                       # residual rain streaks
        streaks = np.zeros(img.shape[:2])
        for _ in range(40):
            r, c = rs.randint(0, img.shape[0]), rs.randint(0, img.shape[1])
            cv2.line(streaks, (c, r), (c + rs.randint(-6, 6), r + rs.randint(10, 30)), 1.0, 1)
        streaks = cv2.GaussianBlur(streaks, (3, 3), 0.8)
        x = x + rs.uniform(10, 40) * (streaks[..., None] if x.ndim == 3 else streaks)
        x = cv2.GaussianBlur(x, (3, 3), rs.uniform(0.3, 0.8))
    x = x + rs.normal(0, rs.uniform(1, 8), x.shape)
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def write_sets(root: str, datasets=DERAINING + DEBLURRING, seed: int = 5) -> str:
    """Write ``results/<dataset>/`` and ``Datasets/test/<dataset>/target/`` under ``root``; returns ``root``."""
    for d in datasets:
        rs = np.random.RandomState(seed + sorted(_SOURCES).index(d))
        for out in (osp.join(root, 'results', d), osp.join(root, 'Datasets', 'test', d, 'target')):
            os.makedirs(out, exist_ok=True)
        for i, source in enumerate(_SOURCES[d]):
            target = _target(*source)
            result = _degrade(target, rs, d in DEBLURRING)
            stem = f'{i + 1:03d}_{source[0]}'
            cv2.imwrite(osp.join(root, 'results', d, f'{stem}.png'), _bgr(result))
            cv2.imwrite(osp.join(root, 'Datasets', 'test', d, 'target', f'{stem}.png'), _bgr(target))
    return root
