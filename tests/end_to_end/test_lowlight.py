"""Retinexformer's low-light recipe: option files, its evaluation's metrics, and training/testing through basicsr.

The recipe values are a fixture (fixtures/retinexformer_recipe.json) recorded from Retinexformer's own
Options/RetinexFormer_LOL_v1.yml at the commit named inside it.
"""
import json
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs import build_network
from basicsr.metrics import calculate_ssim
from skimage import img_as_ubyte

from glmha_plugin.commands import test as glmha_test
from glmha_plugin.commands import train as glmha_train
from glmha_plugin.commands.glmha import main as glmha
from glmha_plugin.demo.lowlight import darken, make_lowlight_pairs
from glmha_plugin.evaluation import evaluate
from glmha_plugin.metrics import calculate_psnr_lowlight, calculate_ssim_lowlight

from helpers.common import OPTIONS, REPO
from helpers.recipe import mismatches as _mismatches
from helpers.runs import run_main

with open(osp.join(REPO, 'tests', 'fixtures', 'retinexformer_recipe.json')) as f:
    RECIPE = json.load(f)['LOL_v1']
TINY = osp.join(OPTIONS, 'tiny')
NETS = ('RetinexFormer', 'GLMHARetinexFormer')


def load(name):
    with open(osp.join(OPTIONS, name)) as f:
        return yaml.safe_load(f)


# --- option files ------------------------------------------------------------------------------------------


def test_lol_v1_yaml_is_retinexformers_recipe():
    expected = {k: v for k, v in RECIPE.items() if k not in ('file', 'upstream_name', 'upstream_dataroots', 'num_gpu')}
    opt = load('LowLight_RetinexFormer_LOL_v1.yml')
    assert _mismatches(expected, opt) == []
    assert opt['num_gpu'] == 'auto' and RECIPE['num_gpu'] == 1
    roots = RECIPE['upstream_dataroots']
    assert (opt['datasets']['train']['dataroot_gt'], opt['datasets']['val']['dataroot_lq']) == (roots['train_gt'],
                                                                                                roots['val_lq'])
    assert build_network(dict(opt['network_g'])).__class__.__name__ == 'RetinexFormer'


def test_glmha_twin_differs_only_in_network():
    base, glmha = load('LowLight_RetinexFormer_LOL_v1.yml'), load('LowLight_GLMHARetinexFormer_LOL_v1.yml')
    assert {k for k in set(base) | set(glmha) if base.get(k) != glmha.get(k)} == {'name', 'network_g'}
    net = dict(glmha['network_g'])
    assert net.pop('type') == 'GLMHARetinexFormer'
    assert {k: v for k, v in net.items() if k not in ('rank_ratio', 'guidance', 'gamma')} == {
        k: v for k, v in base['network_g'].items() if k != 'type'}


@pytest.mark.parametrize('net', NETS)
def test_test_yaml_scores_as_retinexformers_script(net):
    opt, train = load(f'test_LowLight_{net}_LOL_v1.yml'), load(f'LowLight_{net}_LOL_v1.yml')
    assert opt['network_g'] == train['network_g']
    assert opt['datasets']['test_1']['dataroot_lq'] == RECIPE['upstream_dataroots']['val_lq']
    assert (opt['val']['window_size'], opt['val']['use_image']) == (4, False)
    assert {n: (m['type'], m.get('gt_mean', False)) for n, m in opt['val']['metrics'].items()} == {
        'psnr': ('calculate_psnr_lowlight', False), 'ssim': ('calculate_ssim_lowlight', False),
        'psnr_gt_mean': ('calculate_psnr_lowlight', True), 'ssim_gt_mean': ('calculate_ssim_lowlight', True)}


def test_fork_val_keys_are_checked_before_a_run():
    from glmha_plugin.errors import OptionError
    from glmha_plugin.glue.preflight import check_val_keys
    check_val_keys(load('LowLight_RetinexFormer_LOL_v1.yml'))
    with pytest.raises(OptionError, match="val.use_image must be true or false, got 'false'"):
        check_val_keys({'val': {'use_image': 'false'}})
    with pytest.raises(OptionError, match='val.metrics.psnr: calculate_psnr_matlab scores 8-bit images'):
        check_val_keys({'val': {'use_image': False, 'metrics': {'psnr': {'type': 'calculate_psnr_matlab'}}}})


# --- metrics -------------------------------------------------------------------------------------------------


def pair(seed=0, shape=(30, 41, 3)):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, shape).astype(np.float32) / 255
    restored = np.clip(0.7 * target + 0.05 + rng.normal(0, 0.08, shape), 0, 1).astype(np.float32)
    return restored, target   # RGB in [0, 1], as the script holds them


