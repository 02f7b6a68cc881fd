"""glmha compress: rank planning to a MAC budget, the distillation model and dataset, the one command on a tiny
network (teacher trained here), and its refusals of bad input."""
import itertools
import json
import math
import os
import os.path as osp
import random
import re
from copy import deepcopy

import cv2
import numpy as np
import pytest
import torch
import yaml
from basicsr.archs import build_network

from glmha_plugin.analysis.complexity import count
from glmha_plugin.archs.restormer_arch import GLMHARestormer, Restormer
from glmha_plugin.compress import planning
from glmha_plugin.compress.command import main as compress
from glmha_plugin.compress.network import CompressError, build_from_block
from glmha_plugin.data.unpaired_image_dataset import UnpairedImageDataset
from glmha_plugin.models import DistillModel

from helpers.common import TINY_RESTORMER
from helpers.recipe import model_opt

TINY_JSON = json.dumps(TINY_RESTORMER)


def tiny(seed=0):
    torch.manual_seed(seed)
    return Restormer(**TINY_RESTORMER).eval()


# ------------------------------------------------------------------------------------------- planning


def test_candidate_ranks_are_multiples_of_the_heads():
    assert planning.candidate_ranks(16, 2, 16) == list(range(2, 17, 2))          # d = 8 <= 16: every per-head rank
    spread = planning.candidate_ranks(96, 2, 4)                                   # d = 48: 1 and 4 spread up to d
    assert spread == [2, 24, 48, 72, 96] and all(r % 2 == 0 for r in spread)


def test_solver_is_the_exact_optimum_and_stays_within_capacity():
    rng = random.Random(0)
    for _ in range(30):
        groups = rng.randint(1, 4)
        costs = [sorted(rng.randint(0, 20) for _ in range(rng.randint(1, 4))) for _ in range(groups)]
        values = [[rng.random() for _ in c] for c in costs]
        capacity = rng.randint(sum(min(c) for c in costs), sum(max(c) for c in costs) + 3)
        best = min((sum(v[j] for v, j in zip(values, pick, strict=True)), pick)
                   for pick in itertools.product(*(range(len(c)) for c in costs))
                   if sum(c[j] for c, j in zip(costs, pick, strict=True)) <= capacity)
        got = planning.solve(costs, values, capacity, units=capacity or 1)
        assert sum(c[j] for c, j in zip(costs, got, strict=True)) <= capacity
        assert sum(v[j] for v, j in zip(values, got, strict=True)) == pytest.approx(best[0])
    with pytest.raises(ValueError, match='below the cheapest'):
        planning.solve([[5, 9]], [[1.0, 0.0]], 4)


def _layers_with_macs(net, shape=(1, 3, 32, 32)):
    _, layers = planning.swappable_layers(net)
    teacher_macs = planning.measure_macs(net, layers, shape, 'calibration', 8)
    return layers, teacher_macs


def test_the_budget_is_met_by_the_counter_and_spent_where_the_output_suffers():
    net, shape = tiny(), (1, 3, 32, 32)
    layers, teacher_macs = _layers_with_macs(net, shape)
    assert teacher_macs == count(net, torch.rand(*shape)).macs
    for layer in layers:   # made-up effects: only the latent layer's output suffers from a low rank
        layer.candidates = planning.candidate_ranks(layer.channels, layer.heads, 4)
        layer.errors = {r: (1.0 - r / layer.channels if layer.path == 'latent.0.attn' else 0.0)
                        for r in layer.candidates}
    budget = (planning.smallest_budget(teacher_macs, layers) + 1.0) / 2
    plan = planning.plan_for_budget(teacher_macs, layers, budget)
    macs, _ = planning.count_ranks(net, plan.ranks, shape, 'calibration', 8)
    assert macs == plan.predicted_macs <= budget * teacher_macs
    assert plan.ranks['latent.0.attn'] == 64                    # all it can have: the others lose nothing
    assert all(plan.ranks[layer.path] % layer.heads == 0 for layer in layers)
    by_energy = planning.energy_plan_for_budget(teacher_macs, layers, budget)   # no measured energy: rank share
    assert by_energy.ranks != plan.ranks and by_energy.predicted_macs <= budget * teacher_macs


