"""Paired LMDB databases in basicsr's format, written resumably and verified.

``create_paired_lmdb(input_dir, target_dir)`` writes ``input_dir.lmdb`` and
``target_dir.lmdb`` (or given paths): one key per image stem (the paired
stems, checked first), the value a PNG encoding of the image
(``cv2.imencode``, ``compress_level``), and ``meta_info.txt`` with lines
``<key>.png (h,w,c) <compress_level>``, the layout basicsr's
``make_lmdb_from_imgs`` produces and ``FileClient('lmdb')`` reads.

Resumable: keys already in a database are skipped, so re-running after an
interruption writes only what is missing; ``meta_info.txt`` is written last,
from the database itself, so its presence marks a complete database.
Verification checks that both databases hold exactly the paired keys and that
every value is a PNG whose header matches ``meta_info.txt`` (``pixels=True``
also decodes every value and compares it with the source image).
"""
import os
import os.path as osp
import struct
import sys
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..data.pairing import paired_paths

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # colour type -> channels as cv2 decodes (palette -> BGR)
COMMIT_EVERY = 200


@dataclass
class LmdbResult:
    path: str
    written: int   # images written by this call
    skipped: int   # images already in the database (resumed)
    total: int


def png_shape(buf: bytes) -> Tuple[int, int, int]:
    """(h, w, c) from a PNG's IHDR header, without decoding."""
    if buf[:8] != PNG_SIGNATURE or buf[12:16] != b'IHDR':
        raise ValueError('not a PNG')
    w, h = struct.unpack('>II', buf[16:24])
    return h, w, PNG_CHANNELS.get(buf[25], 3)


def _ascii_key(stem: str) -> str:
    try:
        stem.encode('ascii')
    except UnicodeEncodeError:
        raise ValueError(f'image name {stem!r} is not ASCII; basicsr LMDB keys must be ASCII, '
                         f'rename the file') from None
    if ' ' in stem or '.' in stem:
        raise ValueError(f'image name {stem!r} contains a space or a dot, which basicsr\'s meta_info parsing '
                         f'cannot handle; rename the file')
    return stem


def _encode(path: str, compress_level: int) -> bytes:
    img = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f'cannot read image {path!r} (not an image or corrupt)')
    ok, buf = cv2.imencode('.png', img, [cv2.IMWRITE_PNG_COMPRESSION, compress_level])
    if not ok:
        raise ValueError(f'cannot encode {path!r} as PNG')
    return buf.tobytes()


def _write_db(db_path: str, items: Sequence[Tuple[str, str]], compress_level: int, desc: str) -> LmdbResult:
    import lmdb
    from tqdm import tqdm

    meta = osp.join(db_path, 'meta_info.txt')
    os.makedirs(db_path, exist_ok=True)
    if osp.exists(meta):
        os.remove(meta)  # rewritten at the end; absent while the database is being completed
    first = _encode(items[0][1], compress_level)
    env = lmdb.open(db_path, map_size=max(len(first) * len(items) * 10, 1 << 24))
    with env.begin() as txn:
        present = {k.decode('ascii') for k in txn.cursor().iternext(values=False)}
    todo = [(k, p) for k, p in items if k not in present]
    pending: List[Tuple[bytes, bytes]] = []

    def commit():
        while True:
            try:
                with env.begin(write=True) as txn:
                    for key, value in pending:
                        txn.put(key, value)
                break
            except lmdb.MapFullError:
                env.set_mapsize(env.info()['map_size'] * 2)
        pending.clear()

    for key, path in tqdm(todo, desc=desc, unit='img'):
        pending.append((key.encode('ascii'), _encode(path, compress_level)))
        if len(pending) >= COMMIT_EVERY:
            commit()
    if pending:
        commit()
    wanted = {k for k, _ in items}
    with env.begin() as txn, open(meta + '.tmp', 'w', encoding='utf-8') as f:
        for key, value in txn.cursor():
            name = key.decode('ascii')
            if name in wanted:
                h, w, c = png_shape(bytes(value))
                f.write(f'{name}.png ({h},{w},{c}) {compress_level}\n')
    os.replace(meta + '.tmp', meta)
    env.close()
    return LmdbResult(db_path, len(todo), len(items) - len(todo), len(items))


