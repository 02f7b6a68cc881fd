"""Find (input, target) pairs in Restormer's paired layout, with errors that say what to fix.

Disk: two folders (``input/`` and ``target/``), pairs matched by file stem
(``filename_tmpl.format(target_stem)`` names the input stem; extensions may
differ).  LMDB: two databases made by ``glmha prepare-lmdb`` (or basicsr's
``make_lmdb_from_imgs``), pairs matched by key through each database's
``meta_info.txt``.
"""
import os
import os.path as osp
from typing import Dict, List

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
_SHOW = 5


def image_files(folder: str, what: str = 'image') -> Dict[str, str]:
    """``{stem: path}`` of the images directly in ``folder`` (sorted by name)."""
    if not osp.isdir(folder):
        raise FileNotFoundError(f'{what} folder {folder!r} does not exist (check the dataroot option and the working '
                                f'directory {os.getcwd()!r})')
    found: Dict[str, str] = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = osp.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS or not osp.isfile(osp.join(folder, name)):
            continue
        if stem in found:
            raise ValueError(f'{what} folder {folder!r} holds two images named {stem!r} '
                             f'({osp.basename(found[stem])} and {name}); keep one')
        found[stem] = osp.join(folder, name)
    if not found:
        raise FileNotFoundError(f'{what} folder {folder!r} holds no images ({", ".join(IMAGE_EXTENSIONS)})')
    return found


def lmdb_keys(db_path: str, what: str = 'lmdb') -> List[str]:
    """Keys listed in ``<db_path>/meta_info.txt`` (first field, extension removed)."""
    meta = osp.join(db_path, 'meta_info.txt')
    if not osp.isdir(db_path):
        raise FileNotFoundError(f'{what} database {db_path!r} does not exist (make it with glmha prepare-lmdb)')
    if not osp.isfile(meta):
        raise FileNotFoundError(f'{what} database {db_path!r} has no meta_info.txt: it is incomplete; re-run '
                                f'glmha prepare-lmdb (it resumes)')
    with open(meta, encoding='utf-8') as f:
        keys = [osp.splitext(line.split(' ')[0])[0] for line in f if line.strip()]
    if not keys:
        raise ValueError(f'{what} database {db_path!r}: meta_info.txt lists no images')
    return keys


def _unpaired(only_a: List[str], only_b: List[str], name_a: str, name_b: str) -> str:
    parts = []
    for only, here, there in ((only_a, name_a, name_b), (only_b, name_b, name_a)):
        if only:
            more = f' and {len(only) - _SHOW} more' if len(only) > _SHOW else ''
            parts.append(f'{len(only)} in {here} without a partner in {there}: {", ".join(only[:_SHOW])}{more}')
    return '; '.join(parts)


def paired_paths(lq_root: str, gt_root: str, backend: str = 'disk', filename_tmpl: str = '{}') -> List[dict]:
    """``[{'lq_path': ..., 'gt_path': ...}]`` sorted by target stem.

    For ``backend='lmdb'`` the "paths" are the database keys (what basicsr's
    ``FileClient('lmdb')`` reads).  Raises FileNotFoundError for a missing
    folder/database and ValueError for images without a partner.
    """
    if backend == 'lmdb':
        lq_keys, gt_keys = lmdb_keys(lq_root, 'input'), lmdb_keys(gt_root, 'target')
        only_gt, only_lq = sorted(set(gt_keys) - set(lq_keys)), sorted(set(lq_keys) - set(gt_keys))
        if only_gt or only_lq:
            raise ValueError(f'unpaired keys between {lq_root!r} and {gt_root!r}: '
                             f'{_unpaired(only_gt, only_lq, "target", "input")}')
        return [{'lq_path': k, 'gt_path': k} for k in sorted(gt_keys)]
    if backend != 'disk':
        raise ValueError(f"io_backend.type {backend!r} is not supported by this dataset; use 'disk' or 'lmdb'")
    lq, gt = image_files(lq_root, 'input'), image_files(gt_root, 'target')
    try:
        wanted = {filename_tmpl.format(stem): stem for stem in gt}
    except (IndexError, KeyError) as exc:
        raise ValueError(f"filename_tmpl {filename_tmpl!r} must have one '{{}}' for the target stem ({exc})") from None
    only_gt = sorted(gt_stem for lq_stem, gt_stem in wanted.items() if lq_stem not in lq)
    only_lq = sorted(stem for stem in lq if stem not in wanted)
    if only_gt or only_lq:
        hint = '' if filename_tmpl == '{}' else f' (input stem = filename_tmpl {filename_tmpl!r} of the target stem)'
        raise ValueError(f'unpaired images between {lq_root!r} and {gt_root!r}{hint}: '
                         f'{_unpaired(only_gt, only_lq, "target", "input")}')
    return [{'lq_path': lq[lq_stem], 'gt_path': gt[gt_stem]} for lq_stem, gt_stem in sorted(wanted.items(),
                                                                                            key=lambda kv: kv[1])]
