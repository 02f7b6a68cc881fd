"""Both spectral tasks through basicsr's unmodified train_pipeline / test_pipeline on tiny generated data,
and the files upstream's evaluation consumes, read back with h5py / scipy and recomputed here. The entry
points run in this process (``helpers.runs.run_main``); their processes are tested in test_end_to_end.py."""
import os
import os.path as osp
import re

import h5py
import numpy as np
import pytest
import scipy.io
import torch
from basicsr.archs import build_network

from glmha_plugin.commands import test as glmha_test
from glmha_plugin.commands import train as glmha_train
from glmha_plugin.data import ARAD1KDataset
from glmha_plugin.data.cassi_simulation import simulate
from glmha_plugin.metrics.spectral_metrics import calculate_bandwise_psnr, calculate_cassi_psnr_matlab, calculate_mrae

from helpers import spectral_data as sd
from helpers.common import OPTIONS, load_yaml, train_logs
from helpers.runs import run_main

pytestmark = pytest.mark.slow
TINY = osp.join(OPTIONS, 'tiny')


@pytest.fixture(scope='module')
def spectral_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('spectral_data')
    sd.make_arad(str(root / 'arad'))
    sd.make_cassi(str(root / 'cassi'))
    return root


@pytest.fixture
def spectral_workdir(tmp_path, spectral_data):
    os.mkdir(tmp_path / 'datasets')
    for name in ('arad', 'cassi'):
        os.symlink(spectral_data / name, tmp_path / 'datasets' / name)
    return tmp_path


def trained_network(option_file, cwd):
    opt = load_yaml(option_file)
    net = build_network(opt['network_g'])
    ckpt = torch.load(osp.join(cwd, opt['path']['pretrain_network_g']), weights_only=True)
    net.load_state_dict(ckpt['params'], strict=True)
    return net.eval()


def logged(text, metric):
    return float(re.findall(rf'# {metric}: ([-0-9.]+)', text)[-1])