def create_paired_lmdb(input_dir: str, target_dir: str, input_lmdb: Optional[str] = None,
                       target_lmdb: Optional[str] = None, filename_tmpl: str = '{}',
                       compress_level: int = 1) -> Dict[str, LmdbResult]:
    """Write (or complete) the two databases; pairs are checked before anything is written."""
    pairs = paired_paths(input_dir, target_dir, 'disk', filename_tmpl)
    keys = [_ascii_key(osp.splitext(osp.basename(p['gt_path']))[0]) for p in pairs]
    input_lmdb = input_lmdb or input_dir.rstrip('/\\') + '.lmdb'
    target_lmdb = target_lmdb or target_dir.rstrip('/\\') + '.lmdb'
    return {
        'input': _write_db(input_lmdb, [(k, p['lq_path']) for k, p in zip(keys, pairs, strict=True)],
                           compress_level, 'input'),
        'target': _write_db(target_lmdb, [(k, p['gt_path']) for k, p in zip(keys, pairs, strict=True)],
                            compress_level, 'target'),
    }


def verify_paired_lmdb(input_lmdb: str, target_lmdb: str, input_dir: Optional[str] = None,
                       target_dir: Optional[str] = None, pixels: bool = False) -> int:
    """Check the databases (see the module docstring); returns the number of pairs, raises ValueError otherwise.

    With ``pixels`` (needs the source folders) every image is decoded and
    compared with its source.
    """
    import lmdb
    from tqdm import tqdm

    pairs = paired_paths(input_lmdb, target_lmdb, 'lmdb')  # keys listed and paired in both meta_info.txt
    sources = None
    if pixels:
        if not (input_dir and target_dir):
            raise ValueError('pixel verification needs the source folders')
        disk = paired_paths(input_dir, target_dir, 'disk')
        sources = {osp.splitext(osp.basename(p['gt_path']))[0]: p for p in disk}
    for db, role in ((input_lmdb, 'lq'), (target_lmdb, 'gt')):
        shapes = {}
        with open(osp.join(db, 'meta_info.txt'), encoding='utf-8') as f:
            for line in f:
                name, shape = line.split(' ')[:2]
                shapes[osp.splitext(name)[0]] = tuple(int(v) for v in shape.strip('()').split(','))
        env = lmdb.open(db, readonly=True, lock=False)
        with env.begin() as txn:
            for pair in tqdm(pairs, desc=f'verify {osp.basename(db)}', unit='img'):
                key = pair[f'{role}_path']
                value = txn.get(key.encode('ascii'))
                if value is None:
                    raise ValueError(f'{db}: key {key!r} is in meta_info.txt but not stored; re-run create')
                if png_shape(bytes(value)) != shapes[key]:
                    raise ValueError(f'{db}: key {key!r} holds {png_shape(bytes(value))}, meta_info says '
                                     f'{shapes[key]}')
                if sources is not None:
                    stored = cv2.imdecode(np.frombuffer(value, np.uint8), cv2.IMREAD_UNCHANGED)
                    original = cv2.imread(sources[key][f'{role}_path'], cv2.IMREAD_UNCHANGED)
                    if stored is None or stored.shape != original.shape or not np.array_equal(stored, original):
                        raise ValueError(f'{db}: key {key!r} differs from {sources[key][f"{role}_path"]!r}')
        env.close()
    return len(pairs)


def main(argv=None) -> int:
    """``glmha prepare-lmdb``: paired LMDBs (resumable), then verification."""
    import argparse
    p = argparse.ArgumentParser(description=(
        'Write INPUT.lmdb and TARGET.lmdb (basicsr format) from paired folders; re-running resumes; '
        'the result is verified. Use with io_backend: {type: lmdb} and dataroot_lq/gt pointing to them.'))
    p.add_argument('--input', required=True,
                   help='folder of degraded images, e.g. datasets/Deraining/train/Rain13K/input')
    p.add_argument('--target', required=True, help='folder of clean images, e.g. .../Rain13K/target')
    p.add_argument('--input_lmdb', help='default: <input>.lmdb')
    p.add_argument('--target_lmdb', help='default: <target>.lmdb')
    p.add_argument('--filename_tmpl', default='{}', help='input stem from target stem (default: {})')
    p.add_argument('--compress_level', type=int, default=1, help='PNG compression 0-9 (basicsr default 1)')
    p.add_argument('--verify_pixels', action='store_true', help='also decode every image and compare with its source')
    args = p.parse_args(argv)
    try:
        done = create_paired_lmdb(args.input, args.target, args.input_lmdb, args.target_lmdb, args.filename_tmpl,
                                  args.compress_level)
        for role, r in done.items():
            print(f'{role}: {r.path}: {r.total} images ({r.written} written now, {r.skipped} already there)')
        n = verify_paired_lmdb(done['input'].path, done['target'].path, args.input, args.target, args.verify_pixels)
    except (OSError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'verified: {n} pairs, keys identical in both databases'
          + (', pixels identical to the sources' if args.verify_pixels else ''))
    return 0
