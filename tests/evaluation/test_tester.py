"""Restormer-style testing (results/<dataset>/<stem>.png, tiling) and the Python evaluator."""
import json
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
import yaml

from glmha_plugin.archs import GLMHARestormer
from glmha_plugin.evaluation import evaluate, inference

from helpers.common import TINY_RESTORMER as TINY


class Pointwise(torch.nn.Module):
    """A per-pixel network: tiling must not change its output at all."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 3, 1)

    def forward(self, x):
        return torch.sigmoid(self.conv(x))


def test_tiles_covering_the_image_equal_one_pass():
    torch.manual_seed(0)
    net = GLMHARestormer(**TINY).eval()
    img = torch.rand(1, 3, 37, 45)
    tiled = inference.restore(net, img, tile=48, tile_overlap=8)  # tile >= padded image: one window
    assert torch.equal(inference.restore(net, img), tiled)


def test_small_tiles_average_the_windows_run_alone():
    """16 px tiles, overlap 8, on 37 x 45 (reflect-padded to 40 x 48): windows at rows 0, 8, 16, 24 and columns
    0, 8, 16, 24, 32, each run through the network on its own, averaged where they overlap, cropped, clamped."""
    torch.manual_seed(0)
    net = GLMHARestormer(**TINY).eval()
    img = torch.rand(1, 3, 37, 45)
    padded = torch.nn.functional.pad(img, (0, 3, 0, 3), mode='reflect')
    total, count = torch.zeros(1, 3, 40, 48), torch.zeros(1, 1, 40, 48)
    with torch.no_grad():
        for top in (0, 8, 16, 24):
            for left in (0, 8, 16, 24, 32):
                total[..., top:top + 16, left:left + 16] += net(padded[..., top:top + 16, left:left + 16])
                count[..., top:top + 16, left:left + 16] += 1
    small = inference.restore(net, img, tile=16, tile_overlap=8)
    torch.testing.assert_close(small, (total / count)[..., :37, :45].clamp(0, 1))
    full = inference.restore(net, img)
    print(f'Restormer-tiny 37x45, 16 px tiles (overlap 8): max |tiled - untiled| = {(small - full).abs().max():.4f}, '
          f'PSNR(tiled vs untiled) = {10 * torch.log10(1 / ((small - full) ** 2).mean()):.2f} dB')
    assert (small - full).abs().max() > 1e-3  # a window's attention pools over the window only


@pytest.mark.parametrize('overlap', [8, 0])  # 0: tiles that just touch
def test_overlapping_tiles_reassemble_exactly(overlap):
    net = Pointwise().eval()
    img = torch.rand(1, 3, 50, 70)
    torch.testing.assert_close(inference.restore(net, img, tile=24, tile_overlap=overlap),
                               inference.restore(net, img), rtol=1e-6, atol=1e-6)


def test_tile_errors():
    img = torch.rand(1, 3, 32, 32)
    with pytest.raises(inference.InferenceError, match='multiple of 8'):
        inference.restore(Pointwise(), img, tile=20)
    with pytest.raises(inference.InferenceError, match='smaller than the tile'):
        inference.restore(Pointwise(), img, tile=16, tile_overlap=16)
    with pytest.raises(inference.InferenceError, match='must be >= 0'):  # gaps between tiles would be NaN
        inference.restore(Pointwise(), img, tile=16, tile_overlap=-4)


def make_test_sets(root, sets, size=(24, 30)):
    rng = np.random.default_rng(0)
    for d in sets:
        for sub in ('input', 'target'):
            os.makedirs(osp.join(root, 'test', d, sub), exist_ok=True)
        for i in range(2):
            gt = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            cv2.imwrite(osp.join(root, 'test', d, 'target', f'{d}_{i}.png'), gt)
            cv2.imwrite(osp.join(root, 'test', d, 'input', f'{d}_{i}.png'), np.clip(gt.astype(int) + 20, 0, 255)
                        .astype(np.uint8))


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    net = GLMHARestormer(**TINY)
    path = tmp_path / 'w.pth'
    torch.save({'params': net.state_dict()}, path)
    opt = tmp_path / 'net.yml'
    opt.write_text(yaml.safe_dump({'network_g': dict(type='GLMHARestormer', **TINY)}))
    return str(path), str(opt), net


def test_restore_writes_restormer_layout_and_evaluator_scores_it(tmp_path, weights, capsys):
    path, opt, net = weights
    data, results = str(tmp_path / 'Datasets'), str(tmp_path / 'results')
    make_test_sets(data, ['Rain100L', 'Test100'])
    assert inference.main(['--task', 'Deraining', '--weights', path, '--network_opt', opt, '--input_dir', data,
                           '--result_dir', results, '--dataset', 'Rain100L', 'Test100', '--device', 'cpu']) == 0
    assert sorted(os.listdir(osp.join(results, 'Rain100L'))) == ['Rain100L_0.png', 'Rain100L_1.png']
    # the PNG is the network's output on the input, rounded to 8 bits
    img = cv2.imread(osp.join(data, 'test', 'Test100', 'input', 'Test100_1.png'))[..., ::-1] / 255.0
    with torch.no_grad():
        ref = net.eval()(torch.from_numpy(img.copy()).permute(2, 0, 1)[None].float()).clamp(0, 1)
    ref = (ref[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)[..., ::-1]
    assert np.abs(cv2.imread(osp.join(results, 'Test100', 'Test100_1.png')).astype(int) - ref).max() <= 1
    capsys.readouterr()
    assert evaluate.main(['--task', 'Deraining', '--result_dir', results, '--gt_dir', osp.join(data, 'test'),
                          '--dataset', 'Rain100L', 'Test100', '--workers', '1']) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith('For ')]
    assert len(lines) == 3
    names = ['Rain100L dataset', 'Test100 dataset', 'all datasets']   # the MATLAB wording
    for line, name in zip(lines, names, strict=True):
        assert re.fullmatch(rf'For {name} PSNR: \d+\.\d{{6}} SSIM: -?\d\.\d{{6}}', line), line
    scores = json.load(open(osp.join(results, 'evaluation_Deraining.json')))
    assert set(scores) == {'Rain100L', 'Test100'} and scores['Rain100L']['protocol'] == 'y'
    mean = np.mean([scores[d]['psnr'] for d in scores])
    assert f'For all datasets PSNR: {mean:f}' in out
    assert osp.getsize(osp.join(results, 'evaluation_Deraining.png')) > 1000


def test_evaluator_matches_the_metric_per_image_and_pairs_by_name(tmp_path, capsys):
    from glmha_plugin.metrics import calculate_psnr_matlab, calculate_ssim_matlab
    data, results = str(tmp_path / 'd'), str(tmp_path / 'r')
    make_test_sets(data, ['GoPro'])
    os.makedirs(osp.join(results, 'GoPro'))
    for i in range(2):
        cv2.imwrite(osp.join(results, 'GoPro', f'GoPro_{i}.png'),
                    cv2.imread(osp.join(data, 'test', 'GoPro', 'input', f'GoPro_{i}.png')))
    scores = evaluate.evaluate('Motion_Deblurring', ['GoPro'], results, osp.join(data, 'test'))
    a = cv2.imread(osp.join(results, 'GoPro', 'GoPro_0.png'))
    b = cv2.imread(osp.join(data, 'test', 'GoPro', 'target', 'GoPro_0.png'))
    assert scores['GoPro']['protocol'] == 'rgb'
    assert scores['GoPro']['images']['GoPro_0'] == [calculate_psnr_matlab(a, b), calculate_ssim_matlab(a, b)]
    os.rename(osp.join(results, 'GoPro', 'GoPro_1.png'), osp.join(results, 'GoPro', 'other.png'))
    assert evaluate.main(['--task', 'Motion_Deblurring', '--result_dir', results, '--gt_dir', osp.join(data, 'test'),
                          '--dataset', 'GoPro', '--workers', '1']) == 2
    assert 'do not pair by name' in capsys.readouterr().err
    assert evaluate.main(['--task', 'Motion_Deblurring', '--result_dir', results, '--gt_dir', osp.join(data, 'test'),
                          '--dataset', 'GoPro', '--workers', '1', '--pair_by', 'order']) == 0


def test_tester_errors_are_clear(tmp_path, weights, capsys):
    path, opt, _ = weights
    assert inference.main(['--task', 'Deraining', '--weights', path, '--network_opt', opt,
                           '--input_dir', str(tmp_path / 'none'), '--dataset', 'Rain100L']) == 2
    assert 'missing input folder' in capsys.readouterr().err
    make_test_sets(str(tmp_path / 'D'), ['Rain100L'])
    wrong = tmp_path / 'wrong.yml'
    wrong.write_text(open(opt).read().replace('dim: 8', 'dim: 16'))
    assert inference.main(['--task', 'Deraining', '--weights', path, '--network_opt', str(wrong),
                           '--input_dir', str(tmp_path / 'D'), '--dataset', 'Rain100L']) == 2
    assert 'does not fit network_g' in capsys.readouterr().err


def test_glmha_command_dispatches_test_and_infer(capsys):
    """glmha test: basicsr's test pipeline (as glmha-test); glmha infer: the Restormer-style tester; an unknown
    action is named with the closest ones."""
    from glmha_plugin.commands.glmha import main as glmha
    with pytest.raises(SystemExit) as exc:
        glmha(['test', '-opt', 'no_such_options.yml'])
    assert exc.value.code == 2 and "option file 'no_such_options.yml' does not exist" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        glmha(['infer', '--weights', 'w.pth'])
    assert exc.value.code == 2 and '--task' in capsys.readouterr().err
    assert glmha(['infre']) == 2 and "Did you mean 'infer'?" in capsys.readouterr().err
