"""CASSI simulation data of the MST toolbox: 28-band scenes and a coded-aperture mask.

The dataset returns ground-truth cubes and the matching mask crop; the
measurement and the network inputs (H, Phi) are built on the device by
:class:`~glmha_plugin.models.cassi_model.CASSIModel` with
:func:`~glmha_plugin.data.cassi_simulation.simulate` (upstream builds them in
its training loop too).
"""
import glob
import os.path as osp
import random
from dataclasses import dataclass
from typing import Annotated, Dict, List, Tuple

import numpy as np
import torch
from basicsr.utils import get_root_logger
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from .matfile import mat_shape, read_mat
from .spectral_transforms import random_rot_flip


@dataclass(frozen=True)
class CASSIOptions:
    """``datasets.<phase>`` with ``type: CASSIDataset``: 28-band scenes and a coded-aperture mask (MST's data)."""
    dataroot_gt: Annotated[str, 'required', 'folder of scene .mat files (all of them, sorted by name)'] = None
    mask_path: Annotated[str, 'required', 'the mask .mat file (variable mask, H x W)'] = None
    mat_keys: Annotated[List[str], 'scene variable names, the first found wins'] = ('img_expand', 'img')
    data_range: Annotated[float, '> 0', 'the cubes are divided by it (65536 for cave_1024_28, 1 for Truth)'] = 1.0
    gt_size: Annotated[int, '>= 1', 'train: patch side'] = 256
    use_rot: Annotated[bool, "train: upstream's random 90-degree rotations"] = True
    use_flip: Annotated[bool, "train: upstream's random flips"] = True
    mosaic_prob: Annotated[float, '>= 0', '<= 1', 'train: probability that a sample is a 2 x 2 mosaic of gt_size/2 '
                           'crops of four random scenes (upstream: half of every batch)'] = 0.5
    cache_scenes: Annotated[bool, 'train: keep scenes in memory once read (each DataLoader worker holds its own '
                            'copy: combine with num_worker_per_gpu: 0)'] = False


@DATASET_REGISTRY.register()
class CASSIDataset(data.Dataset):
    """Scenes (``.mat``, H x W x bands) and a mask (``.mat`` variable ``mask``, H x W).

    Upstream layout: training scenes ``datasets/cave_1024_28/scene*.mat``
    (variable ``img_expand``, 1024 x 1024 x 28, divided by 65536), test scenes
    ``datasets/TSA_simu_data/Truth/scene01..10.mat`` (``img``, 256 x 256 x 28,
    already in [0, 1]) and ``datasets/TSA_simu_data/mask.mat`` (256 x 256).

    Options: :class:`CASSIOptions`.  Without ``cache_scenes``, v7.3 (HDF5)
    scenes are read patch by patch, older ones whole.
        A mask larger than the patch/scene is cropped (at random in training,
        top-left otherwise), as a larger coded aperture would be.

    Returns ``gt`` (bands x h x w float32), ``mask`` (1 x h x w), ``gt_path``.
    """

    declared_options = {'': CASSIOptions}   # the keys of its block (glmha_plugin.glue.option_schema)

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        root = opt['dataroot_gt']
        if not osp.isdir(root):
            raise FileNotFoundError(f'CASSI dataroot_gt {root!r} does not exist')
        self.paths = sorted(glob.glob(osp.join(root, '*.mat')))
        if not self.paths:
            raise FileNotFoundError(f'no .mat scenes in {root!r}')
        self.keys = tuple(opt.get('mat_keys') or CASSIOptions.mat_keys)
        self.data_range = float(opt.get('data_range', CASSIOptions.data_range))
        self.train = opt['phase'] == 'train'
        self.mask = read_mat(opt['mask_path'], 'mask').astype(np.float32)
        if self.mask.ndim != 2:
            raise ValueError(f'mask in {opt["mask_path"]!r} must be H x W, got {self.mask.shape}')
        self.shapes = [mat_shape(p, self.keys)[0] for p in self.paths]
        self.cache: Dict[str, np.ndarray] = {}
        self.use_cache = bool(opt.get('cache_scenes', CASSIOptions.cache_scenes))
        if self.train:
            self.patch = int(opt.get('gt_size', CASSIOptions.gt_size))
            self.mosaic_prob = float(opt.get('mosaic_prob', CASSIOptions.mosaic_prob))
            if self.mosaic_prob > 0 and self.patch % 2:
                raise ValueError(f'mosaics need an even gt_size, got {self.patch}')
            small = [p for p, s in zip(self.paths, self.shapes, strict=True) if min(s[:2]) < self.patch]
            if small or min(self.mask.shape) < self.patch:
                raise ValueError(f'gt_size {self.patch} is larger than the mask {self.mask.shape} or scenes '
                                 f'{small[:3]}')
        else:
            for path, shape in zip(self.paths, self.shapes, strict=True):
                if shape[0] > self.mask.shape[0] or shape[1] > self.mask.shape[1]:
                    raise ValueError(f'scene {path!r} ({shape[0]} x {shape[1]}) is larger than the mask '
                                     f'{self.mask.shape}')
        get_root_logger().info(f'CASSIDataset {opt.get("name")}: {len(self.paths)} scenes from {root}, mask '
                               f'{self.mask.shape}')

    def __len__(self) -> int:
        return len(self.paths)

    def _region(self, index: int, rows: slice, cols: slice) -> np.ndarray:
        """bands x h x w crop of scene ``index``, divided by data_range."""
        path = self.paths[index]
        if self.use_cache:
            if path not in self.cache:
                self.cache[path] = read_mat(path, self.keys)
            cube = self.cache[path][rows, cols]
        else:
            cube = read_mat(path, self.keys, rows, cols)
        return (cube.astype(np.float32) / self.data_range).transpose(2, 0, 1)

    def _random_crop(self, index: int, size: int) -> np.ndarray:
        h, w = self.shapes[index][:2]
        top, left = random.randint(0, h - size), random.randint(0, w - size)
        return self._region(index, slice(top, top + size), slice(left, left + size))

    def _mask_crop(self, size: Tuple[int, int]) -> np.ndarray:
        h, w = size
        top = random.randint(0, self.mask.shape[0] - h) if self.train else 0
        left = random.randint(0, self.mask.shape[1] - w) if self.train else 0
        return self.mask[None, top:top + h, left:left + w]

    def _mosaic(self) -> np.ndarray:
        half = self.patch // 2
        tiles: List[np.ndarray] = [self._random_crop(random.randrange(len(self.paths)), half) for _ in range(4)]
        return np.concatenate([np.concatenate(tiles[:2], axis=2), np.concatenate(tiles[2:], axis=2)], axis=1)

    def __getitem__(self, index: int) -> dict:
        if not self.train:
            gt = self._region(index, slice(None), slice(None))
        elif random.random() < self.mosaic_prob:
            gt = self._mosaic()
        else:
            gt, = random_rot_flip(self._random_crop(index, self.patch),
                                  rot=self.opt.get('use_rot', CASSIOptions.use_rot),
                                  flip=self.opt.get('use_flip', CASSIOptions.use_flip))
        mask = self._mask_crop(gt.shape[1:])
        return {'gt': torch.from_numpy(np.ascontiguousarray(gt)), 'mask': torch.from_numpy(np.ascontiguousarray(mask)),
                'gt_path': self.paths[index]}
