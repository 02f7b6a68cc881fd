"""NTIRE 2022 ARAD-1K (RGB -> 31-band hyperspectral), as MST++'s ``hsi_dataset.py`` reads it."""
import bisect
import os.path as osp
from dataclasses import dataclass
from typing import Annotated, List, Optional

import cv2
import numpy as np
import torch
from basicsr.utils import get_root_logger
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from .matfile import mat_shape, read_mat
from .spectral_transforms import random_rot_flip

CUBE_KEY = 'cube'
DEFAULT_SPLITS = {'train': 'split_txt/train_list.txt', 'val': 'split_txt/valid_list.txt'}


def read_split(path: str) -> List[str]:
    """Scene names of a split file, one a line (blank lines ignored).

    Upstream turns each line ending into '.mat', which drops a last line
    without a newline; here every name counts.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'split file {path!r} does not exist (MST++ ships split_txt/train_list.txt and '
                                f'valid_list.txt; set split_file to yours)')
    with open(path, encoding='utf-8') as f:
        names = [osp.splitext(line.strip())[0] for line in f if line.strip()]
    if not names:
        raise ValueError(f'split file {path!r} lists no scenes')
    return sorted(names)


def read_rgb(path: str, bgr2rgb: bool = True) -> np.ndarray:
    """3 x H x W float32 image scaled to [0, 1] by its own min and max (upstream's normalisation)."""
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f'cannot read image {path!r}')
    if bgr2rgb:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    img = img.astype(np.float32)
    lo, hi = img.min(), img.max()
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    return img.transpose(2, 0, 1)


@dataclass(frozen=True)
class ARAD1KOptions:
    """``datasets.<phase>`` with ``type: ARAD1KDataset``: NTIRE 2022 ARAD-1K, RGB -> 31 bands (MST++'s layout)."""
    dataroot: Annotated[str, 'required', 'the folder with Train_Spec/, Train_RGB/ and split_txt/ (upstream\'s '
                        'dataset/)'] = None
    split_file: Annotated[Optional[str], 'scene list, relative to dataroot (~: split_txt/train_list.txt in the train '
                          'phase, split_txt/valid_list.txt otherwise)'] = None
    rgb_folder: Annotated[str, 'sub-folder of the RGB .jpg images'] = 'Train_RGB'
    spec_folder: Annotated[Optional[str], 'sub-folder of the .mat cubes; ~: RGB only (prediction without '
                           'ground truth)'] = 'Train_Spec'
    bgr2rgb: Annotated[bool, 'feed RGB (upstream) rather than OpenCV\'s BGR order'] = True
    gt_size: Annotated[int, '>= 1', 'train: patch side'] = 128
    stride: Annotated[int, '>= 1', 'train: step of the patch grid (every patch of every scene is a sample)'] = 8
    use_rot: Annotated[bool, 'train: random 90-degree rotations, the same for RGB and cube'] = True
    use_flip: Annotated[bool, 'train: random flips, the same for RGB and cube'] = True


