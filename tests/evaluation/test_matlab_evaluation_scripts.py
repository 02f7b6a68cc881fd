"""The plugin's replacements of the upstream MATLAB evaluation scripts give what the scripts themselves give.

The reference values were produced once by running the scripts under GNU Octave on generated inputs
(fixtures/cassi_matlab_octave.json, fixtures/restormer_matlab_octave.json say which script, which input and how);
these tests re-create the inputs and score them with ``glmha evaluate``'s main:

* MST's ``Cal_quality_assessment.m`` (CASSI) on two ``Test_result.mat`` (about 34 dB and about 15 dB), without
  the script's pixel overwrite, and that overwrite reproduced from the values the script wrote;
* Restormer's ``evaluate_PSNR_SSIM.m`` (deraining: Y channel, Wang's SSIM, a grey image included);
* the PSNR of Restormer's ``evaluate_gopro_hide.m`` (Octave has no ``ssim``, so its SSIM is not checked here).
"""
import json
import os.path as osp
import re

import numpy as np
import pytest
import scipy.io
from basicsr.utils.registry import METRIC_REGISTRY

from glmha_plugin.evaluation import evaluate
from glmha_plugin.metrics import (
    calculate_bandwise_psnr,
    calculate_cassi_psnr_matlab,
    calculate_cassi_ssim_matlab,
    im2uint8,
)

from helpers import restormer_eval_data
from helpers import spectral_data as sd
from helpers.common import read_fixture

PSNR_TOL, SSIM_TOL = 1e-3, 1e-4
CASSI = read_fixture('cassi_matlab_octave.json')
RESTORMER = read_fixture('restormer_matlab_octave.json')


@pytest.fixture(scope='module')
def truth():
    return sd.kaist_like_truth()


def printed_number(line: str, label: str) -> float:
    return float(re.fullmatch(rf'{label}=(-?[\d.]+|inf)', line).group(1))


@pytest.mark.parametrize('case', ['good', 'poor'])
def test_cassi_command_gives_what_the_script_gives(case, truth, tmp_path, capsys):
    mat = str(tmp_path / 'Test_result.mat')
    scipy.io.savemat(mat, {'truth': truth, 'pred': sd.cassi_result(case, truth)})
    assert evaluate.main(['--task', 'CASSI', '--mat', mat]) == 0
    lines = capsys.readouterr().out.splitlines()
    ref = CASSI['cases'][case]['fixed']
    scores = json.load(open(tmp_path / 'evaluation_CASSI.json'))           # beside the .mat, full precision
    psnr, ssim = np.array(scores['scenes']).T
    print(f'{case}: plugin - Octave, max |PSNR| {np.abs(psnr - ref["psnr_list"]).max():.2e} dB, '
          f'max |SSIM| {np.abs(ssim - ref["ssim_list"]).max():.2e}')
    np.testing.assert_allclose(psnr, ref['psnr_list'], rtol=0, atol=PSNR_TOL)
    np.testing.assert_allclose(ssim, ref['ssim_list'], rtol=0, atol=SSIM_TOL)
    for i, line in enumerate(lines[1:11]):                                  # per scene, as printed
        got = re.fullmatch(rf'Scene {i + 1}: PSNR=([\d.]+) SSIM=([\d.]+)', line).groups()
        assert float(got[0]) == pytest.approx(ref['psnr_list'][i], abs=PSNR_TOL)
        assert float(got[1]) == pytest.approx(ref['ssim_list'][i], abs=SSIM_TOL)
    # ends with the script's two lines (its spelling PNSR)
    assert printed_number(lines[-2], 'The PNSR') == pytest.approx(printed_number(ref['printed'][0], 'The PNSR'),
                                                                  abs=PSNR_TOL)
    assert printed_number(lines[-1], 'The SSIM') == pytest.approx(printed_number(ref['printed'][1], 'The SSIM'),
                                                                  abs=SSIM_TOL)


def test_cassi_script_overwrite_reproduced_from_the_values_it_wrote(truth):
    """The unmodified script's figures are this plugin's on a prediction whose pixel (row i, column 1, band 1) of
    scene k (2 to 6) holds what the script stored there (metric k of scene i, i < k): the documented bug, whose
    size the fixture shows."""
    ref = CASSI['cases']['good']
    pred = sd.cassi_result('good', truth)
    written = np.asarray(ref['as_is']['written'], dtype=np.float32)          # 6 metrics x 10 scenes
    for k in range(2, 7):
        pred[k - 1, :k - 1, 0, 0] = written[k - 1, :k - 1]
    psnr = [calculate_cassi_psnr_matlab(pred[i], truth[i]) for i in range(10)]
    np.testing.assert_allclose(psnr, ref['as_is']['psnr_list'], rtol=0, atol=1e-6)
    effect = np.array(ref['as_is']['psnr_list']) - ref['fixed']['psnr_list']
    print(f'overwrite bug, per scene (dB): {np.round(effect, 4).tolist()}, mean {effect.mean():+.4f} dB')
    assert effect[0] == 0 and (effect[6:] == 0).all() and (np.abs(effect[1:6]) > 1e-4).all()
    assert calculate_cassi_ssim_matlab(pred[4], truth[4]) == pytest.approx(ref['as_is']['ssim_list'][4], abs=1e-9)


def test_im2uint8_rounds_half_away_from_zero_and_refuses_nan():
    ties = (np.arange(255) + 0.5) / 255                   # x * 255 is exactly k + 0.5 in float64
    assert (im2uint8(ties).astype(int) == np.arange(1, 256)).all()           # numpy's round would give k for even k
    assert im2uint8(np.array([-0.3, 0.0, 1.0, 1.7])).tolist() == [0, 0, 255, 255]
    assert im2uint8(np.float32([0.2])).tolist() == [51]                      # float32 widened first: 0.2f * 255
    with pytest.raises(ValueError, match='NaN'):
        im2uint8(np.array([0.5, np.nan]))


