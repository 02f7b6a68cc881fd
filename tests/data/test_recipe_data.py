"""Dataset_PairedImage (disk and LMDB), paired LMDB creation, GoPro patch generation."""
import os
import os.path as osp
import random

import cv2
import lmdb
import numpy as np
import pytest
import torch

from glmha_plugin.data import Dataset_PairedImage, dihedral, pad_to_size
from glmha_plugin.prepare import (
    center_crop_pair,
    create_paired_lmdb,
    gopro_patches,
    lmdb_paired,
    patch_corners,
    split_pair_into_patches,
    verify_paired_lmdb,
)


def write_pairs(root, sizes, ext='.png', tmpl='{}'):
    """input/target folders; target = a random image, input = 255 - target (so pairs can be recognised)."""
    rng = np.random.default_rng(0)
    for sub in ('input', 'target'):
        os.makedirs(osp.join(root, sub), exist_ok=True)
    for i, (h, w) in enumerate(sizes):
        gt = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        cv2.imwrite(osp.join(root, 'target', f'im{i}{ext}'), gt)
        cv2.imwrite(osp.join(root, 'input', tmpl.format(f'im{i}') + ext), 255 - gt)
    return root


def dataset(root, phase='train', backend='disk', **kw):
    lq = osp.join(root, 'input') + ('.lmdb' if backend == 'lmdb' else '')
    gt = osp.join(root, 'target') + ('.lmdb' if backend == 'lmdb' else '')
    opt = dict(name='t', phase=phase, scale=1, dataroot_lq=lq, dataroot_gt=gt, io_backend={'type': backend})
    opt.update(kw)
    return Dataset_PairedImage(opt)


def test_dihedral_modes_are_the_eight_symmetries_in_restormer_order():
    img = np.arange(12).reshape(3, 4, 1)
    outs = [dihedral(img, m) for m in range(8)]
    assert len({o.tobytes() + bytes(o.shape) for o in outs}) == 8
    expected = [img, np.flipud(img), np.rot90(img), np.flipud(np.rot90(img)), np.rot90(img, 2),
                np.flipud(np.rot90(img, 2)), np.rot90(img, 3), np.flipud(np.rot90(img, 3))]
    for m, (o, e) in enumerate(zip(outs, expected, strict=True)):
        assert np.array_equal(o, e), m


def test_pad_to_size_reflects_with_edge():
    img = np.arange(6, dtype=np.float32).reshape(2, 3, 1)
    out = pad_to_size(img, 4)
    assert out.shape == (4, 4, 1)
    assert out[:, 3, 0].tolist() == out[:, 2, 0].tolist()  # BORDER_REFLECT: cba|abc
    assert out[2, :3, 0].tolist() == img[1, :, 0].tolist()


@pytest.mark.parametrize('backend', ['disk', 'lmdb'])
def test_train_items_are_aligned_crops_of_every_augmentation(tmp_path, backend):
    root = write_pairs(str(tmp_path), [(40, 50), (20, 27)])  # the second is smaller than gt_size: reflect-padded
    if backend == 'lmdb':
        create_paired_lmdb(osp.join(root, 'input'), osp.join(root, 'target'))
    ds = dataset(root, backend=backend, gt_size=32, geometric_augs=True)
    assert len(ds) == 2
    random.seed(0)
    seen = set()
    for _ in range(40):
        for i in range(2):
            item = ds[i]
            assert item['lq'].shape == item['gt'].shape == (3, 32, 32)
            assert torch.allclose(item['lq'], 1 - item['gt'], atol=1e-6)  # same window, same augmentation
            seen.add(item['gt'].numpy().tobytes()[:64])
    assert len(seen) > 20


def test_val_items_are_whole_images_rgb(tmp_path):
    root = write_pairs(str(tmp_path), [(21, 30)])
    item = dataset(root, phase='val')[0]
    gt_bgr = cv2.imread(osp.join(root, 'target', 'im0.png'))
    assert item['gt'].shape == (3, 21, 30)
    assert np.allclose(item['gt'].permute(1, 2, 0).numpy(), gt_bgr[..., ::-1] / 255.0, atol=1e-6)


def test_filename_tmpl_pairs_names(tmp_path):
    root = write_pairs(str(tmp_path), [(16, 16)], tmpl='{}_rain')
    ds = dataset(root, phase='val', filename_tmpl='{}_rain')
    assert ds.paths[0]['lq_path'].endswith('im0_rain.png')


def test_clear_errors_for_missing_unpaired_and_unreadable(tmp_path):
    with pytest.raises(FileNotFoundError, match='input folder .*does not exist'):
        dataset(str(tmp_path / 'nowhere'))
    root = write_pairs(str(tmp_path / 'a'), [(16, 16), (16, 16)])
    os.remove(osp.join(root, 'input', 'im1.png'))
    cv2.imwrite(osp.join(root, 'input', 'extra.png'), np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match=r'1 in target without a partner in input: im1; 1 in input without a partner '
                                         r'in target: extra'):
        dataset(root)
    root = write_pairs(str(tmp_path / 'b'), [(16, 16)])
    with open(osp.join(root, 'input', 'im0.png'), 'wb') as f:
        f.write(b'not an image')
    with pytest.raises(ValueError, match="cannot decode image .*im0.png"):
        dataset(root, phase='val')[0]
    root = write_pairs(str(tmp_path / 'c'), [(16, 16)])
    cv2.imwrite(osp.join(root, 'input', 'im0.png'), np.zeros((8, 16, 3), np.uint8))
    with pytest.raises(ValueError, match='does not match'):
        dataset(root, phase='val')[0]
    with pytest.raises(FileNotFoundError, match='glmha prepare-lmdb'):
        dataset(root, backend='lmdb')


