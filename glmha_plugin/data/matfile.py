"""MATLAB ``.mat`` files as the spectral toolboxes use them.

* v7.3 files are HDF5 (ARAD-1K cubes, MST++'s outputs): read with h5py,
  written with hdf5storage (upstream's writer), so MATLAB, upstream's
  evaluation and h5py all read them.
* older files (v5/v7: CAVE/KAIST cubes, masks, MST's ``Test_result.mat``):
  scipy.io.

Arrays are returned in MATLAB's orientation (rows, columns, ...): an
H x W x C cube is H x W x C whichever the format (HDF5 stores it reversed,
C x W x H).  scipy.io, h5py and hdf5storage are imported on first use (they
would add a third of a second to every ``import basicsr``).
"""
import os
import os.path as osp
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

Keys = Union[str, Sequence[str]]


def is_v73(path: str) -> bool:
    """True for an HDF5-based (v7.3) MAT file."""
    import h5py
    return h5py.is_hdf5(path)


def _check(path: str) -> None:
    if not osp.isfile(path):
        raise FileNotFoundError(f'MAT file {path!r} does not exist')


def _pick(path: str, available: Sequence[str], keys: Keys) -> str:
    for key in ([keys] if isinstance(keys, str) else keys):
        if key in available:
            return key
    raise KeyError(f'{path!r} has none of the variables {keys!r}; it has {sorted(available)}')


def mat_shape(path: str, keys: Keys) -> Tuple[Tuple[int, ...], str]:
    """(shape in MATLAB orientation, variable name) of the first of ``keys`` in the file, without reading it."""
    _check(path)
    if is_v73(path):
        import h5py
        with h5py.File(path, 'r') as f:
            key = _pick(path, list(f.keys()), keys)
            return tuple(reversed(f[key].shape)), key
    import scipy.io
    shapes = {name: shape for name, shape, _ in scipy.io.whosmat(path)}
    key = _pick(path, list(shapes), keys)
    return tuple(shapes[key]), key


def read_mat(path: str, keys: Keys, rows: Optional[slice] = None, cols: Optional[slice] = None) -> np.ndarray:
    """The first of ``keys`` in the file, optionally only ``rows`` x ``cols`` (MATLAB orientation).

    For v7.3 files only the requested region is read from disk; older files
    are read whole, then cropped.
    """
    _check(path)
    rows, cols = rows or slice(None), cols or slice(None)
    if is_v73(path):
        import h5py
        with h5py.File(path, 'r') as f:
            key = _pick(path, list(f.keys()), keys)
            data = f[key]
            region = data[(Ellipsis, cols, rows)] if data.ndim >= 2 else data[()]
        return np.ascontiguousarray(np.asarray(region).transpose(tuple(reversed(range(np.ndim(region))))))
    import scipy.io
    key = _pick(path, [name for name, _, _ in scipy.io.whosmat(path)], keys)
    return np.ascontiguousarray(scipy.io.loadmat(path, variable_names=[key])[key][rows, cols])


def write_mat_v73(path: str, arrays: Dict[str, np.ndarray]) -> None:
    """Write ``arrays`` as a MATLAB v7.3 file (MATLAB orientation in, HDF5's reversed layout on disk)."""
    import hdf5storage
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    hdf5storage.savemat(path, dict(arrays), format='7.3', store_python_metadata=True)