def test_the_uniform_plan_is_the_largest_ratio_within_the_budget():
    """Two layers of 16 channels and 2 heads, 10 MACs per unit of rank over a fixed 1000: the comparison's uniform
    plan takes the largest ratio of the 64-step grid whose network fits, not the first that fits."""
    layers = [planning.AttentionLayer(p, 'MDTA', 16, 2, csa_macs=160, macs_min=20, macs_slope=10.0) for p in 'ab']
    teacher = 1000 + 2 * 160
    plan = planning.uniform_plan_for_budget(teacher, layers, (1000 + 2 * 100) / teacher)   # room for rank 10 each
    assert plan.ranks == {'a': 10, 'b': 10} and plan.predicted_macs == 1200
    assert planning.uniform_plan_for_budget(teacher, layers, 1.0).ranks == {'a': 16, 'b': 16}


def test_a_network_no_registry_knows_is_planned_and_rebuilt_from_its_block():
    block = {'type': 'helpers.standin_nets:StandInUNet', 'dim': 8}
    net = build_from_block(block).eval()
    _, layers = planning.swappable_layers(net)
    assert [layer.path for layer in layers] == ['enc.attn', 'mid.0.attn', 'mid.1.attn', 'dec.attn']
    ranks = {'enc.attn': 2, 'mid.0.attn': 4, 'mid.1.attn': 16, 'dec.attn': 8}
    swapped = build_network({'type': 'GLMHASwap', 'base': block, 'rank': ranks, 'warm_start': False})
    assert {p: swapped.get_submodule(p).rank for p in ranks} == ranks
    with pytest.raises(CompressError, match="cannot import network 'helpers.standin_nets:NoSuchNet'"):
        build_from_block({'type': 'helpers.standin_nets:NoSuchNet'})


def test_layer_errors_and_energy_are_measured_on_the_images():
    net = tiny()
    replica, layers = planning.swappable_layers(net)
    crops = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    layers = layers[:2]
    planning.layer_errors(net, layers, crops, 'calibration', 8, candidates=2)
    planning.attention_energy(replica, layers, crops)
    for layer in layers:
        full = layer.candidates[-1]
        assert full == layer.channels and layer.errors[full] < 1e-10      # full rank, warm start: the same network
        assert layer.errors[layer.candidates[0]] > 1e-8
        assert len(layer.energy) == layer.head_dim and layer.energy[-1] == pytest.approx(1.0)
    plan = planning.plan_for_energy(10**9, layers, 0.5)
    for layer in layers:
        smallest = min(k for k in range(1, layer.head_dim + 1) if layer.energy[k - 1] >= 0.5)
        assert plan.ranks[layer.path] == smallest * layer.heads


def _output_mse(a, b, x):
    with torch.no_grad():
        return float(((a(x) - b(x)) ** 2).mean())


