"""Tiny spectral data sets in the upstream toolboxes' layouts, written independently of glmha_plugin.

* ARAD-1K (MST++): ``Train_Spec/*.mat`` as MATLAB v7.3 writes them (HDF5
  with a 512-byte MATLAB header; the H x W x 31 cube stored reversed,
  31 x W x H), ``Train_RGB/*.jpg`` (OpenCV), ``split_txt/{train,valid}_list.txt``.
* CASSI (MST): training scenes (``img_expand``, 16-bit range), test scenes
  (``img`` in [0, 1]) and ``mask.mat``, in scipy's v5 format except one
  training scene in v7.3, so both readers are exercised.
* ``Test_result.mat`` contents at the size of MST's CASSI test (``kaist_like_truth``, ``cassi_result``).

Sizes are deliberately not square and not multiples of the networks' strides.
"""
import os
import os.path as osp

import cv2
import h5py
import numpy as np
import scipy.io

ARAD_SIZE = (36, 44)      # H, W of every ARAD scene
ARAD_BANDS = 31
ARAD_TRAIN = ('ARAD_1K_0001', 'ARAD_1K_0002')
ARAD_VALID = ('ARAD_1K_0901', )
CASSI_BANDS = 28
CASSI_TRAIN_SIZE = (48, 48)
CASSI_TEST_SIZE = (38, 42)
CASSI_MASK_SIZE = (48, 48)


def write_v73(path: str, name: str, array: np.ndarray) -> None:
    """What MATLAB's ``save -v7.3`` produces, as far as readers care: HDF5, MATLAB header, reversed axes."""
    with h5py.File(path, 'w', userblock_size=512) as f:
        dset = f.create_dataset(name, data=np.ascontiguousarray(array.T))
        dset.attrs['MATLAB_class'] = np.bytes_('single' if array.dtype == np.float32 else 'double')
    header = b'MATLAB 7.3 MAT-file, Platform: test, Created on: test HDF5 schema 1.00 .'
    with open(path, 'r+b') as f:
        f.write(header.ljust(116, b' ') + b'\x00' * 8 + b'\x00\x02' + b'IM')


def smooth_cube(rng: np.random.Generator, h: int, w: int, bands: int, lo: float = 0.05,
                hi: float = 0.95) -> np.ndarray:
    """H x W x bands float32 in [lo, hi], smooth in space and spectrum (a learnable toy scene)."""
    yy, xx = np.meshgrid(np.linspace(0, 1, h), np.linspace(0, 1, w), indexing='ij')
    lam = np.linspace(0, 1, bands)
    a, b, c = rng.uniform(1, 4, 3)
    phase = rng.uniform(0, 2 * np.pi, 3)
    cube = (np.sin(a * np.pi * yy[..., None] + phase[0] + lam) * np.cos(b * np.pi * xx[..., None] + phase[1])
            + 0.5 * np.sin(c * np.pi * lam + phase[2] + yy[..., None]))
    cube = (cube - cube.min()) / (cube.max() - cube.min())
    return (lo + (hi - lo) * cube).astype(np.float32)


def make_arad(root: str, seed: int = 0) -> str:
    """ARAD-1K layout under ``root``; returns it."""
    rng = np.random.default_rng(seed)
    for sub in ('Train_Spec', 'Train_RGB', 'split_txt'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    response = rng.uniform(0, 1, (ARAD_BANDS, 3))
    for name in ARAD_TRAIN + ARAD_VALID:
        cube = smooth_cube(rng, *ARAD_SIZE, ARAD_BANDS)
        write_v73(osp.join(root, 'Train_Spec', f'{name}.mat'), 'cube', cube)
        rgb = cube @ response
        rgb = (255 * (rgb - rgb.min()) / (rgb.max() - rgb.min())).round().astype(np.uint8)
        cv2.imwrite(osp.join(root, 'Train_RGB', f'{name}.jpg'), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])
    with open(osp.join(root, 'split_txt', 'train_list.txt'), 'w') as f:
        f.write('\n'.join(ARAD_TRAIN))                       # no newline at the end, as some upstream lists
    with open(osp.join(root, 'split_txt', 'valid_list.txt'), 'w') as f:
        f.write('\n'.join(ARAD_VALID) + '\n')
    return root


