"""GoPro training patches as Restormer's ``generate_patches_gopro.py`` makes them.

Training pairs are cut into ``patch`` x ``patch`` crops (512) with ``overlap``
(256): corners ``0, s, 2s, ... < size - patch`` plus ``size - patch`` on each
axis (s = patch - overlap), written as ``<stem>-<n>.png`` with n counting
from 1, rows outer, columns inner.  Validation pairs are centre crops
(256) named ``<stem>.png``.  Images smaller than the patch are written
whole as ``<stem>.png`` (Restormer's fallback).
"""
import os
import os.path as osp
import sys
from typing import List, Tuple

import cv2


def patch_corners(size: int, patch: int, overlap: int) -> List[int]:
    """Top (or left) corners along one axis of length ``size``."""
    if not 0 <= overlap < patch:
        raise ValueError(f'overlap ({overlap}) must be >= 0 and smaller than the patch ({patch})')
    return list(range(0, size - patch, patch - overlap)) + [size - patch]


def _read_pair(lq_path: str, gt_path: str):
    lq, gt = cv2.imread(lq_path, cv2.IMREAD_UNCHANGED), cv2.imread(gt_path, cv2.IMREAD_UNCHANGED)
    for path, img in ((lq_path, lq), (gt_path, gt)):
        if img is None:
            raise ValueError(f'cannot read image {path!r} (not an image or corrupt)')
    if lq.shape[:2] != gt.shape[:2]:
        raise ValueError(f'{lq_path!r} is {lq.shape[1]}x{lq.shape[0]} but {gt_path!r} is {gt.shape[1]}x{gt.shape[0]}')
    return lq, gt


def _write(img, path: str) -> None:
    if not cv2.imwrite(path, img):
        raise OSError(f'cannot write {path!r}')


def split_pair_into_patches(lq_path: str, gt_path: str, lq_out: str, gt_out: str, patch: int = 512,
                            overlap: int = 256) -> int:
    """Write the crops of one pair into ``lq_out``/``gt_out``; returns how many pairs were written."""
    lq, gt = _read_pair(lq_path, gt_path)
    stem = osp.splitext(osp.basename(lq_path))[0]
    os.makedirs(lq_out, exist_ok=True)
    os.makedirs(gt_out, exist_ok=True)
    h, w = lq.shape[:2]
    if h < patch or w < patch:
        _write(lq, osp.join(lq_out, f'{stem}.png'))
        _write(gt, osp.join(gt_out, f'{stem}.png'))
        return 1
    n = 0
    for top in patch_corners(h, patch, overlap):
        for left in patch_corners(w, patch, overlap):
            n += 1
            window = (slice(top, top + patch), slice(left, left + patch))
            _write(lq[window], osp.join(lq_out, f'{stem}-{n}.png'))
            _write(gt[window], osp.join(gt_out, f'{stem}-{n}.png'))
    return n


def _pairs_in(src: str):
    from ..data.pairing import paired_paths
    return paired_paths(osp.join(src, 'input'), osp.join(src, 'target'))


def main(argv=None) -> int:
    """``glmha prepare-gopro``: Restormer's GoPro preparation (training crops and validation crops)."""
    import argparse
    from concurrent.futures import ProcessPoolExecutor

    from tqdm import tqdm
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--src', default='datasets/Motion_Deblurring/Downloads/GoPro',
                   help='training pairs: SRC/input, SRC/target (default: %(default)s)')
    p.add_argument('--tar', default='datasets/Motion_Deblurring/train/GoPro',
                   help='writes TAR/input_crops, TAR/target_crops (default: %(default)s)')
    p.add_argument('--val_src', default='datasets/Motion_Deblurring/test/GoPro',
                   help='validation source pairs (default: %(default)s); "none" to skip')
    p.add_argument('--val_tar', default='datasets/Motion_Deblurring/val/GoPro', help='(default: %(default)s)')
    p.add_argument('--patch_size', type=int, default=512)
    p.add_argument('--overlap', type=int, default=256)
    p.add_argument('--val_patch_size', type=int, default=256)
    p.add_argument('--workers', type=int, default=min(8, os.cpu_count() or 1))
    args = p.parse_args(argv)
    patch_corners(args.patch_size, args.patch_size, args.overlap)  # validates the overlap
    try:
        train = _pairs_in(args.src)
        val = [] if args.val_src.lower() == 'none' else _pairs_in(args.val_src)
    except (OSError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    lq_out, gt_out = osp.join(args.tar, 'input_crops'), osp.join(args.tar, 'target_crops')
    val_lq, val_gt = osp.join(args.val_tar, 'input_crops'), osp.join(args.val_tar, 'target_crops')
    jobs = [(split_pair_into_patches, (q['lq_path'], q['gt_path'], lq_out, gt_out, args.patch_size, args.overlap))
            for q in train]
    jobs += [(center_crop_pair, (q['lq_path'], q['gt_path'], val_lq, val_gt, args.val_patch_size)) for q in val]
    pool = ProcessPoolExecutor(args.workers) if args.workers > 1 else None
    try:
        futures = [pool.submit(fn, *a) for fn, a in jobs] if pool else None
        results = []
        for i in tqdm(range(len(jobs)), desc='GoPro crops', unit='img'):
            results.append(futures[i].result() if pool else jobs[i][0](*jobs[i][1]))
    finally:
        if pool:
            pool.shutdown()
    print(f'{sum(results[:len(train)])} training pairs from {len(train)} images -> {lq_out}, {gt_out}')
    if val:
        print(f'{len(val)} validation crops -> {val_lq}, {val_gt}')
    return 0


def center_crop_pair(lq_path: str, gt_path: str, lq_out: str, gt_out: str, size: int = 256) -> Tuple[int, int]:
    """Write the centred ``size`` x ``size`` crop of one pair as ``<stem>.png``; returns its (top, left)."""
    lq, gt = _read_pair(lq_path, gt_path)
    h, w = lq.shape[:2]
    if h < size or w < size:
        raise ValueError(f'{lq_path!r} ({w}x{h}) is smaller than the validation crop ({size})')
    top, left = (h - size) // 2, (w - size) // 2
    stem = osp.splitext(osp.basename(lq_path))[0]
    os.makedirs(lq_out, exist_ok=True)
    os.makedirs(gt_out, exist_ok=True)
    _write(lq[top:top + size, left:left + size], osp.join(lq_out, f'{stem}.png'))
    _write(gt[top:top + size, left:left + size], osp.join(gt_out, f'{stem}.png'))
    return top, left