@pytest.mark.parametrize('host, gain', [('restormer', 0.8), ('retinexformer', 1.0)])
def test_the_refit_brings_the_warm_start_closer_to_the_teacher(host, gain):
    from glmha_plugin.archs.retinexformer_arch import RetinexFormer
    from glmha_plugin.compress.refit import projection, refit_projections
    from glmha_plugin.swap import swap_attention

    from helpers.common import TINY_RETINEX
    torch.manual_seed(0)
    teacher = (tiny() if host == 'restormer' else RetinexFormer(**TINY_RETINEX)).eval()
    crops, other = torch.rand(2, 8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    _, layers = planning.swappable_layers(teacher)
    paths = [layer.path for layer in layers]
    student = deepcopy(teacher)
    swap_attention(student, rank={p: layer.heads for p, layer in zip(paths, layers, strict=True)}, guidance='none')
    before = _output_mse(student, teacher, other)
    untouched = {k: v.clone() for k, v in student.state_dict().items()}
    results = refit_projections(student, teacher, paths, crops)
    assert [r['path'] for r in results] == paths          # forward order (here the order of the modules)
    assert all(r['mse_after'] < r['mse_before'] for r in results), results
    changed = {k for k, v in student.state_dict().items() if not torch.equal(v, untouched[k])}
    modules = dict(student.named_modules())
    projections = {id(projection(modules[p])) for p in paths}     # only the output projections changed
    assert changed and all(id(modules[k.rsplit('.', 1)[0]]) in projections for k in changed), changed
    assert _output_mse(student, teacher, other) < gain * before    # the whole network, on crops it did not fit
    # at full rank the warm start is exact and the refit keeps it
    exact = deepcopy(teacher)
    swap_attention(exact, rank_ratio=1.0, guidance='none')
    refit_projections(exact, teacher, paths, crops)
    assert _output_mse(exact, teacher, other) < 1e-10


def test_an_unreachable_budget_names_the_smallest_reachable_one():
    net, shape = tiny(), (1, 3, 32, 32)
    layers, teacher_macs = _layers_with_macs(net, shape)
    low = planning.smallest_budget(teacher_macs, layers)
    assert 0.5 < low < 1
    with pytest.raises(CompressError, match=rf'smallest reachable budget is {low:.4f}'):
        planning.check_budget(low - 0.01, teacher_macs, layers, shape)
    planning.check_budget(low, teacher_macs, layers, shape)


# ------------------------------------------------------------------------------------------- dataset and model


def _write_images(folder, n=3, size=(40, 48), seed=0):
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        cv2.imwrite(osp.join(folder, f'img{i}.png'), rng.integers(0, 256, (*size, 3), dtype=np.uint8))
    return folder


def test_unpaired_dataset_crops_and_refuses_small_images(tmp_path):
    folder = _write_images(str(tmp_path / 'lq'), n=3)
    (tmp_path / 'list.txt').write_text('img2.png\nimg0.png\n')
    ds = UnpairedImageDataset(dict(name='u', phase='train', dataroot_lq=folder,
                                   meta_info_file=str(tmp_path / 'list.txt'), gt_size=16, geometric_augs=True,
                                   io_backend={'type': 'disk'}))
    assert len(ds) == 2 and ds[0]['lq'].shape == (3, 16, 16) and ds[0]['lq_path'].endswith('img2.png')
    assert 'gt' not in ds[0]
    whole = UnpairedImageDataset(dict(name='v', phase='val', dataroot_lq=folder, io_backend={'type': 'disk'}))
    assert len(whole) == 3 and whole[1]['lq'].shape == (3, 40, 48)
    big = UnpairedImageDataset(dict(name='b', phase='train', dataroot_lq=folder, gt_size=44,   # wider, not higher
                                    io_backend={'type': 'disk'}))
    with pytest.raises(ValueError, match='img0.png.*40x48, smaller than the training crop 44x44'):
        big[0]


def _distill_opt(tmp_path, progressive=False, **train):
    net = tiny(1)
    torch.save({'params': net.state_dict()}, tmp_path / 'teacher.pth')
    opt = model_opt(tmp_path, grad_clip=False, progressive=progressive)
    opt.update(model_type='DistillModel', network_teacher=dict(type='Restormer', **TINY_RESTORMER),
               network_g=dict(type='GLMHASwap', base=dict(type='Restormer', **TINY_RESTORMER), rank_ratio=0.25))
    opt['path'].update(pretrain_network_teacher=str(tmp_path / 'teacher.pth'))
    opt['train'].pop('pixel_opt')
    opt['train'].update(distill_opt=dict(type='L1Loss', loss_weight=1.0), **train)
    (tmp_path / 'training_states').mkdir(exist_ok=True)
    return opt


def test_distill_model_trains_the_student_against_the_frozen_teacher(tmp_path):
    opt = _distill_opt(tmp_path, accum_iter=2, feature_opt=dict(type='MSELoss', loss_weight=0.5),
                       pixel_opt=dict(type='L1Loss', loss_weight=1.0))
    model = DistillModel(opt)
    teacher = {k: v.clone() for k, v in model.net_teacher.state_dict().items()}
    assert not any(p.requires_grad for p in model.net_teacher.parameters())
    lq = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.update_learning_rate(1)
    model.feed_data({'lq': lq})                                   # no targets: distillation terms only
    model.optimize_parameters(1)
    assert set(model.log_dict) == {'l_feature', 'l_distill'}
    assert len(model.feature_layers) == 8                          # every attention layer of the tiny Restormer
    model.update_learning_rate(2)
    model.feed_data({'lq': lq, 'gt': lq * 0.5})                   # a paired batch: the ground truth mixed in
    model.optimize_parameters(2)
    assert set(model.log_dict) == {'l_feature', 'l_distill', 'l_pix'}
    assert any(not torch.equal(before[k], v) for k, v in model.net_g.state_dict().items())
    assert all(torch.equal(teacher[k], v) for k, v in model.net_teacher.state_dict().items())


def test_distill_model_with_autocast_and_ema_validates_against_the_teacher(tmp_path):
    opt = _distill_opt(tmp_path, ema_decay=0.9)
    opt.update(use_amp=True, amp_bf16=True)
    opt['val'] = dict(save_img=False, use_image=False,
                      metrics={'psnr': dict(type='calculate_psnr', crop_border=0, test_y_channel=False)})
    model = DistillModel(opt)
    model.update_learning_rate(1)
    model.feed_data({'lq': torch.rand(2, 3, 16, 16)})
    model.optimize_parameters(1)
    assert math.isfinite(model.log_dict['l_distill']) and hasattr(model, 'net_g_ema')
    model.feed_data({'lq': torch.rand(2, 3, 16, 16)})
    assert model.teacher_output().dtype == torch.float32

    class Loader(list):
        dataset = type('D', (), {'opt': {'name': 'held'}})()
    images = Loader([{'lq': torch.rand(1, 3, 20, 24), 'gt': torch.rand(1, 3, 20, 24), 'lq_path': ['a.png']},
                     {'lq': torch.rand(1, 3, 20, 24), 'gt': torch.rand(1, 3, 20, 24), 'lq_path': ['b.png']}])
    model.nondist_validation(images, 1, None, False)
    assert set(model.metric_results) == {'psnr_teacher', 'psnr'}
    assert 10 < model.metric_results['psnr_teacher'] < 100 and model.metric_results['psnr'] < 20


def test_distill_model_progressive_stages_count_per_micro_batch(tmp_path):
    """Batches without targets: mini_batch_sizes are per micro-batch, as for ImageCleanModel (the fed batch of
    accum_iter x batch_size_per_gpu keeps accum_iter x them)."""
    opt = _distill_opt(tmp_path, progressive=True, accum_iter=2)   # batch 4, mini [4, 2], iters [2, 2], gt [16, 32]
    model = DistillModel(opt)
    shapes = []
    for it in range(1, 5):
        model.update_learning_rate(it)
        model.feed_data({'lq': torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(it))})
        shapes.append(tuple(model.lq.shape))
        model.optimize_parameters(it)
    assert shapes == [(8, 3, 16, 16), (8, 3, 16, 16), (4, 3, 32, 32), (4, 3, 32, 32)]


