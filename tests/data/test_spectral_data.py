"""ARAD-1K and CASSI datasets, the CASSI forward model, and MATLAB file reading/writing."""
import os.path as osp
import random

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from basicsr.data import build_dataset

from glmha_plugin.data.cassi_simulation import disperse, shift_back, simulate
from glmha_plugin.data.matfile import mat_shape, read_mat, write_mat_v73

from helpers import spectral_data as sd


@pytest.fixture(scope='module')
def arad(tmp_path_factory):
    return sd.make_arad(str(tmp_path_factory.mktemp('arad')))


@pytest.fixture(scope='module')
def cassi(tmp_path_factory):
    return sd.make_cassi(str(tmp_path_factory.mktemp('cassi')))


# --- MATLAB files ---------------------------------------------------------------------------------------


def test_v73_and_v5_read_in_matlab_orientation(tmp_path):
    cube = np.random.default_rng(0).uniform(size=(5, 7, 3)).astype(np.float32)
    sd.write_v73(str(tmp_path / 'a.mat'), 'cube', cube)
    scipy.io.savemat(tmp_path / 'b.mat', {'cube': cube})
    for name in ('a.mat', 'b.mat'):
        path = str(tmp_path / name)
        assert mat_shape(path, 'cube') == ((5, 7, 3), 'cube')
        np.testing.assert_array_equal(read_mat(path, 'cube'), cube)
        np.testing.assert_array_equal(read_mat(path, ['img', 'cube'], slice(1, 4), slice(2, 7)), cube[1:4, 2:7])


def test_missing_variable_and_file_are_explained(tmp_path):
    scipy.io.savemat(tmp_path / 'b.mat', {'img': np.zeros((2, 2))})
    with pytest.raises(KeyError, match="none of the variables.*it has \\['img'\\]"):
        read_mat(str(tmp_path / 'b.mat'), ['img_expand', 'cube'])
    with pytest.raises(FileNotFoundError, match='does not exist'):
        read_mat(str(tmp_path / 'nope.mat'), 'img')


def test_written_v73_is_what_matlab_and_upstream_read(tmp_path):
    cube = np.random.default_rng(1).uniform(size=(6, 4, 31)).astype(np.float32)
    path = str(tmp_path / 'out' / 'ARAD_1K_0901.mat')
    write_mat_v73(path, {'cube': cube})
    assert scipy.io.matlab.matfile_version(path) == (2, 0)          # the MATLAB 7.3 header
    with h5py.File(path, 'r') as f:
        assert f['cube'].shape == (31, 4, 6)                          # MATLAB's column-major layout
        assert f['cube'].attrs['MATLAB_class'] == b'single'
        np.testing.assert_array_equal(np.transpose(f['cube'][()], [2, 1, 0]), cube)


# --- CASSI forward model ----------------------------------------------------------------------------------


def test_simulation_against_the_sum_written_out():
    rng = torch.Generator().manual_seed(0)
    b, c, h, w, step = 2, 4, 3, 5, 2
    gt, mask = torch.rand(b, c, h, w, generator=rng), (torch.rand(h, w, generator=rng) > 0.5).float()
    x, phi = simulate(gt, mask, step)
    width = w + (c - 1) * step
    meas = torch.zeros(b, h, width)
    for i in range(c):
        for col in range(w):
            meas[:, :, col + step * i] += mask[:, col] * gt[:, i, :, col]
    assert phi.shape == (b, c, h, width)
    for i in range(c):
        torch.testing.assert_close(phi[:, i, :, step * i:step * i + w], mask.expand(b, h, w))
        torch.testing.assert_close(x[:, i], meas[:, :, step * i:step * i + w] / c * 2)
    assert phi.sum() == b * c * mask.sum()


def test_disperse_shift_back_shapes_and_errors():
    x = torch.rand(1, 28, 8, 10)
    assert disperse(x).shape == (1, 28, 8, 64)
    assert shift_back(disperse(x).sum(1), 28).shape == (1, 28, 8, 10)
    with pytest.raises(ValueError, match='too narrow'):
        shift_back(torch.rand(1, 8, 20), 28)
    with pytest.raises(ValueError, match='does not fit scenes'):
        simulate(torch.rand(1, 28, 8, 8), torch.rand(1, 1, 8, 9))


# --- ARAD-1K --------------------------------------------------------------------------------------------


def arad_opt(root, phase='train', **kw):
    return {'name': 'arad', 'type': 'ARAD1KDataset', 'dataroot': root, 'phase': phase, **kw}


