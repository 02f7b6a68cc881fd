"""Restormer's training recipe parts: LR schedule, progressive learning, mixup, the model's optimisation step."""
import math
import random

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from glmha_plugin.models import CosineAnnealingRestartCyclicLR, ImageCleanModel, MixingAugment, ProgressiveSchedule

from helpers.recipe import closed_form, model_opt

pytestmark = pytest.mark.filterwarnings('ignore:Detected call of:UserWarning')  # basicsr steps schedulers first
RESTORMER = dict(periods=[92000, 208000], restart_weights=[1, 1], eta_mins=[3e-4, 1e-6])
PROGRESSIVE = dict(iters=[92000, 64000, 48000, 36000, 36000, 24000], mini_batch_sizes=[8, 5, 4, 2, 1, 1],
                   gt_sizes=[128, 160, 192, 256, 320, 384], batch_size=8, gt_size=384)


def _optimizer(lr=3e-4):
    return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=lr)


def test_cyclic_lr_follows_closed_form_every_step():
    kw = dict(periods=[10, 25, 7], restart_weights=[1, 0.5, 0.25], eta_mins=[0.1, 0.01, 0.001])
    sched = CosineAnnealingRestartCyclicLR(_optimizer(1.0), **kw)
    got = []
    for _ in range(42):
        got.append(sched.get_last_lr()[0])
        sched.optimizer.step()
        sched.step()
    want = closed_form(np.arange(42), 1.0, kw['periods'], kw['restart_weights'], kw['eta_mins'])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)
    assert got[10] == pytest.approx(0.1)
    assert got[11] == pytest.approx(0.01 + 0.5 * 0.99 * (1 + math.cos(math.pi / 25)) / 2)


def test_restormer_schedule_through_basicsr_update_learning_rate():
    """Iteration i uses step i - 1 (basicsr steps from iteration 2): 3e-4 held for 92k, then cosine to 1e-6."""
    sched = CosineAnnealingRestartCyclicLR(_optimizer(), **RESTORMER)
    checkpoints = {1: None, 2: None, 92000: None, 92001: None, 92002: None, 196000: None, 299999: None, 300000: None}
    for it in range(1, 300001):
        if it > 1:
            sched.step()
        if it in checkpoints:
            checkpoints[it] = sched.get_last_lr()[0]
    for it, lr in checkpoints.items():
        want = closed_form(it - 1, 3e-4, RESTORMER['periods'], RESTORMER['restart_weights'], RESTORMER['eta_mins'])
        assert lr == pytest.approx(float(want), rel=1e-9), it
    assert checkpoints[92001] == pytest.approx(3e-4) and checkpoints[92002] < 3e-4
    assert checkpoints[196000] == pytest.approx((3e-4 + 1e-6) / 2, rel=1e-3)
    assert checkpoints[300000] == pytest.approx(1e-6, rel=1e-3)


def test_cyclic_lr_resumes_from_state_dict_and_holds_after_the_end():
    a = CosineAnnealingRestartCyclicLR(_optimizer(), periods=[4, 6], eta_mins=[3e-4, 1e-6])
    for _ in range(5):
        a.optimizer.step()
        a.step()
    b = CosineAnnealingRestartCyclicLR(_optimizer(), periods=[4, 6], eta_mins=[3e-4, 1e-6])
    b.load_state_dict(a.state_dict())
    for _ in range(8):  # past the end (step 10): stays at the last floor
        for s in (a, b):
            s.optimizer.step()
            s.step()
        assert a.get_last_lr() == b.get_last_lr()
    assert a.get_last_lr()[0] == pytest.approx(1e-6)


def test_cyclic_lr_rejects_inconsistent_cycles():
    with pytest.raises(ValueError, match='one entry per cycle'):
        CosineAnnealingRestartCyclicLR(_optimizer(), periods=[10, 20], eta_mins=[0.1])


def restormer_stage(current_iter, iters):
    """Restormer's train.py stage rule, written as in its loop."""
    groups = np.array([sum(iters[0:i + 1]) for i in range(0, len(iters))])
    j = ((current_iter > groups) != True).nonzero()[0]  # noqa: E712 (upstream's expression)
    return len(groups) - 1 if len(j) == 0 else j[0]


def test_progressive_stage_boundaries_match_restormer():
    sched = ProgressiveSchedule(**PROGRESSIVE)
    its = [1, 2, 91999, 92000, 92001, 156000, 156001, 203999, 204000, 204001, 276000, 276001, 299999, 300000,
           300001, 400000]
    its += random.Random(0).sample(range(1, 320000), 300)
    for it in its:
        assert sched.stage(it).index == restormer_stage(it, PROGRESSIVE['iters']), it
    assert sched.stage(92001).first_iter == 92001 and sched.stage(92001).patch_size == 160
    assert (sched.stage(300000).batch_size, sched.stage(300000).patch_size) == (1, 384)