def test_distill_model_can_train_the_attention_layers_alone(tmp_path):
    model = DistillModel(_distill_opt(tmp_path, trainable='attention'))
    before = {k: v.clone() for k, v in model.net_g.state_dict().items()}
    model.update_learning_rate(1)
    model.feed_data({'lq': torch.rand(2, 3, 16, 16)})
    model.optimize_parameters(1)
    changed = {k for k, v in model.net_g.state_dict().items() if not torch.equal(before[k], v)}
    assert changed and all('.attn.' in k for k in changed)
    assert any(k.startswith('patch_embed') for k in before) and not any('ffn' in k for k in changed)


def test_resumed_distillation_keeps_the_teachers_params_ema(tmp_path):
    """On resume basicsr's check_resume turns every param_key* params_ema into params; a teacher checkpoint that
    holds params_ema alone is still loaded from params_ema."""
    opt = _distill_opt(tmp_path)
    weights = torch.load(tmp_path / 'teacher.pth', weights_only=True)['params']
    torch.save({'params_ema': weights}, tmp_path / 'teacher.pth')
    opt['path'].update(param_key_teacher='params', resume_state=str(tmp_path / 'training_states' / '4.state'))
    model = DistillModel(opt)
    assert all(torch.equal(weights[k], v) for k, v in model.net_teacher.state_dict().items())


def test_distill_model_needs_its_teacher_and_its_loss(tmp_path):
    opt = _distill_opt(tmp_path)
    other = Restormer(**dict(TINY_RESTORMER, dim=16))
    torch.save({'params': other.state_dict()}, tmp_path / 'other.pth')
    for change, message in ((('path', 'pretrain_network_teacher', None), 'needs path.pretrain_network_teacher'),
                            (('path', 'pretrain_network_teacher', str(tmp_path / 'other.pth')),
                             'does not fit network_teacher \\(Restormer\\): .*size mismatch for patch_embed'),
                            (('train', 'distill_opt', None), 'needs train.distill_opt')):
        bad = deepcopy(opt)
        bad[change[0]][change[1]] = change[2]
        with pytest.raises(ValueError, match=message):
            DistillModel(bad)