def test_cassi_matlab_metrics_registered_and_not_the_python_protocol():
    assert METRIC_REGISTRY.get('calculate_cassi_psnr_matlab') is calculate_cassi_psnr_matlab
    assert METRIC_REGISTRY.get('calculate_cassi_ssim_matlab') is calculate_cassi_ssim_matlab
    gt = np.full((16, 16, 2), 0.5, np.float32)
    pred = gt.copy()
    pred[..., 0] = 129.3 / 255                            # im2uint8: 128 -> 129, one level; MST's x256: 128 -> 132
    pred[..., 1] = 1.4                                    # clipped: 255, 127 levels off
    expected = (10 * np.log10(255**2 / 1) + 10 * np.log10(255**2 / 127**2)) / 2
    assert calculate_cassi_psnr_matlab(pred, gt) == pytest.approx(expected)
    assert calculate_bandwise_psnr(pred, gt) != pytest.approx(expected, abs=0.1)
    assert calculate_cassi_ssim_matlab(gt, gt) == pytest.approx(1.0)


def test_cassi_command_errors(tmp_path, capsys):
    mat = str(tmp_path / 'r.mat')
    assert evaluate.main(['--task', 'CASSI', '--mat', str(tmp_path / 'none.mat')]) == 2
    assert 'cannot read pred and truth' in capsys.readouterr().err
    scipy.io.savemat(mat, {'truth': np.zeros((2, 16, 16, 3), np.float32)})
    assert evaluate.main(['--task', 'CASSI', '--mat', mat]) == 2
    assert "none of the variables 'pred'" in capsys.readouterr().err
    scipy.io.savemat(mat, {'truth': np.zeros((16, 16, 3), np.float32), 'pred': np.zeros((16, 16, 3), np.float32)})
    assert evaluate.main(['--task', 'CASSI', '--mat', mat]) == 2
    assert 'must both be N x H x W x C' in capsys.readouterr().err
    pred = np.zeros((2, 16, 16, 3), np.float32)
    pred[1, 3, 3, 0] = np.nan
    scipy.io.savemat(mat, {'truth': np.zeros_like(pred), 'pred': pred})
    assert evaluate.main(['--task', 'CASSI', '--mat', mat]) == 2
    err = capsys.readouterr().err
    assert 'NaN values in scene(s) [2]' in err and len(err.strip().splitlines()) == 1
    scipy.io.savemat(mat, {'truth': np.zeros((2, 8, 16, 3)), 'pred': np.zeros((2, 8, 16, 3))})
    assert evaluate.main(['--task', 'CASSI', '--mat', mat]) == 2
    assert "smaller than SSIM's 11 x 11 window" in capsys.readouterr().err
    for argv in (['--task', 'CASSI'], ['--task', 'Deraining', '--mat', mat]):
        with pytest.raises(SystemExit):
            evaluate.main(argv)
        assert '--mat' in capsys.readouterr().err


def test_deraining_evaluation_gives_what_evaluate_PSNR_SSIM_m_gives(tmp_path, capsys):
    root = restormer_eval_data.write_sets(str(tmp_path), restormer_eval_data.DERAINING)
    ref = RESTORMER['evaluate_PSNR_SSIM']
    assert evaluate.main(['--task', 'Deraining', '--result_dir', osp.join(root, 'results'), '--gt_dir',
                          osp.join(root, 'Datasets', 'test'), '--workers', '1']) == 0
    printed = {ln.split(' PSNR')[0]: ln for ln in capsys.readouterr().out.splitlines() if ln.startswith('For ')}
    scores = json.load(open(osp.join(root, 'results', 'evaluation_Deraining.json')))
    for dataset, images in ref['images'].items():
        for stem, (psnr, ssim) in images.items():
            got = scores[dataset]['images'][stem]
            assert got[0] == pytest.approx(psnr, abs=PSNR_TOL), (dataset, stem)
            assert got[1] == pytest.approx(ssim, abs=SSIM_TOL), (dataset, stem)
    for line in ref['printed']:                           # the script's lines, the mean over datasets included
        psnr, ssim = map(float, re.search(r'PSNR: ([\d.]+) SSIM: ([\d.]+)', line).groups())
        got = re.search(r'PSNR: ([\d.]+) SSIM: ([\d.]+)', printed[line.split(' PSNR')[0]]).groups()
        assert float(got[0]) == pytest.approx(psnr, abs=PSNR_TOL) and float(got[1]) == pytest.approx(ssim,
                                                                                                      abs=SSIM_TOL)


def test_deblurring_psnr_gives_what_evaluate_gopro_hide_m_gives(tmp_path, capsys):
    root = restormer_eval_data.write_sets(str(tmp_path), restormer_eval_data.DEBLURRING)
    ref = RESTORMER['evaluate_gopro_hide']
    assert evaluate.main(['--task', 'Motion_Deblurring', '--dataset', 'GoPro', 'HIDE', '--result_dir',
                          osp.join(root, 'results'), '--gt_dir', osp.join(root, 'Datasets', 'test'),
                          '--workers', '1']) == 0
    out = capsys.readouterr().out
    scores = json.load(open(osp.join(root, 'results', 'evaluation_Motion_Deblurring.json')))
    for dataset, images in ref['images'].items():
        for stem, (psnr,) in images.items():
            assert scores[dataset]['images'][stem][0] == pytest.approx(psnr, abs=PSNR_TOL), (dataset, stem)
    for line in ref['printed']:
        assert line.split(' SSIM')[0] in out              # 'For GoPro dataset PSNR: 30.034558'