def test_metrics_follow_the_test_script():
    """The script: PSNR 10 log10(1/MSE) on [0, 1] floats, SSIM on img_as_ubyte; inputs here in basicsr's
    convention (BGR, [0, 255], float: the network output as is)."""
    restored, target = pair()
    bgr = lambda x: x[..., ::-1].astype(np.float64) * 255  # noqa: E731
    mse = np.mean((target - restored) ** 2)
    assert calculate_psnr_lowlight(bgr(restored), bgr(target)) == pytest.approx(10 * np.log10(1 / mse), abs=1e-5)
    assert calculate_ssim_lowlight(bgr(restored), bgr(target)) == pytest.approx(
        calculate_ssim(img_as_ubyte(target), img_as_ubyte(restored), crop_border=0), abs=1e-12)
    assert calculate_psnr_lowlight(bgr(target), bgr(target)) == 100.0


def test_gt_mean_is_the_scripts_grey_level_correction():
    """--GT_mean: cv2.cvtColor(rgb, COLOR_BGR2GRAY) means (the script passes RGB arrays), ratio, clip."""
    restored, target = pair(1)
    ratio = cv2.cvtColor(target, cv2.COLOR_BGR2GRAY).mean() / cv2.cvtColor(restored, cv2.COLOR_BGR2GRAY).mean()
    fixed = np.clip(restored * ratio, 0, 1)
    bgr = lambda x: x[..., ::-1].astype(np.float64) * 255  # noqa: E731
    assert calculate_psnr_lowlight(bgr(restored), bgr(target), gt_mean=True) == pytest.approx(
        10 * np.log10(1 / np.mean((target - fixed) ** 2)), abs=1e-4)
    assert calculate_ssim_lowlight(bgr(restored), bgr(target), gt_mean=True) == pytest.approx(
        calculate_ssim(img_as_ubyte(target), img_as_ubyte(fixed), crop_border=0), abs=1e-6)
    assert calculate_psnr_lowlight(bgr(restored), bgr(target), gt_mean=True) > calculate_psnr_lowlight(
        bgr(restored), bgr(target))


def test_metrics_take_uint8_images_too():
    restored, target = pair(2)
    u8 = lambda x: (x[..., ::-1] * 255).round().astype(np.uint8)  # noqa: E731
    assert calculate_psnr_lowlight(u8(restored), u8(target)) == pytest.approx(
        10 * np.log10(1 / np.mean((u8(target) / 255. - u8(restored) / 255.) ** 2)), abs=1e-4)


def test_darken_is_a_gain_and_a_gamma():
    x = torch.linspace(0, 1, 11)
    torch.testing.assert_close(darken(x), 0.15 * x ** 1.6)
    assert np.allclose(darken(np.array([0.0, 1.0])), [0.0, 0.15])


# --- through basicsr's pipelines -----------------------------------------------------------------------------


@pytest.fixture(scope='module')
def lol_data(tmp_path_factory):
    root = tmp_path_factory.mktemp('lol')
    make_lowlight_pairs(str(root / 'data' / 'LOLv1'), train_short_side=48, test_size=(21, 30),
                        train_photos=('astronaut', 'coffee'), test_photos=('chelsea',))
    return root


@pytest.fixture
def lol_workdir(tmp_path, lol_data):
    os.symlink(lol_data / 'data', tmp_path / 'data')
    return tmp_path


def log_of(folder, prefix):
    name = next(f for f in os.listdir(folder) if f.startswith(prefix) and f.endswith('.log'))
    with open(osp.join(folder, name)) as f:
        return f.read()