def restormer_crop(lq, gt, mini_batch, mini_gt, batch_size, gt_size):
    """Restormer's loop body for one batch (its random draws, in its order)."""
    if mini_batch < batch_size:
        idx = random.sample(range(0, batch_size), k=mini_batch)
        lq, gt = lq[idx], gt[idx]
    if mini_gt < gt_size:
        x0 = int((gt_size - mini_gt) * random.random())
        y0 = int((gt_size - mini_gt) * random.random())
        lq, gt = lq[:, :, x0:x0 + mini_gt, y0:y0 + mini_gt], gt[:, :, x0:x0 + mini_gt, y0:y0 + mini_gt]
    return lq, gt


@pytest.mark.parametrize('it', [1, 92001, 156001, 204001, 240001, 299000])
def test_progressive_crop_equals_restormer_loop(it):
    sched = ProgressiveSchedule(**PROGRESSIVE)
    lq = torch.rand(8, 3, 384, 384)
    gt = lq * 2 + 1
    random.seed(it)
    got = sched.crop(lq, gt, it)
    stage = sched.stage(it)
    random.seed(it)
    want = restormer_crop(lq, gt, stage.batch_size, stage.patch_size, 8, 384)
    assert got[0].shape == (stage.batch_size, 3, stage.patch_size, stage.patch_size)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
    assert torch.equal(got[1], got[0] * 2 + 1)  # pairs stay aligned


def test_progressive_options_are_checked():
    with pytest.raises(ValueError, match='mini_batch_sizes'):
        ProgressiveSchedule([10], [16], [64], batch_size=8, gt_size=64)
    with pytest.raises(ValueError, match='gt_sizes'):
        ProgressiveSchedule([10], [8], [128], batch_size=8, gt_size=64)
    with pytest.raises(ValueError, match='one entry per stage'):
        ProgressiveSchedule([10, 10], [8], [64], batch_size=8, gt_size=64)
    with pytest.raises(ValueError, match='missing: gt_sizes'):
        ProgressiveSchedule.from_dataset_opt({'iters': [1], 'mini_batch_sizes': [1], 'gt_size': 8,
                                              'batch_size_per_gpu': 1})
    assert ProgressiveSchedule.from_dataset_opt({'gt_size': 128, 'batch_size_per_gpu': 8}) is None


def test_mixing_augment_keeps_pairs_and_uses_identity_half_the_time():
    torch.manual_seed(0)
    random.seed(0)
    aug = MixingAugment(1.2, use_identity=True, device=torch.device('cpu'))
    lq = torch.rand(6, 3, 4, 4)
    gt = 3 * lq - 1
    unchanged = 0
    for _ in range(200):
        g, q = aug(gt, lq)
        assert torch.allclose(g, 3 * q - 1, atol=1e-6)  # the same mix for target and input
        unchanged += torch.equal(q, lq)
    assert 60 < unchanged < 140
    always = MixingAugment(1.2, use_identity=False, device=torch.device('cpu'))
    assert not any(torch.equal(always(gt, lq)[1], lq) for _ in range(20))


# ---------------------------------------------------------------- the model, in-process

def _batch():
    lq = torch.rand(4, 3, 32, 32)
    return {'lq': lq, 'gt': (lq * 0.5).clamp(0, 1)}


def test_model_progressive_feed_and_grad_clip(tmp_path):
    torch.manual_seed(0)
    model = ImageCleanModel(model_opt(tmp_path))
    assert isinstance(model.optimizer_g, torch.optim.AdamW)
    shapes = []
    for it in range(1, 5):
        model.update_learning_rate(it)
        model.feed_data(_batch())
        shapes.append(tuple(model.lq.shape))
        model.optimize_parameters(it)
        grad_norm = torch.norm(torch.stack([p.grad.norm() for p in model.net_g.parameters() if p.grad is not None]))
        assert grad_norm <= 0.01 * (1 + 1e-4), 'gradients were not clipped to 0.01 before the step'
    assert shapes == [(4, 3, 16, 16), (4, 3, 16, 16), (2, 3, 32, 32), (2, 3, 32, 32)]
    assert model.get_current_learning_rate()[0] == pytest.approx(float(closed_form(3, 3e-4, [2, 4], [1, 1],
                                                                                   [3e-4, 1e-6])))