def test_arad_patch_grid_and_pairing(arad):
    ds = build_dataset(arad_opt(arad, gt_size=16, stride=8, use_rot=False, use_flip=False))
    h, w = sd.ARAD_SIZE
    per_scene = ((h - 16) // 8 + 1) * ((w - 16) // 8 + 1)
    assert len(ds) == per_scene * len(sd.ARAD_TRAIN)        # the last split line (no newline) counts too
    sample = ds[per_scene + 5]                               # second scene, grid row 1, column 1
    assert sample['lq'].shape == (3, 16, 16) and sample['gt'].shape == (31, 16, 16)
    assert sample['gt_path'].endswith('ARAD_1K_0002.mat') and sample['lq_path'].endswith('ARAD_1K_0002.jpg')
    cube = read_mat(sample['gt_path'], 'cube')
    np.testing.assert_array_equal(sample['gt'].numpy(), cube[8:24, 8:24].transpose(2, 0, 1))


def test_arad_rgb_is_min_max_scaled(arad):
    sample = build_dataset(arad_opt(arad, phase='val'))[0]
    rgb = sample['lq']
    assert rgb.shape == (3, *sd.ARAD_SIZE) and sample['gt'].shape == (31, *sd.ARAD_SIZE)
    assert rgb.min() == 0 and rgb.max() == 1


def test_arad_augmentation_moves_rgb_and_cube_together(arad):
    plain = build_dataset(arad_opt(arad, gt_size=16, stride=8, use_rot=False, use_flip=False))
    aug = build_dataset(arad_opt(arad, gt_size=16, stride=8))
    random.seed(3)
    seen = set()
    for _ in range(12):
        a, p = aug[7], plain[7]
        for k in range(4):
            for flip_c in (False, True):
                for flip_r in (False, True):
                    t = [np.rot90(x.numpy(), k, axes=(1, 2)) for x in (p['lq'], p['gt'])]
                    t = [x[:, :, ::-1] if flip_c else x for x in t]
                    t = [x[:, ::-1] if flip_r else x for x in t]
                    if np.array_equal(t[1], a['gt'].numpy()):
                        assert np.array_equal(t[0], a['lq'].numpy())
                        seen.add((k, flip_c, flip_r))
    assert len(seen) > 2


def test_arad_errors(arad, tmp_path):
    with pytest.raises(FileNotFoundError, match='dataroot'):
        build_dataset(arad_opt(str(tmp_path / 'none')))
    with pytest.raises(FileNotFoundError, match='split file'):
        build_dataset(arad_opt(arad, split_file='split_txt/test_list.txt'))
    with pytest.raises(ValueError, match='smaller than gt_size 64'):
        build_dataset(arad_opt(arad, gt_size=64))
    rgb_only = build_dataset(arad_opt(arad, phase='val', spec_folder=None))[0]
    assert 'gt' not in rgb_only and rgb_only['lq'].shape == (3, *sd.ARAD_SIZE)


# --- CASSI ------------------------------------------------------------------------------------------------


def cassi_opt(root, phase='train', **kw):
    folder = 'train' if phase == 'train' else 'Truth'
    return {'name': 'cassi', 'type': 'CASSIDataset', 'dataroot_gt': osp.join(root, folder),
            'mask_path': osp.join(root, 'mask.mat'), 'phase': phase, **kw}


def test_cassi_test_scenes_and_mask(cassi):
    ds = build_dataset(cassi_opt(cassi, phase='val', mat_keys=['img']))
    assert len(ds) == 2
    sample = ds[1]
    truth = scipy.io.loadmat(osp.join(cassi, 'Truth', 'scene02.mat'))['img']
    np.testing.assert_allclose(sample['gt'].numpy(), truth.transpose(2, 0, 1).astype(np.float32))
    mask = scipy.io.loadmat(osp.join(cassi, 'mask.mat'))['mask']
    h, w = sd.CASSI_TEST_SIZE
    np.testing.assert_array_equal(sample['mask'].numpy()[0], mask[:h, :w])


@pytest.mark.parametrize('cache', [False, True])
def test_cassi_training_crops_are_scaled_crops(cassi, cache):
    ds = build_dataset(cassi_opt(cassi, gt_size=32, mosaic_prob=0, use_rot=False, use_flip=False, data_range=65536,
                                 cache_scenes=cache))
    assert len(ds) == 3
    for index in (0, 2):                                     # scene3 is the v7.3 one
        sample = ds[index]
        scene = read_mat(sample['gt_path'], 'img_expand').transpose(2, 0, 1) / 65536
        gt = sample['gt'].numpy()
        hits = [(t, s) for t in range(17) for s in range(17) if np.allclose(scene[:, t:t + 32, s:s + 32], gt)]
        assert hits, 'the sample is not a crop of its scene'
        assert sample['mask'].shape == (1, 32, 32)


def test_cassi_mosaic_is_four_quarter_crops(cassi):
    ds = build_dataset(cassi_opt(cassi, gt_size=32, mosaic_prob=1.0, data_range=65536))
    scenes = [read_mat(p, 'img_expand').transpose(2, 0, 1) / 65536 for p in ds.paths]
    random.seed(0)
    gt = ds[0]['gt'].numpy()
    for top, left in ((0, 0), (0, 16), (16, 0), (16, 16)):
        tile = gt[:, top:top + 16, left:left + 16]
        assert any(np.allclose(s[:, t:t + 16, u:u + 16], tile) for s in scenes for t in range(33) for u in range(33))


def test_cassi_errors(cassi, tmp_path):
    with pytest.raises(FileNotFoundError, match='dataroot_gt'):
        build_dataset({**cassi_opt(cassi), 'dataroot_gt': str(tmp_path / 'none')})
    with pytest.raises(ValueError, match='larger than the mask'):
        build_dataset(cassi_opt(cassi, gt_size=64))
    with pytest.raises(ValueError, match='even gt_size'):
        build_dataset(cassi_opt(cassi, gt_size=31))
