"""``UnpairedImageDataset``: degraded images without targets, for distillation (``DistillModel``).

Options::

    type: UnpairedImageDataset
    dataroot_lq: my_rainy_photos          # a folder of images (png, jpg, ...)
    meta_info_file: train_images.txt      # optional: the file names (one a line, relative to dataroot_lq) to use
    io_backend: {type: disk}
    gt_size: 64                           # train: random crops of this side (Restormer's name for the patch size)
    geometric_augs: true                  # train: one of the 8 flip/rot90 variants (Restormer's augmentation)
    use_hflip: true                       # or basicsr's: horizontal flips (and use_rot: rotations / flips)

Items: ``{'lq': C x h x w float32 RGB in [0, 1], 'lq_path': path}`` (no ``gt``: the teacher network's
output is the target).  Train items are ``gt_size`` crops; val/test items are whole images.  An image
smaller than the crop is an error naming it (no silent padding: a padded crop teaches the student the
padding).
"""
import os.path as osp
import random
from dataclasses import dataclass
from typing import Annotated, List, Optional

import numpy as np
from basicsr.data.transforms import augment
from basicsr.utils import FileClient, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from .paired_image_dataset import IOBackendOptions
from .pairing import image_files
from .transforms import random_dihedral


def listed_images(folder: str, meta_info_file=None) -> List[str]:
    """Paths of the images of ``folder`` (sorted), or of the names listed in ``meta_info_file``."""
    found = image_files(folder, 'input')
    if not meta_info_file:
        return list(found.values())
    if not osp.isfile(meta_info_file):
        raise FileNotFoundError(f'meta_info_file {meta_info_file!r} does not exist')
    with open(meta_info_file, encoding='utf-8') as f:
        names = [line.strip() for line in f if line.strip()]
    by_name = {osp.basename(p): p for p in found.values()}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise FileNotFoundError(f'meta_info_file {meta_info_file!r} lists {len(missing)} image(s) not in {folder!r}: '
                                f'{", ".join(missing[:5])}')
    if not names:
        raise ValueError(f'meta_info_file {meta_info_file!r} lists no images')
    return [by_name[n] for n in names]


def random_crop(img: np.ndarray, size: int, path: str) -> np.ndarray:
    h, w = img.shape[:2]
    if h < size or w < size:
        raise ValueError(f'image {path!r} is {h}x{w}, smaller than the training crop {size}x{size} (gt_size); '
                         f'remove it or lower gt_size')
    top, left = random.randint(0, h - size), random.randint(0, w - size)
    return img[top:top + size, left:left + size]


@dataclass(frozen=True)
class UnpairedImageOptions:
    """``datasets.<phase>`` with ``type: UnpairedImageDataset``: degraded images without targets (distillation)."""
    dataroot_lq: Annotated[str, 'required', 'a folder of degraded images'] = None
    meta_info_file: Annotated[Optional[str], 'the names of the images to use, one a line (default: all)'] = None
    io_backend: Annotated[IOBackendOptions, '{type: disk}'] = None
    gt_size: Annotated[Optional[int], '>= 1', 'train (required there): random crops of this side (an image smaller '
                       'than that is an error)'] = None
    geometric_augs: Annotated[bool, "train: one of the 8 flips/rotations (Restormer's)"] = False
    use_hflip: Annotated[bool, "train: random horizontal flips (basicsr's; instead of geometric_augs)"] = False
    use_rot: Annotated[bool, "train: random rotations, vertical flips (basicsr's; not with geometric_augs)"] = False


@DATASET_REGISTRY.register()
class UnpairedImageDataset(data.Dataset):
    """Degraded images alone (no targets); see the module docstring."""

    declared_options = {'': UnpairedImageOptions}   # its block's keys (glmha_plugin.glue.option_schema)

    def __init__(self, opt: dict):
        super().__init__()
        self.opt = opt
        io_opt = dict(opt.get('io_backend') or {'type': 'disk'})
        if io_opt.pop('type') != 'disk':
            raise ValueError(f'UnpairedImageDataset {opt.get("name")!r}: io_backend.type must be disk')
        self.io_opt = io_opt
        self.file_client = None
        self.is_train = opt['phase'] == 'train'
        self.paths = listed_images(opt['dataroot_lq'], opt.get('meta_info_file'))
        if self.is_train:
            if opt.get('gt_size') is None:
                raise ValueError(f'train dataset {opt.get("name")!r}: set gt_size (the training crop size)')
            self.gt_size = int(opt['gt_size'])
            self.geometric_augs = bool(opt.get('geometric_augs', False))
            self.flips = (bool(opt.get('use_hflip', False)), bool(opt.get('use_rot', False)))
            if self.geometric_augs and any(self.flips):
                raise ValueError(f'train dataset {opt.get("name")!r}: give geometric_augs (all 8 flips/rotations) '
                                 f'or use_hflip / use_rot, not both')

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict:
        if self.file_client is None:
            self.file_client = FileClient('disk', **self.io_opt)
        path = self.paths[index % len(self.paths)]
        try:
            img = imfrombytes(self.file_client.get(path, 'lq'), float32=True)
        except AttributeError:   # cv2.imdecode returned None
            img = None
        if img is None:
            raise ValueError(f'cannot decode image {path!r}: the file is not an image or is corrupt; replace or '
                             f'remove it')
        if self.is_train:
            img = random_crop(img, self.gt_size, path)
            if self.geometric_augs:
                img, = random_dihedral(img)
            elif any(self.flips):
                img = augment(img, *self.flips)
        return {'lq': img2tensor(np.ascontiguousarray(img), bgr2rgb=True, float32=True), 'lq_path': path}