# ------------------------------------------------------------------------------------------- the command


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """The demo's rainy photos (tiny copy) and a tiny Restormer trained on them for a few iterations."""
    from glmha_plugin.compress.images import load
    from glmha_plugin.demo.data import make_rain_pairs
    root = tmp_path_factory.mktemp('compress')
    make_rain_pairs(str(root / 'data'), train_short_side=48, test_size=(32, 40), train_photos=('astronaut', 'coffee'),
                    test_photos=('chelsea',), tile_rounds=1)
    inputs = sorted((root / 'data' / 'train' / 'input').glob('*.png'))
    net = tiny()
    optim = torch.optim.Adam(net.parameters(), 2e-3)
    for it in range(12):
        lq, gt = (load(str(p))[..., :32, :32] for p in (inputs[it % len(inputs)],
                                                        str(inputs[it % len(inputs)]).replace('input', 'target')))
        loss = (net(lq) - gt).abs().mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
    torch.save({'params_ema': net.state_dict()}, root / 'teacher.pth')
    return root


def _args(root, out, *extra):
    return ['--network', 'Restormer', '--options', TINY_JSON, '--weights', str(root / 'teacher.pth'),
            '--param-key', 'params_ema', '--images', str(root / 'data' / 'train' / 'input'), '--crop', '24',
            '--plan-crops', '2', '--candidates', '2', '--macs-at', '32x32', '--batch', '2', '--workers', '0',
            '--lr', '1e-3', '--out', str(out), *extra]


@pytest.mark.slow
def test_compress_command_end_to_end(trained, tmp_path, capsys):
    out = tmp_path / 'compressed'
    budget = 0.86
    args = _args(trained, out, '--budget', str(budget), '--iters', '16', '--val-freq', '8',
                 '--val-lq', str(trained / 'data' / 'test' / 'input'),
                 '--val-gt', str(trained / 'data' / 'test' / 'target'))
    assert compress(args) == 0
    printed = capsys.readouterr().out
    assert 'warm start of output error' in printed and 'vs the teacher' in printed
    for name in ('student.pth', 'network_g.yml', 'train.yml', 'report.json', 'report.md', 'report.png'):
        assert (out / name).is_file(), name
    # the student builds from network_g.yml through basicsr's registry and loads student.pth strict
    block = yaml.safe_load((out / 'network_g.yml').read_text())['network_g']
    student = build_network(block)
    student.load_state_dict(torch.load(out / 'student.pth', weights_only=True)['params'], strict=True)
    ranks = block['rank']
    assert all(ranks[p] % h == 0 for p, h in (('latent.0.attn', 8), ('encoder_level2.0.attn', 2)))
    # the budget, by the complexity report's counter
    x = torch.rand(1, 3, 32, 32)
    teacher = Restormer(**TINY_RESTORMER)
    assert count(student.eval(), x).macs <= budget * count(teacher.eval(), x).macs
    # distillation lowered the student-vs-teacher error on the held-out image
    report = json.loads((out / 'report.json').read_text())
    ev = report['evaluation']
    assert ev['student']['psnr_teacher'] > ev['warm_start']['psnr_teacher'] + 1.0, ev
    assert [p['iter'] for p in report['curve']] == [0, 8, 16]
    assert report['curve'][-1]['psnr_teacher'] == pytest.approx(ev['student']['psnr_teacher'], abs=0.01)
    assert 'psnr' in ev['student'] and report['macs']['ratio'] <= budget
    train_opt = yaml.safe_load((out / 'train.yml').read_text())
    assert train_opt['model_type'] == 'DistillModel' and train_opt['network_teacher']['type'] == 'Restormer'
    assert train_opt['path']['param_key_teacher'] == 'params_ema'
    # an earlier run is kept unless asked; --resume continues it (the plan and the finished training reused)
    saved = (out / 'student.pth').read_bytes()
    assert compress(args) == 2
    assert 'holds an earlier compress run' in capsys.readouterr().err
    assert (out / 'student.pth').read_bytes() == saved
    # an interrupted distillation (the states after iteration 8 lost) continues from iteration 8 with --resume
    marker = json.loads((out / 'compress.json').read_text())
    (out / 'compress.json').write_text(json.dumps(dict(marker, distilled=False)))
    experiment = out / 'experiments' / 'compress'
    for name in ('training_states/16.state', 'models/net_g_16.pth', 'models/net_g_latest.pth'):
        (experiment / name).unlink()
    assert compress(args + ['--resume']) == 0
    assert 'plan from' in capsys.readouterr().out
    assert 'Resuming training from epoch: 0, iter: 8' in (out / 'distill.log').read_text()
    resumed = json.loads((out / 'report.json').read_text())
    assert resumed['ranks'] == report['ranks'] and [p['iter'] for p in resumed['curve']] == [0, 8, 16]