def make_cassi(root: str, seed: int = 1) -> str:
    """CASSI layout under ``root``: train/scene{1,2,3}.mat, Truth/scene0{1,2}.mat, mask.mat."""
    rng = np.random.default_rng(seed)
    for sub in ('train', 'Truth'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for i in (1, 2, 3):
        cube = np.round(smooth_cube(rng, *CASSI_TRAIN_SIZE, CASSI_BANDS) * 65535).astype(np.float64)
        path = osp.join(root, 'train', f'scene{i}.mat')
        if i == 3:
            write_v73(path, 'img_expand', cube)
        else:
            scipy.io.savemat(path, {'img_expand': cube})
    for i in (1, 2):
        scipy.io.savemat(osp.join(root, 'Truth', f'scene0{i}.mat'),
                         {'img': smooth_cube(rng, *CASSI_TEST_SIZE, CASSI_BANDS).astype(np.float64)})
    mask = (rng.uniform(size=CASSI_MASK_SIZE) > 0.5).astype(np.float64)
    scipy.io.savemat(osp.join(root, 'mask.mat'), {'mask': mask})
    return root


# ---------------------------------------------------------------------------------------------------------------
# Test_result.mat contents at the size of MST's CASSI test (10 KAIST scenes, 256 x 256, 28 bands), for comparing
# the plugin's MATLAB-protocol metrics with MST's Cal_quality_assessment.m (fixtures/cassi_matlab_octave.json).
# numpy's legacy RandomState is used because its streams are frozen across numpy versions.

KAIST_SHAPE = (10, 256, 256, 28)


def kaist_like_truth(seed: int = 2024) -> np.ndarray:
    """N x H x W x C float32 scenes in [0, 1]: four smooth spectra mixed by smooth abundance maps with sharp-edged
    patches, fine texture, and an illumination map with dark regions (KAIST scenes are mostly dark)."""
    from scipy.ndimage import gaussian_filter
    n, h, w, c = KAIST_SHAPE
    rs = np.random.RandomState(seed)
    lam = np.linspace(0, 1, c)
    scenes = []
    for _ in range(n):
        spectra = 0.5 + 0.5 * np.sin(rs.uniform(1, 6, (4, 1)) * lam + rs.uniform(0, 2 * np.pi, (4, 1)))
        maps = np.stack([gaussian_filter(rs.rand(h, w), 8) for _ in range(4)], -1)
        maps = (maps - maps.min()) / (maps.max() - maps.min())
        for _ in range(6):                                   # patches with sharp edges
            y0, x0 = rs.randint(0, h - 40), rs.randint(0, w - 40)
            maps[y0:y0 + rs.randint(20, 80), x0:x0 + rs.randint(20, 80)] = rs.rand(4)
        texture = 1 + 0.15 * gaussian_filter(rs.randn(h, w), 1.0)
        light = np.clip(gaussian_filter(rs.rand(h, w), 20) * 8 - 3.5, 0.05, 1)
        cube = (maps @ spectra) * (texture * light)[..., None]
        scenes.append(cube / cube.max() * rs.uniform(0.7, 1.0))
    return np.stack(scenes).astype(np.float32)


def cassi_result(case: str, truth: np.ndarray) -> np.ndarray:
    """A prediction for ``truth``: ``'good'`` (truth + noise of sd 0.02, partly white, partly smooth as a
    reconstruction's errors are: about 34 dB, slightly outside [0, 1] near black and white) or ``'poor'`` (a
    blurred, flattened, noisy and offset version: about 15 dB, often outside [0, 1], like an untrained network's
    output)."""
    from scipy.ndimage import gaussian_filter
    rs = np.random.RandomState({'good': 7, 'poor': 8}[case])
    t = truth.astype(np.float64)
    if case == 'good':
        smooth = gaussian_filter(rs.randn(*t.shape), (0, 1.5, 1.5, 0))
        pred = t + 0.02 * (0.8 * smooth / smooth.std() + 0.6 * rs.randn(*t.shape))
    else:
        pred = 0.5 * gaussian_filter(t, (0, 2, 2, 0)) + 0.2 + 0.15 * rs.randn(*t.shape)
    return pred.astype(np.float32)