def test_model_without_grad_clip_leaves_gradients(tmp_path):
    torch.manual_seed(0)
    model = ImageCleanModel(model_opt(tmp_path, grad_clip=False, progressive=False))
    model.update_learning_rate(1)
    model.feed_data(_batch())
    model.optimize_parameters(1)
    grad_norm = torch.norm(torch.stack([p.grad.norm() for p in model.net_g.parameters() if p.grad is not None]))
    assert grad_norm > 0.02


def test_model_feed_needs_the_iteration(tmp_path):
    model = ImageCleanModel(model_opt(tmp_path))
    with pytest.raises(RuntimeError, match='update_learning_rate'):
        model.feed_data(_batch())


def test_model_mixup_applied_to_training_batches(tmp_path):
    torch.manual_seed(1)
    random.seed(3)
    model = ImageCleanModel(model_opt(tmp_path, mixup=True, progressive=False))
    changed = 0
    for it in range(1, 11):
        batch = _batch()
        model.update_learning_rate(it)
        model.feed_data(batch)
        changed += not torch.equal(model.lq, batch['lq'])
        assert torch.allclose(model.gt, model.lq * 0.5, atol=1e-6)
    assert 0 < changed < 10  # use_identity: some batches mixed, some not


class _Pairs(torch.utils.data.Dataset):
    def __init__(self, shape):
        self.shape = shape

    def __len__(self):
        return 2

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(i)
        lq = torch.rand(3, *self.shape, generator=g)
        return {'lq': lq, 'gt': lq.clone(), 'lq_path': f'img{i}.png', 'gt_path': f'img{i}.png'}


def test_model_validation_pads_and_does_not_crop(tmp_path):
    """Validation batches keep their size (odd sizes padded to 8 and cropped back), unlike training batches."""
    model = ImageCleanModel(model_opt(tmp_path))
    model.update_learning_rate(1)
    seen = []
    net = model.net_g
    net.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    loader = DataLoader(_Pairs((21, 29)), batch_size=1)
    loader.dataset.opt = {'name': 'odd'}
    model.validation(loader, current_iter=1, tb_logger=None, save_img=False)
    assert seen == [(1, 3, 24, 32)] * 2  # padded input, whole image (no progressive crop)
    assert 'psnr' in model.metric_results and math.isfinite(model.metric_results['psnr'])
    model.feed_data(_batch())  # training feeding is back on after validation
    assert model.lq.shape[-1] == 16


def test_model_ema_tracks_the_weights_and_is_saved(tmp_path):
    opt = model_opt(tmp_path, progressive=False)
    opt['train']['ema_decay'] = 0.9
    for k in ('models', 'training_states'):
        (tmp_path / k).mkdir()
    torch.manual_seed(0)
    model = ImageCleanModel(opt)
    before = {k: v.clone() for k, v in model.net_g_ema.state_dict().items()}
    model.update_learning_rate(1)
    model.feed_data(_batch())
    model.optimize_parameters(1)
    after, net = model.net_g_ema.state_dict(), model.net_g.state_dict()
    key = 'patch_embed.proj.weight'
    torch.testing.assert_close(after[key], 0.9 * before[key] + 0.1 * net[key])
    assert not torch.equal(after[key], net[key])
    model.save(epoch=0, current_iter=1)
    saved = torch.load(tmp_path / 'models' / 'net_g_1.pth', weights_only=True)
    assert set(saved) == {'params', 'params_ema'}
    assert (tmp_path / 'training_states' / '1.state').is_file()


def test_validation_scores_the_ema_weights_when_ema_is_on(tmp_path):
    """With ``ema_decay`` > 0 validation (and testing) runs ``net_g_ema``, the weights basicsr saves as
    ``params_ema`` and the ones to report, never the live ``net_g``."""
    opt = model_opt(tmp_path, progressive=False)
    opt['train']['ema_decay'] = 0.9
    torch.manual_seed(0)
    model = ImageCleanModel(opt)
    model.update_learning_rate(1)
    model.feed_data(_batch())
    model.optimize_parameters(1)
    ran = []
    model.net_g.register_forward_hook(lambda m, args, out: ran.append('net_g'))
    model.net_g_ema.register_forward_hook(lambda m, args, out: ran.append('net_g_ema'))
    loader = DataLoader(_Pairs((16, 16)), batch_size=1)
    loader.dataset.opt = {'name': 'ema'}
    model.validation(loader, current_iter=1, tb_logger=None, save_img=False)
    assert ran == ['net_g_ema'] * 2
    lq = _Pairs((16, 16))[0]['lq'][None]
    model.feed_data({'lq': lq, 'gt': lq})
    model.test()
    with torch.no_grad():
        torch.testing.assert_close(model.output, model.net_g_ema(lq))
        assert not torch.allclose(model.output, model.net_g(lq))
