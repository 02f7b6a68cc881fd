"""The user's images for compress: listing and checking a folder, the held-out split, crops and full images."""
import os.path as osp
import random
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch

from ..data.pairing import IMAGE_EXTENSIONS, image_files
from .network import CompressError

MIN_TRAIN_IMAGES = 1


def _read(path: str) -> Optional[np.ndarray]:
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    return None if img is None else img[..., ::-1]


def checked_folder(folder: str, what: str, crop: Optional[int] = None, progress=None) -> Dict[str, Tuple[int, int]]:
    """``{path: (H, W)}`` of every image in ``folder``; a missing or empty folder, an unreadable image or (with
    ``crop``) an image smaller than ``crop`` x ``crop`` is a :class:`CompressError` naming it."""
    try:
        files = image_files(folder, what)
    except (FileNotFoundError, ValueError) as exc:
        raise CompressError(str(exc)) from None
    sizes, unreadable, small = {}, [], []
    for path in files.values():
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            unreadable.append(osp.basename(path))
        else:
            sizes[path] = img.shape[:2]
            if crop and min(img.shape[:2]) < crop:
                small.append(f'{osp.basename(path)} ({img.shape[0]}x{img.shape[1]})')
        if progress is not None:
            progress.update(1)
    if unreadable:
        raise CompressError(f'{what} folder {folder!r}: {len(unreadable)} file(s) cannot be read as images: '
                            f'{", ".join(unreadable[:5])}; remove or replace them ({", ".join(IMAGE_EXTENSIONS)})')
    if small:
        raise CompressError(f'{what} folder {folder!r}: {len(small)} image(s) smaller than the {crop}x{crop} crop: '
                            f'{", ".join(small[:5])}; remove them or give a smaller --crop')
    return sizes


def split_held_out(paths: Sequence[str], holdout: Optional[int]) -> Tuple[List[str], List[str]]:
    """(training paths, held-out paths): the last ``holdout`` images in name order (default: 10%, at least 1)."""
    paths = sorted(paths)
    n = len(paths)
    k = max(1, round(0.1 * n)) if holdout is None else holdout
    if k < 1:
        raise CompressError(f'--holdout {holdout}: keep at least one image for the evaluation (or give --val-lq)')
    if n - k < MIN_TRAIN_IMAGES:
        raise CompressError(f'--images holds {n} image(s): too few to keep {k} for evaluation and train on the rest; '
                            f'add images or give --val-lq (a separate validation folder)')
    return paths[:n - k], paths[n - k:]


def to_tensor(img: np.ndarray) -> torch.Tensor:
    """H x W x 3 uint8 RGB -> 1 x 3 x H x W float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1))).float().div(255).unsqueeze(0)


def load(path: str) -> torch.Tensor:
    img = _read(path)
    if img is None:
        raise CompressError(f'image {path!r} cannot be read')
    return to_tensor(img)


def random_crops(paths: Sequence[str], count: int, size: int, seed: int) -> torch.Tensor:
    """``count`` random ``size`` x ``size`` crops (count x 3 x size x size), cycling over ``paths``."""
    rng = random.Random(seed)
    order = list(paths)
    rng.shuffle(order)
    crops = []
    for i in range(count):
        img = _read(order[i % len(order)])
        h, w = img.shape[:2]
        top, left = rng.randint(0, h - size), rng.randint(0, w - size)
        crops.append(to_tensor(img[top:top + size, left:left + size]))
    return torch.cat(crops)


def write_list(path: str, paths: Sequence[str]) -> None:
    with open(path, 'w', encoding='utf-8') as f:
        f.write(''.join(osp.basename(p) + '\n' for p in paths))