def test_energy_target_without_distillation_holds_out_images(trained, tmp_path, capsys):
    out = tmp_path / 'energy'
    assert compress(_args(trained, out, '--energy', '0.9', '--iters', '0', '--holdout', '2')) == 0
    report = json.loads((out / 'report.json').read_text())
    assert report['target'] == {'energy': 0.9} and report['held_out']['images'] == 2
    held_out = (out / 'images_heldout.txt').read_text().split()
    assert len(held_out) == 2 and not set(held_out) & set((out / 'images_train.txt').read_text().split())
    for layer in report['layers']:   # the smallest per-head rank keeping 90 % of the attention maps' energy
        assert layer['energy_kept'] >= 0.9 and layer['rank'] % layer['heads'] == 0
    assert report['evaluation']['student'] == report['evaluation']['warm_start']   # no distillation: the warm start
    assert 'psnr' not in report['evaluation']['student']                          # held out of --images: no targets
    block = yaml.safe_load((out / 'network_g.yml').read_text())['network_g']
    build_network(block).load_state_dict(torch.load(out / 'student.pth', weights_only=True)['params'], strict=True)


def test_refit_writes_its_record_and_improves_the_warm_start(trained, tmp_path, capsys):
    scores = {}
    for refit in (False, True):
        out = tmp_path / f'refit_{refit}'
        extra = ['--refit', '--refit-crops', '4'] if refit else []
        assert compress(_args(trained, out, '--budget', '0.86', '--iters', '0', '--holdout', '2', *extra)) == 0
        report = json.loads((out / 'report.json').read_text())
        scores[refit] = report['evaluation']['warm_start']['psnr_teacher']
        assert (out / 'refit.json').is_file() == refit and (report['refit'] is not None) == refit
    assert 'refit the output projections of' in capsys.readouterr().out
    assert report['refit']['crops'] == [4, 24] and len(report['refit']['layers']) == len(report['ranks'])
    assert scores[True] > scores[False] + 0.5, scores


@pytest.mark.parametrize('case', ['checkpoint', 'empty', 'unreadable', 'small', 'no_attention', 'budget',
                                  'foreign_out'])
