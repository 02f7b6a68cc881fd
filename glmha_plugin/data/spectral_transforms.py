"""Augmentation of the spectral toolboxes: the same random rot90 / flips for every array of a sample."""
import random
from typing import List

import numpy as np


def random_rot_flip(*arrays: np.ndarray, rot: bool = True, flip: bool = True) -> List[np.ndarray]:
    """Rotate by k * 90 degrees (k in 0..3, ``rot``), flip columns, flip rows (each with p = 0.5, ``flip``).

    Arrays are C x H x W (any C); all get the same transform, as upstream's
    ``arguement`` (MST++) / ``arguement_1`` (MST).  Draws from ``random``,
    which basicsr seeds per worker.
    """
    times = random.randint(0, 3) if rot else 0
    flip_cols = flip and random.random() < 0.5
    flip_rows = flip and random.random() < 0.5
    out = []
    for a in arrays:
        a = np.rot90(a, times, axes=(1, 2))
        if flip_cols:
            a = a[:, :, ::-1]
        if flip_rows:
            a = a[:, ::-1, :]
        out.append(np.ascontiguousarray(a))
    return out