def test_create_lmdb_resumes_and_verifies(tmp_path, capsys):
    root = write_pairs(str(tmp_path), [(12, 14), (9, 20), (16, 16)])
    inp, tgt = osp.join(root, 'input'), osp.join(root, 'target')
    assert lmdb_paired.main(['--input', inp, '--target', tgt, '--verify_pixels']) == 0
    assert '3 written now, 0 already there' in capsys.readouterr().out
    with open(osp.join(tgt + '.lmdb', 'meta_info.txt')) as f:
        assert f.read().splitlines() == ['im0.png (12,14,3) 1', 'im1.png (9,20,3) 1', 'im2.png (16,16,3) 1']
    # simulate an interrupted run: one key and the meta file missing
    env = lmdb.open(tgt + '.lmdb')
    with env.begin(write=True) as txn:
        txn.delete(b'im1')
    env.close()
    os.remove(osp.join(tgt + '.lmdb', 'meta_info.txt'))
    with pytest.raises(FileNotFoundError, match='incomplete'):
        dataset(root, backend='lmdb')
    assert lmdb_paired.main(['--input', inp, '--target', tgt]) == 0
    out = capsys.readouterr().out
    assert 'target.lmdb: 3 images (1 written now, 2 already there)' in out
    assert 'input.lmdb: 3 images (0 written now, 3 already there)' in out
    assert verify_paired_lmdb(inp + '.lmdb', tgt + '.lmdb', inp, tgt, pixels=True) == 3
    # a tampered value is caught
    env = lmdb.open(inp + '.lmdb')
    with env.begin(write=True) as txn:
        txn.put(b'im2', cv2.imencode('.png', np.zeros((16, 16, 3), np.uint8))[1].tobytes())
    env.close()
    with pytest.raises(ValueError, match="key 'im2' differs"):
        verify_paired_lmdb(inp + '.lmdb', tgt + '.lmdb', inp, tgt, pixels=True)


def test_create_lmdb_refuses_unpaired_folders(tmp_path, capsys):
    root = write_pairs(str(tmp_path), [(8, 8), (8, 8)])
    os.remove(osp.join(root, 'target', 'im0.png'))
    assert lmdb_paired.main(['--input', osp.join(root, 'input'), '--target', osp.join(root, 'target')]) == 2
    assert 'without a partner' in capsys.readouterr().err
    assert not osp.exists(osp.join(root, 'input.lmdb'))


def test_patch_corners_match_restormer_formula():
    for size, patch, overlap in [(720, 512, 256), (1280, 512, 256), (600, 512, 256), (1000, 100, 30)]:
        upstream = list(np.arange(0, size - patch, patch - overlap, dtype=np.int64)) + [size - patch]
        assert patch_corners(size, patch, overlap) == [int(v) for v in upstream]
    with pytest.raises(ValueError, match='overlap'):
        patch_corners(100, 50, 50)


def test_gopro_patches_and_val_crops(tmp_path):
    rng = np.random.default_rng(0)
    src = tmp_path / 'src'
    for sub in ('input', 'target'):
        (src / sub).mkdir(parents=True)
    gt = rng.integers(0, 256, (40, 70, 3), dtype=np.uint8)
    cv2.imwrite(str(src / 'target' / 'f1.png'), gt)
    cv2.imwrite(str(src / 'input' / 'f1.png'), 255 - gt)
    n = split_pair_into_patches(str(src / 'input' / 'f1.png'), str(src / 'target' / 'f1.png'), str(tmp_path / 'lq'),
                                str(tmp_path / 'gt'), patch=32, overlap=16)
    rows, cols = patch_corners(40, 32, 16), patch_corners(70, 32, 16)
    assert n == len(rows) * len(cols) == 2 * 4
    k = 0
    for top in rows:
        for left in cols:
            k += 1
            crop = cv2.imread(str(tmp_path / 'gt' / f'f1-{k}.png'))
            assert np.array_equal(crop, gt[top:top + 32, left:left + 32])
            assert np.array_equal(cv2.imread(str(tmp_path / 'lq' / f'f1-{k}.png')), 255 - crop)
    top, left = center_crop_pair(str(src / 'input' / 'f1.png'), str(src / 'target' / 'f1.png'), str(tmp_path / 'vq'),
                                 str(tmp_path / 'vg'), size=16)
    assert (top, left) == (12, 27)
    assert np.array_equal(cv2.imread(str(tmp_path / 'vg' / 'f1.png')), gt[12:28, 27:43])
    # the command line, on Restormer's folder names
    assert gopro_patches.main(['--src', str(src), '--tar', str(tmp_path / 'train'), '--val_src', str(src),
                               '--val_tar', str(tmp_path / 'val'), '--patch_size', '32', '--overlap', '16',
                               '--val_patch_size', '16', '--workers', '1']) == 0
    assert len(os.listdir(tmp_path / 'train' / 'target_crops')) == 8
    assert os.listdir(tmp_path / 'val' / 'input_crops') == ['f1.png']