@pytest.mark.slow
@pytest.mark.parametrize('net', NETS)
def test_tiny_lol_trains_and_tests(lol_workdir, net, monkeypatch, capsys):
    name = f'Tiny_LowLight_{net}_LOL_v1'
    run_main(glmha_train.main, ['-opt', osp.join(TINY, f'{name}.yml')], lol_workdir)
    log = log_of(lol_workdir / 'experiments' / name, 'train_')
    for line in (f'Network [{net}] is created', 'Model [ImageCleanModel] is created', 'iter:       4,',
                 'val.max_minibatch: 8 accepted; it changes nothing', '# psnr:', 'End of training'):
        assert line in log, line
    run_main(glmha_test.main, ['-opt', osp.join(TINY, f'test_{name}.yml')], lol_workdir)
    test_log = log_of(lol_workdir / 'results' / f'test_{name}', 'test_')
    scores = {m: float(v) for m, v in re.findall(r'# (\w+): ([-0-9.]+)', test_log)}
    assert set(scores) == {'psnr', 'ssim', 'psnr_gt_mean', 'ssim_gt_mean'}

    # the logged scores are Retinexformer's script's, recomputed here on the float output
    with open(osp.join(TINY, f'test_{name}.yml')) as f:
        opt = yaml.safe_load(f)
    model = build_network(dict(opt['network_g']))
    state = torch.load(lol_workdir / opt['path']['pretrain_network_g'], weights_only=True)['params']
    model.load_state_dict(state)
    lq = cv2.imread(str(lol_workdir / 'data/LOLv1/Test/input/chelsea.png'))[..., ::-1] / 255.
    gt = cv2.imread(str(lol_workdir / 'data/LOLv1/Test/target/chelsea.png')).astype(np.float64)
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(lq.copy()).permute(2, 0, 1)[None].float())
    out_bgr = out[0].clamp(0, 1).permute(1, 2, 0).numpy()[..., ::-1].astype(np.float64) * 255
    assert scores['psnr'] == pytest.approx(calculate_psnr_lowlight(out_bgr, gt), abs=2e-4)
    assert scores['ssim_gt_mean'] == pytest.approx(calculate_ssim_lowlight(out_bgr, gt, gt_mean=True), abs=2e-4)
    saved = lol_workdir / 'results' / f'test_{name}' / 'visualization' / 'LOL_v1' / f'chelsea_test_{name}.png'
    assert cv2.imread(str(saved)).shape == (21, 30, 3)

    # Retinexformer's layout through glmha infer --task LowLight and glmha evaluate (8-bit results)
    monkeypatch.chdir(lol_workdir)
    weights = str(lol_workdir / opt['path']['pretrain_network_g'])
    assert glmha(['infer', '--task', 'LowLight', '--weights', weights, '--network_opt', osp.join(TINY, f'{name}.yml'),
                          '--device', 'cpu']) == 0
    assert os.listdir(lol_workdir / 'results' / 'LOLv1') == ['chelsea.png']
    capsys.readouterr()
    assert evaluate.main(['--task', 'LowLight', '--workers', '1', '--gt_mean']) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith('For LOLv1 dataset'))
    psnr, ssim = (float(v) for v in re.findall(r'(?:PSNR|SSIM): ([-0-9.]+)', line))
    assert psnr == pytest.approx(scores['psnr_gt_mean'], abs=0.05) and ssim == pytest.approx(scores['ssim_gt_mean'],
                                                                                            abs=0.01)


@pytest.mark.slow
def test_retinexformers_own_option_file_runs_under_basicsr_train(lol_workdir):
    """Retinexformer's Options/RetinexFormer_LOL_v1.yml, rebuilt from the recorded values with local data roots,
    through the unmodified `python -m basicsr.train` (what the import hook runs, here in this process; the
    process itself: test_end_to_end.py); on this CPU machine with num_gpu=0 and a
    seconds-long budget given as basicsr's own --force_yml (the file is otherwise as upstream: its validation
    keys, its wandb project (not installed here), dist_params, the full-size network)."""
    opt = {k: v for k, v in RECIPE.items() if k not in ('file', 'upstream_name', 'upstream_dataroots')}
    opt = dict(name=RECIPE['upstream_name'], **json.loads(json.dumps(opt)))
    for phase, split, set_name in (('train', 'Train', 'TrainSet'), ('val', 'Test', 'ValSet')):   # upstream's names
        opt['datasets'][phase].update(name=set_name, dataroot_gt=f'data/LOLv1/{split}/target',
                                      dataroot_lq=f'data/LOLv1/{split}/input')
    path = lol_workdir / 'RetinexFormer_LOL_v1.yml'
    path.write_text(yaml.safe_dump(opt, sort_keys=False))
    budget = ['num_gpu=0', 'train:total_iter=2', 'datasets:train:batch_size_per_gpu=2',
              'datasets:train:mini_batch_sizes=[2]', 'datasets:train:gt_size=32', 'datasets:train:gt_sizes=[32]',
              'datasets:train:num_worker_per_gpu=0', 'val:val_freq=2', 'logger:print_freq=1',
              'logger:save_checkpoint_freq=2', 'logger:use_tb_logger=false']
    proc = run_main(lambda argv: glmha_train.main(argv, redirected_from='basicsr.train'),
                    ['-opt', str(path), '--force_yml', *budget], lol_workdir)
    assert "logger.wandb.project is 'low_light' but wandb is not installed" in proc.stdout
    log = log_of(lol_workdir / 'experiments' / RECIPE['upstream_name'], 'train_')
    for line in ('Network [RetinexFormer] is created', 'Model [ImageCleanModel] is created',
                 'val.max_minibatch: 8 accepted', 'Validation ValSet', '# psnr:', 'End of training'):
        assert line in log, line