def test_bad_input_is_one_line_before_anything_is_written(trained, tmp_path, capsys, case):
    out = tmp_path / 'out'
    images = trained / 'data' / 'train' / 'input'
    args = _args(trained, out, '--budget', '0.9', '--iters', '2')
    want = {
        'checkpoint': r'does not fit Restormer: .*with different shapes: .*patch_embed.proj.weight',
        'empty': r'--images folder .* holds no images',
        'unreadable': r'cannot be read as images: broken.png',
        'small': r'image\(s\) smaller than the 24x24 crop: tiny.png \(10x12\)',
        'no_attention': r'no attention layer swap_attention can replace \(looked for Restormer\'s MDTA',
        'budget': r'--budget 0.5 cannot be met: the smallest reachable budget is 0\.\d{4}',
        'foreign_out': r'holds files that are not a compress run \(notes.txt\)',
    }[case]
    if case == 'checkpoint':
        torch.save({'params': Restormer(**dict(TINY_RESTORMER, dim=16)).state_dict()}, tmp_path / 'other.pth')
        args[args.index('--weights') + 1] = str(tmp_path / 'other.pth')
        args[args.index('--param-key') + 1] = 'params'
    elif case in ('empty', 'unreadable', 'small'):
        folder = tmp_path / 'images'
        folder.mkdir()
        if case != 'empty':
            for p in sorted(images.glob('*.png'))[:2]:
                (folder / p.name).write_bytes(p.read_bytes())
        if case == 'unreadable':
            (folder / 'broken.png').write_bytes(b'not a png')
        if case == 'small':
            cv2.imwrite(str(folder / 'tiny.png'), np.zeros((10, 12, 3), np.uint8))
        args[args.index('--images') + 1] = str(folder)
    elif case == 'no_attention':
        conv = torch.nn.Conv2d(3, 3, 3, padding=1)
        torch.save({'params': conv.state_dict()}, tmp_path / 'conv.pth')
        args[args.index('--network') + 1] = 'torch.nn:Conv2d'
        args[args.index('--options') + 1] = '{"in_channels": 3, "out_channels": 3, "kernel_size": 3, "padding": 1}'
        args[args.index('--weights') + 1] = str(tmp_path / 'conv.pth')
        args[args.index('--param-key') + 1] = 'params'
    elif case == 'budget':
        args[args.index('--budget') + 1] = '0.5'
    elif case == 'foreign_out':
        out.mkdir()
        (out / 'notes.txt').write_text('mine')
    assert compress(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith('error: ') and len(err.splitlines()) == 1, err
    assert re.search(want, err), err
    if case == 'foreign_out':
        assert sorted(os.listdir(out)) == ['notes.txt']
    else:
        assert not out.exists()


def test_overwrite_replaces_only_a_run_of_its_own(tmp_path):
    """--overwrite takes a folder that holds only what compress writes; a file of the user's in it stops the
    command (nothing a user made is removed), as does --overwrite with --resume."""
    from glmha_plugin.compress.pipeline import MARKER, out_state
    out = tmp_path / 'out'
    assert out_state(str(out), resume=False, overwrite=False) == 'new'
    out.mkdir()
    for name in (MARKER, 'plan.json', 'report.md'):
        (out / name).write_text('{}')
    assert out_state(str(out), resume=False, overwrite=True) == 'overwrite'
    assert out_state(str(out), resume=True, overwrite=False) == 'resume'
    with pytest.raises(CompressError, match='pass --resume to continue it or --overwrite'):
        out_state(str(out), resume=False, overwrite=False)
    with pytest.raises(CompressError, match='not both'):
        out_state(str(out), resume=True, overwrite=True)
    (out / 'notes.txt').write_text('mine')
    with pytest.raises(CompressError, match=r'--overwrite: .* also holds files compress did not write \(notes.txt\)'):
        out_state(str(out), resume=False, overwrite=True)


def test_a_host_checkpoint_is_recognised_from_its_tensors(trained, tmp_path, capsys):
    """Without --network (or with --network spandrel) a CSA host checkpoint is rebuilt from its tensors alone."""
    args = _args(trained, tmp_path / 'out', '--energy', '0.9', '--iters', '0', '--holdout', '2')
    for flag in ('--network', '--options'):
        del args[args.index(flag):args.index(flag) + 2]
    assert compress(args) == 0
    assert 'is a Restormer checkpoint: ' in capsys.readouterr().out
    block = yaml.safe_load((tmp_path / 'out' / 'network_g.yml').read_text())['network_g']
    assert block['base'] == dict(json.loads(TINY_JSON), type='Restormer', inp_channels=3, out_channels=3, bias=False,
                                 LayerNorm_type='WithBias', dual_pixel_task=False,
                                 **{k: v for k, v in block['base'].items() if k == 'ffn_expansion_factor'})
    build_network(block).load_state_dict(torch.load(tmp_path / 'out' / 'student.pth', weights_only=True)['params'],
                                         strict=True)
    glmha = GLMHARestormer(**json.loads(TINY_JSON), rank_ratio=0.5)
    torch.save({'params': glmha.state_dict()}, tmp_path / 'glmha.pth')
    conv = torch.nn.Conv2d(3, 3, 3)
    torch.save({'params': conv.state_dict()}, tmp_path / 'conv.pth')
    for weights, want in (('glmha.pth', 'already has GLMHA attention'),
                          ('conv.pth', 'is not a checkpoint of Restormer')):
        args[args.index('--weights') + 1] = str(tmp_path / weights)
        args[args.index('--param-key') + 1] = 'params'
        args[args.index('--out') + 1] = str(tmp_path / f'out_{weights}')
        assert compress(args + ['--network', 'spandrel']) == 2
        err = capsys.readouterr().err
        assert want in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / f'out_{weights}').exists()