@DATASET_REGISTRY.register()
class ARAD1KDataset(data.Dataset):
    """RGB jpg + 31-band cube pairs of ARAD-1K (MST++'s layout and preprocessing).

    Layout under ``dataroot`` (upstream's ``dataset/``)::

        Train_Spec/ARAD_1K_0001.mat   v7.3 (HDF5), variable 'cube', 482 x 512 x 31
        Train_RGB/ARAD_1K_0001.jpg
        split_txt/train_list.txt      scene names, one a line (valid_list.txt for val)

    Options: :class:`ARAD1KOptions`.  In the train phase every patch of the grid
    ``(H - p) // stride + 1`` x ``(W - p) // stride + 1`` of every scene is one
    sample, as upstream; validation/test samples are whole scenes.

    Returns ``lq`` (3 x h x w, min-max scaled RGB), ``gt`` (31 x h x w),
    ``lq_path``, ``gt_path``; validation/test samples are whole scenes.
    """

    declared_options = {'': ARAD1KOptions}   # the keys of its block (glmha_plugin.glue.option_schema)

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        root = opt['dataroot']
        if not osp.isdir(root):
            raise FileNotFoundError(f'ARAD-1K dataroot {root!r} does not exist')
        self.train = opt['phase'] == 'train'
        split = opt.get('split_file') or DEFAULT_SPLITS['train' if self.train else 'val']
        names = read_split(osp.join(root, split))
        rgb_dir = osp.join(root, opt.get('rgb_folder', ARAD1KOptions.rgb_folder))
        spec = opt.get('spec_folder', ARAD1KOptions.spec_folder)
        spec_dir = None if spec is None else osp.join(root, spec)
        for folder in (rgb_dir, spec_dir):
            if folder is not None and not osp.isdir(folder):
                raise FileNotFoundError(f'ARAD-1K folder {folder!r} does not exist')
        self.rgb_paths = [osp.join(rgb_dir, f'{n}.jpg') for n in names]
        self.spec_paths: Optional[List[str]] = None if spec_dir is None else [
            osp.join(spec_dir, f'{n}.mat') for n in names]
        missing = [p for p in self.rgb_paths + (self.spec_paths or []) if not osp.isfile(p)]
        if missing:
            raise FileNotFoundError(f'{len(missing)} file(s) of split {split!r} are missing, e.g. {missing[:3]}')
        self.bgr2rgb = opt.get('bgr2rgb', ARAD1KOptions.bgr2rgb)
        self.starts = [0]
        if self.train:
            if self.spec_paths is None:
                raise ValueError('the train phase needs spec_folder (the ground-truth cubes)')
            self.patch = int(opt.get('gt_size', ARAD1KOptions.gt_size))
            self.stride = int(opt.get('stride', ARAD1KOptions.stride))
            self.grids = []
            for path in self.spec_paths:
                (h, w, _), _ = mat_shape(path, CUBE_KEY)
                if min(h, w) < self.patch:
                    raise ValueError(f'{path!r} ({h} x {w}) is smaller than gt_size {self.patch}')
                grid = ((h - self.patch) // self.stride + 1, (w - self.patch) // self.stride + 1)
                self.grids.append(grid)
                self.starts.append(self.starts[-1] + grid[0] * grid[1])
            get_root_logger().info(f'ARAD1KDataset {opt.get("name")}: {len(names)} scenes, {self.starts[-1]} '
                                   f'patches of {self.patch} px (stride {self.stride})')
        else:
            self.starts = list(range(len(names) + 1))

    def __len__(self) -> int:
        return self.starts[-1]

    def __getitem__(self, index: int) -> dict:
        scene = bisect.bisect_right(self.starts, index) - 1
        rgb = read_rgb(self.rgb_paths[scene], self.bgr2rgb)
        out = {'lq_path': self.rgb_paths[scene]}
        if self.train:
            r, c = divmod(index - self.starts[scene], self.grids[scene][1])
            rows = slice(r * self.stride, r * self.stride + self.patch)
            cols = slice(c * self.stride, c * self.stride + self.patch)
            cube = read_mat(self.spec_paths[scene], CUBE_KEY, rows, cols)
            rgb, cube = random_rot_flip(rgb[:, rows, cols], cube.transpose(2, 0, 1),
                                        rot=self.opt.get('use_rot', ARAD1KOptions.use_rot),
                                        flip=self.opt.get('use_flip', ARAD1KOptions.use_flip))
        elif self.spec_paths is not None:
            cube = read_mat(self.spec_paths[scene], CUBE_KEY).transpose(2, 0, 1)
            if cube.shape[1:] != rgb.shape[1:]:
                raise ValueError(f'{self.spec_paths[scene]!r} is {cube.shape[1:]} but its RGB image is '
                                 f'{rgb.shape[1:]}')
        else:
            cube = None
        out['lq'] = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32))
        if cube is not None:
            out['gt'] = torch.from_numpy(np.ascontiguousarray(cube, dtype=np.float32))
            out['gt_path'] = self.spec_paths[scene]
        return out