def test_mst_plus_plus_train_and_test(spectral_workdir):
    train_opt = osp.join(TINY, 'Tiny_SpectralRecon_MST++_GLMHA.yml')
    test_opt = osp.join(TINY, 'test_Tiny_SpectralRecon_MST++_GLMHA.yml')
    run_main(glmha_train.main, ['-opt', train_opt], spectral_workdir)
    log = train_logs(spectral_workdir, 'Tiny_SpectralRecon_MST++_GLMHA')[-1]
    for line in ('Network [GLMHAMSTPlusPlus] is created', 'Model [SpectralReconModel] is created',
                 'Loss [MRAELoss] is created', 'iter:       4,', 'End of training', '# mrae:'):
        assert line in log, line
    proc = run_main(glmha_test.main, ['-opt', test_opt], spectral_workdir)

    # what MST++'s evaluation reads: <scene>.mat, MATLAB v7.3, variable cube, H x W x 31 in [0, 1]
    out = osp.join(spectral_workdir, 'results', 'test_Tiny_SpectralRecon_MST++_GLMHA', 'visualization',
                   'TinyARAD_valid', 'ARAD_1K_0901.mat')
    assert scipy.io.matlab.matfile_version(out) == (2, 0)
    with h5py.File(out, 'r') as f:
        assert list(f.keys()) == ['cube']
        assert f['cube'].shape == (31, sd.ARAD_SIZE[1], sd.ARAD_SIZE[0])
        saved = np.transpose(f['cube'][()], [2, 1, 0])
    sample = ARAD1KDataset({'name': 'v', 'dataroot': osp.join(spectral_workdir, 'datasets', 'arad'),
                            'phase': 'val'})[0]
    with torch.no_grad():
        pred = trained_network(test_opt, spectral_workdir)(sample['lq'][None])[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(saved, np.clip(pred, 0, 1), atol=1e-5)
    assert saved.min() >= 0 and saved.max() <= 1
    assert osp.getsize(out[:-len('.mat')] + '.png') > 0                 # the preview beside it
    expected = calculate_mrae(pred, sample['gt'].numpy().transpose(1, 2, 0))
    assert logged(proc.stdout + proc.stderr, 'mrae') == pytest.approx(expected, abs=1e-4)


def test_mst_train_and_test(spectral_workdir):
    train_opt = osp.join(TINY, 'Tiny_CASSI_MST_GLMHA.yml')
    test_opt = osp.join(TINY, 'test_Tiny_CASSI_MST_GLMHA.yml')
    # plain basicsr: what `python -m basicsr.train` runs through the hook
    run_main(lambda argv: glmha_train.main(argv, redirected_from='basicsr.train'), ['-opt', train_opt],
             spectral_workdir)
    log = train_logs(spectral_workdir, 'Tiny_CASSI_MST_GLMHA')[-1]
    for line in ('Network [GLMHAMST] is created', 'Model [CASSIModel] is created', 'Loss [RMSELoss] is created',
                 'iter:       4,', 'End of training', '# psnr:', '# ssim:'):
        assert line in log, line
    proc = run_main(glmha_test.main, ['-opt', test_opt], spectral_workdir)

    # what MST's MATLAB script loads: Test_result.mat with truth and pred, N x H x W x 28
    out = osp.join(spectral_workdir, 'results', 'test_Tiny_CASSI_MST_GLMHA', 'visualization', 'TinyKAIST',
                   'Test_result.mat')
    content = scipy.io.loadmat(out)
    assert all(osp.getsize(osp.join(osp.dirname(out), f'scene0{i}.png')) > 0 for i in (1, 2))
    assert {'truth', 'pred', 'psnr_list', 'ssim_list', 'sam_list'} <= set(content)
    shape = (2, *sd.CASSI_TEST_SIZE, sd.CASSI_BANDS)
    assert content['truth'].shape == content['pred'].shape == shape
    truth_dir = osp.join(spectral_workdir, 'datasets', 'cassi', 'Truth')
    scenes = [scipy.io.loadmat(osp.join(truth_dir, f))['img'] for f in ('scene01.mat', 'scene02.mat')]
    np.testing.assert_allclose(content['truth'], np.stack(scenes).astype(np.float32))

    mask = scipy.io.loadmat(osp.join(spectral_workdir, 'datasets', 'cassi', 'mask.mat'))['mask']
    h, w = sd.CASSI_TEST_SIZE
    gt = torch.from_numpy(np.stack(scenes).transpose(0, 3, 1, 2)).float()
    with torch.no_grad():
        pred = trained_network(test_opt, spectral_workdir)(*simulate(gt, torch.from_numpy(mask[:h, :w]).float()))
    np.testing.assert_allclose(content['pred'], pred.numpy().transpose(0, 2, 3, 1), atol=1e-5)
    psnr = [calculate_bandwise_psnr(content['pred'][i], content['truth'][i]) for i in range(2)]
    np.testing.assert_allclose(content['psnr_list'].ravel(), psnr, rtol=1e-6)
    text = proc.stdout + proc.stderr
    assert logged(text, 'psnr') == pytest.approx(np.mean(psnr), abs=1e-4)
    # both CASSI protocols in the log, each named: MST's Python metrics and its MATLAB script's
    psnr_matlab = [calculate_cassi_psnr_matlab(content['pred'][i], content['truth'][i]) for i in range(2)]
    assert logged(text, 'psnr_matlab') == pytest.approx(np.mean(psnr_matlab), abs=1e-4)
    assert logged(text, 'psnr_matlab') != pytest.approx(logged(text, 'psnr'), abs=1e-3)
    assert "psnr, ssim: MST's Python metrics" in text
    assert "psnr_matlab, ssim_matlab: MST's MATLAB script Quality_Metrics/Cal_quality_assessment.m" in text
