"""Paired-image transforms of Restormer's training data (H x W x C numpy arrays)."""
import random
from typing import List, Optional

import cv2
import numpy as np

NUM_DIHEDRAL = 8


def pad_to_size(img: np.ndarray, size: int) -> np.ndarray:
    """Reflect-pad (``cv2.BORDER_REFLECT``, edge repeated) the bottom/right of H x W x C up to ``size`` x ``size``.

    Images at least ``size`` on both sides are returned unchanged.
    """
    h, w = img.shape[:2]
    ph, pw = max(0, size - h), max(0, size - w)
    if ph == 0 and pw == 0:
        return img
    out = cv2.copyMakeBorder(img, 0, ph, 0, pw, cv2.BORDER_REFLECT)
    return out[..., None] if out.ndim == 2 else out


def dihedral(img: np.ndarray, mode: int) -> np.ndarray:
    """One of the 8 flip/rotation variants of H x W x C (``mode`` 0..7), Restormer's numbering.

    0 identity, 1 flip up-down, 2 rot90, 3 rot90 + flip, 4 rot180, 5 rot180 +
    flip, 6 rot270, 7 rot270 + flip (rotations counter-clockwise).  Returns a
    contiguous copy.
    """
    if not 0 <= mode < NUM_DIHEDRAL:
        raise ValueError(f'dihedral mode must be 0..7, got {mode}')
    out = np.rot90(img, k=mode // 2)
    if mode % 2:
        out = np.flipud(out)
    return np.ascontiguousarray(out)


def random_dihedral(*imgs: np.ndarray, mode: Optional[int] = None) -> List[np.ndarray]:
    """The same random variant (``random.randint(0, 7)`` unless ``mode``) applied to every image."""
    mode = random.randint(0, NUM_DIHEDRAL - 1) if mode is None else mode
    return [dihedral(img, mode) for img in imgs]
