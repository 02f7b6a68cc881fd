"""The demo's pieces (rain synthesis, --iters option rewriting, summary and trade numbers) and one shortened run."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest

from glmha_plugin.demo import data as demo_data
from glmha_plugin.demo import run as demo
from glmha_plugin.glue.preflight import apply_overrides
from glmha_plugin.models.lr_scheduler import CosineAnnealingRestartCyclicLR
from glmha_plugin.models.progressive import ProgressiveSchedule

from helpers.common import REPO, load_yaml
from helpers.runs import run_main


def _opt(rel):
    return load_yaml(osp.join(REPO, rel))


# ------------------------------------------------------------------------------------------------ rain

def test_training_rain_covers_the_test_rain():
    train, test = demo_data.TRAIN_STREAKS, demo_data.TEST_STREAKS
    for field in ('density', 'length', 'strength'):
        lo, hi = getattr(train, field)
        assert lo <= getattr(test, field)[0] and getattr(test, field)[1] <= hi, field
    angles = (demo_data.TRAIN_WIND[0] + train.angle[0], demo_data.TRAIN_WIND[1] + train.angle[1])
    assert angles[0] <= test.angle[0] and test.angle[1] <= angles[1]
    assert demo_data.TRAIN_HAZE[0] <= demo_data.TEST_HAZE <= demo_data.TRAIN_HAZE[1] and demo_data.TRAIN_LAYERS[0] == 1


def test_streaks_follow_their_angle():
    rng = np.random.default_rng(0)
    vertical = demo_data.Streaks(density=(0.01, 0.01), length=(15, 16), angle=(0, 0), strength=(0.5, 0.5))
    layer = demo_data.streak_layer((96, 96), rng, vertical)
    along, across = np.abs(np.diff(layer, axis=0)).mean(), np.abs(np.diff(layer, axis=1)).mean()
    assert layer.max() > 0.3 and along < 0.3 * across
    tilted = demo_data.streak_layer((96, 96), np.random.default_rng(0), vertical, wind=90.0)  # horizontal
    assert np.abs(np.diff(tilted, axis=1)).mean() < 0.3 * np.abs(np.diff(tilted, axis=0)).mean()


def test_rain_is_seeded_and_only_adds_light():
    img = np.full((40, 50, 3), 100, np.uint8)
    a = demo_data.add_training_rain(img, np.random.default_rng(3))
    b = demo_data.add_training_rain(img, np.random.default_rng(3))
    assert a.dtype == np.uint8 and a.shape == img.shape and np.array_equal(a, b)
    assert (demo_data.add_rain(img, np.random.default_rng(3)) >= 100 * (1 - demo_data.TEST_HAZE)).all()
    assert not np.array_equal(a, demo_data.add_training_rain(img, np.random.default_rng(4)))


def test_make_rain_pairs_layout_and_an_untouched_test_set(tmp_path):
    kw = dict(train_short_side=100, test_size=(20, 27), train_photos=('coffee',), test_photos=('chelsea',))
    folders = demo_data.make_rain_pairs(str(tmp_path / 'a'), **kw)
    plain = demo_data.make_rain_pairs(str(tmp_path / 'b'), tile_rounds=0, **kw)
    assert sorted(os.listdir(plain['train_input'])) == ['coffee.png']
    names = sorted(os.listdir(folders['train_input']))
    assert names == sorted(os.listdir(folders['train_target']))
    # coffee (400x600) is 100x150 at scale 1: 100x128 tiles at left 0 and 22; 150x225 at scale 1.5: 128x128
    # tiles at top 0, 22 and left 0, 97; each position once per round
    tiles = [n for n in names if n != 'coffee.png']
    assert demo_data.TILE == 128 and demo_data.TILE_SCALES == (1.0, 1.5)
    assert len(tiles) == demo_data.TILE_ROUNDS * 6
    assert {'coffee_s1_r0_0_22.png', 'coffee_s1.5_r1_22_97.png'} <= set(tiles)
    assert cv2.imread(osp.join(folders['train_target'], 'coffee_s1_r0_0_22.png')).shape == (100, 128, 3)
    tile = cv2.imread(osp.join(folders['train_target'], 'coffee_s1.5_r1_22_97.png'))
    assert tile.shape == (128, 128, 3)
    # the test pairs (and the photo's own pair) do not depend on the training tiles drawn after them
    for split, name in (('test', 'chelsea.png'), ('train', 'coffee.png')):
        for kind in ('input', 'target'):
            assert np.array_equal(cv2.imread(osp.join(folders[f'{split}_{kind}'], name)),
                                  cv2.imread(osp.join(plain[f'{split}_{kind}'], name)))
    lq, gt = (cv2.imread(osp.join(folders[f'test_{k}'], 'chelsea.png')) for k in ('input', 'target'))
    assert lq.shape == gt.shape == (20, 27, 3) and not np.array_equal(lq, gt)


# ------------------------------------------------------------------------------------------------ --iters

def test_stretch():
    assert demo.stretch([800], 1600) == [1600]
    assert demo.stretch([240, 320, 240], 1600) == [480, 640, 480]
    assert demo.stretch([240, 320, 240], 100) == [30, 40, 30]
    assert demo.stretch([1, 1, 8], 5) == [1, 1, 3]
    assert demo.stretch([240, 320, 240], 2) == [1, 1, 1]
    for total in (3, 7, 101, 999):
        out = demo.stretch([240, 320, 240], total)
        assert sum(out) == total and min(out) >= 1


@pytest.mark.parametrize('rel', [demo.DEMO_TRAIN_OPT, demo.DEMO_CSA_TRAIN_OPT])
@pytest.mark.parametrize('iters', [1600, 333, 4])
def test_iteration_overrides_stretch_schedule_and_stages(rel, iters):
    """--iters N: the cosine schedule ends at N (it stopped at the YAML's length: a TypeError at iteration 801 with
    basicsr's CosineAnnealingRestartLR) and the progressive stages fill N."""
    opt = _opt(rel)
    new = apply_overrides(opt, demo.iteration_overrides(opt, iters))
    train = new['train']
    assert train['total_iter'] == iters
    assert sum(train['scheduler']['periods']) == max(iters, len(opt['train']['scheduler']['periods']))
    stages = ProgressiveSchedule.from_dataset_opt(new['datasets']['train'])
    if stages is not None:
        assert stages.boundaries[-1] == max(iters, len(stages))
    import torch
    sched_opt = {k: v for k, v in train['scheduler'].items() if k != 'type'}
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=train['optim_g']['lr'])
    sched = CosineAnnealingRestartCyclicLR(optimizer, **sched_opt)
    lrs = []
    for _ in range(iters):
        optimizer.step()
        sched.step()
        lrs.append(optimizer.param_groups[0]['lr'])
    assert lrs[-1] == pytest.approx(sched_opt['eta_mins'][-1], rel=1e-6)
    if iters > 10:
        assert lrs[iters // 4] > 10 * sched_opt['eta_mins'][-1]  # still high a quarter in: stretched, not cut
    logger = new['logger']  # a short run still logs progress and saves its last state (to resume from)
    assert iters // logger['print_freq'] >= 2
    if iters < opt['logger']['save_checkpoint_freq']:
        assert logger['save_checkpoint_freq'] == iters


# ------------------------------------------------------------------------------------------------ summary

def test_seconds_per_iteration(tmp_path):
    line = '2026-01-02 10:00:{:06.3f} INFO: [Demo_..][epoch:  1, iter:{:8,d}, lr:(2.000e-03,)] [eta: 0:01:00]\n'
    first, second = tmp_path / 'a.log', tmp_path / 'b.log'
    first.write_text('2026-01-02 09:59:00,000 INFO: Start training from epoch: 0, iter: 0\n' +
                     line.format(0.0, 50).replace('.', ',', 1) + line.format(20.0, 150).replace('.', ',', 1))
    second.write_text(line.format(30.0, 950).replace('.', ',', 1) + line.format(50.5, 1050).replace('.', ',', 1))
    assert demo.seconds_per_iteration([str(first)]) == pytest.approx(0.2)
    assert demo.seconds_per_iteration([str(first), str(second)]) == pytest.approx(40.5 / 200)
    (tmp_path / 'c.log').write_text(line.format(1.0, 50).replace('.', ',', 1))
    assert demo.seconds_per_iteration([str(tmp_path / 'c.log')]) is None


def test_trade_counts_both_twins_and_states_the_change():
    glmha_net, csa_net = _opt(demo.DEMO_TRAIN_OPT)['network_g'], _opt(demo.DEMO_CSA_TRAIN_OPT)['network_g']
    assert csa_net['type'] == 'Restormer' and glmha_net['type'] == 'GLMHARestormer'
    assert {k: v for k, v in glmha_net.items() if k not in ('type', 'rank_ratio', 'guidance')} == \
        {k: v for k, v in csa_net.items() if k != 'type'}, 'the CSA twin differs only in its attention'
    glmha, csa = demo.count_network('G', glmha_net, (20, 27)), demo.count_network('C', csa_net, (20, 27))
    assert glmha.params < csa.params and glmha.gmacs < csa.gmacs
    glmha.sec_per_iter = 0.2
    lines = demo.trade_lines(demo.Net('G', 80_000, 0.8, 0.2), demo.Net('C', 100_000, 1.0), (20, 27))
    assert lines[-1].split() == ['GLMHA', 'vs', 'CSA', '-20.0', '%', '-20.0', '%', '-']
    assert '0.080M' in lines[-2] and '0.200' in lines[-2] and '20x27' in lines[0]
    both = demo.trade_lines(demo.Net('G', 80, 0.8, 0.3), demo.Net('C', 100, 1.0, 0.4), (20, 27))
    assert both[-1].split()[-2:] == ['-25.0', '%']
    title = demo.picture_title(demo.Net('G', 80_000, 0.8, 0.2), demo.Net('C', 100_000, 1.0), (20, 27), 800)
    assert title == ('G (0.200 s/iteration), 800 iterations on the demo photos\n'
                     'GLMHA: 0.080M parameters (-20.0 % vs CSA), 0.800 GMACs (-20.0 %) at 20x27')


def _fake_results(workdir, test_name, names, offset):
    data = osp.join(workdir, demo_data.DATA_DIR, 'test')
    vis = osp.join(workdir, 'results', test_name, 'visualization', demo_data.TEST_SET)
    for d in (osp.join(data, 'input'), osp.join(data, 'target'), vis):
        os.makedirs(d, exist_ok=True)
    for name in names:
        gt = np.full((16, 20, 3), 100, np.uint8)
        cv2.imwrite(osp.join(data, 'target', f'{name}.png'), gt)
        cv2.imwrite(osp.join(data, 'input', f'{name}.png'), gt + 10)
        cv2.imwrite(osp.join(vis, f'{name}_{test_name}.png'), gt + offset)


def test_scores_table_and_picture(tmp_path):
    _fake_results(str(tmp_path), 'test_G', ['a', 'b'], 1)
    _fake_results(str(tmp_path), 'test_C', ['a', 'b'], 2)
    rows, images = demo.score_runs(str(tmp_path), {'C': 'test_C', 'G': 'test_G'})
    assert [r.image for r in rows] == ['a', 'b'] and list(images) == ['input', 'ground truth', 'C', 'G']
    def psnr(err):
        return 10 * np.log10(255 ** 2 / err ** 2)
    assert rows[0].scores['input'][0] == pytest.approx(psnr(10))
    assert rows[1].scores['G'][0] == pytest.approx(psnr(1)) and rows[1].scores['C'][0] == pytest.approx(psnr(2))
    lines = demo.table_lines(rows)
    assert lines[3].split()[:2] == ['mean', f'{psnr(10):.2f}']
    gain = psnr(1) - psnr(10)
    assert lines[-1].startswith(f'gain of G: {gain:+.2f} dB PSNR (a {gain:+.2f}, b {gain:+.2f}), +0.00')
    png = tmp_path / 'side.png'
    demo.plot(rows, images, {'C': 'CSA net', 'G': 'GLMHA net'}, 'title', str(png))
    assert cv2.imread(str(png)).shape[1] > 4 * 3.4 * 100  # four columns: input, C, G, ground truth


# ------------------------------------------------------------------------------------------------ end to end

@pytest.mark.slow
def test_shortened_demo_with_compare_then_resume(tmp_path):
    """The real command on the real data, a few iterations: both twins, summary, PNG; then --iters more resumes.
    (``glmha demo``'s main in this process; it trains and tests in processes of their own.)"""
    argv = ['--workdir', str(tmp_path / 'run')]
    out = run_main(demo.main, argv + ['--iters', '4', '--compare'], tmp_path).stdout
    assert out.count('[demo] training the tiny') == 2 and 'gain of GLMHA: ' in out
    assert 'gain of CSA: ' in out and 'the trade at the 132x180 test size' in out
    trade = out[out.index('the trade at'):].splitlines()
    assert trade[2].startswith('Restormer (CSA twin)') and trade[3].startswith('GLMHA-Restormer')
    assert trade[4].startswith('GLMHA vs CSA') and '%' in trade[4]
    assert '[demo] 4 iterations; time: ' in out
    assert osp.isfile(tmp_path / 'run' / 'demo_side_by_side.png')
    again = run_main(demo.main, argv + ['--iters', '6'], tmp_path).stdout
    assert '[demo] resuming GLMHA-Restormer' in again and 'Restormer (CSA twin)' in again  # counted, not trained
    assert again.count('[demo] training the tiny') == 1 and '[demo] building the rain dataset' not in again
    states = os.listdir(tmp_path / 'run' / 'experiments' / 'Demo_Deraining_GLMHA' / 'training_states')
    assert '6.state' in states
