"""GPU-scale training options of the plugin's models, in-process: precision, accumulation, guard, compile, layout."""
import logging
import math
import os
from copy import deepcopy

import pytest
import torch
from torch import nn

import glmha_plugin.models.training as training
from glmha_plugin.glue import compat
from glmha_plugin.models import CASSIModel, ImageCleanModel
from glmha_plugin.models.amp import Precision, resolve_precision
from glmha_plugin.models.training import CompileError, NonFiniteLossError

from helpers.common import free_port
from helpers.recipe import model_opt

pytestmark = pytest.mark.filterwarnings('ignore:Detected call of:UserWarning')  # basicsr steps schedulers first
CPU = torch.device('cpu')


def _opt(tmp_path, clip=False, **top):
    (tmp_path / 'training_states').mkdir(exist_ok=True)
    opt = model_opt(tmp_path, grad_clip=clip, progressive=False)
    opt.update(top)
    return opt


def _batch(n=4, seed=0, size=16):
    g = torch.Generator().manual_seed(seed)
    lq = torch.rand(n, 3, size, size, generator=g)
    return {'lq': lq, 'gt': (lq * 0.5 + 0.1).clamp(0, 1)}


def _step(model, it, batch):
    model.update_learning_rate(it)
    model.feed_data(batch)
    model.optimize_parameters(it)


def _params(model):
    return {k: v.detach().clone() for k, v in model.get_bare_model(model.net_g).state_dict().items()}


class _Warnings(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def warnings_log():
    handler = _Warnings()
    logger = logging.getLogger('basicsr')
    logger.addHandler(handler)
    yield handler.messages
    logger.removeHandler(handler)


# ---------------------------------------------------------------- precision decisions


def test_precision_per_device(monkeypatch):
    said = []
    assert resolve_precision(False, True, CPU, said.append) == Precision('cpu')
    assert resolve_precision(True, True, CPU, said.append) == Precision('cpu', torch.bfloat16) and not said
    cpu_fp16 = resolve_precision(True, False, CPU, said.append)
    assert cpu_fp16.dtype == torch.bfloat16 and not cpu_fp16.needs_scaler
    assert len(said) == 1 and 'using bfloat16' in said[0]
    # CUDA decisions, without a GPU: only the bf16 capability query is replaced
    cuda = torch.device('cuda', 0)
    monkeypatch.setattr('glmha_plugin.models.amp.cuda_has_bf16', lambda: True)
    said.clear()
    assert resolve_precision(True, True, cuda, said.append) == Precision('cuda', torch.bfloat16)
    fp16 = resolve_precision(True, False, cuda, said.append)
    assert fp16 == Precision('cuda', torch.float16) and fp16.needs_scaler and not said
    monkeypatch.setattr('glmha_plugin.models.amp.cuda_has_bf16', lambda: False)
    fallback = resolve_precision(True, True, cuda, said.append)
    assert fallback == Precision('cuda', torch.float16) and fallback.needs_scaler
    assert len(said) == 1 and 'no native bfloat16' in said[0] and '\n' not in said[0]


def test_model_uses_its_device_for_the_decision(tmp_path, monkeypatch):
    seen = []
    real = training.resolve_precision
    monkeypatch.setattr(training, 'resolve_precision', lambda *a: seen.append(a[2]) or real(*a))
    ImageCleanModel(_opt(tmp_path, use_amp=True, amp_bf16=True))
    assert seen == [CPU]


# ---------------------------------------------------------------- mixed precision


def _conv_dtypes(net):
    seen = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            m.register_forward_hook(lambda mod, args, out: seen.append((args[0].dtype, out.dtype)))
    return seen


@pytest.mark.parametrize('amp', [True, False])
def test_convolutions_run_in_bf16_under_use_amp(tmp_path, amp):
    torch.manual_seed(0)
    model = ImageCleanModel(_opt(tmp_path, use_amp=amp, amp_bf16=True))
    seen = _conv_dtypes(model.net_g)
    _step(model, 1, _batch())
    want = torch.bfloat16 if amp else torch.float32
    assert len(seen) >= 10 and all(o == want for _, o in seen), seen
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32
               for p in model.net_g.parameters() if p.grad is not None)  # float32 master weights
    assert model.output.dtype == torch.float32 and model.grad_scaler is None  # bf16: no scaler
    seen.clear()
    model.feed_data(_batch(1, seed=3, size=20))
    model.test()                                                           # validation / test forward
    assert seen and all(o == want for _, o in seen) and model.output.dtype == torch.float32


def test_spectral_models_use_amp_too(tmp_path):
    torch.manual_seed(0)
    opt = model_opt(tmp_path, grad_clip=False, progressive=False)
    opt.update(model_type='CASSIModel', use_amp=True, amp_bf16=True,
               network_g=dict(type='GLMHAMST', dim=28, stage=2, num_blocks=[1, 1, 1]))
    opt['train'].update(accum_iter=2, optim_g=dict(type='Adam', lr=1e-3),
                        scheduler=dict(type='MultiStepLR', milestones=[10], gamma=0.5))
    opt['val'] = dict(save_img=False, metrics={})
    model = CASSIModel(opt)
    seen = _conv_dtypes(model.net_g)
    gt = torch.rand(2, 28, 16, 16)
    model.update_learning_rate(1)
    model.feed_data({'gt': gt, 'mask': (torch.rand(1, 1, 16, 16) > 0.5).float().expand(2, 1, 16, 16)})
    assert model.phi.shape[0] == 2
    model.optimize_parameters(1)
    assert seen and all(o == torch.bfloat16 for _, o in seen)
    assert model.phi.shape[0] == 2 and model.output.shape == gt.shape  # batch restored after the micro-batches


# ---------------------------------------------------------------- gradient accumulation


@pytest.mark.parametrize('clip', [False, True])
def test_accum_iter_4_of_1_equals_one_batch_of_4(tmp_path, clip):
    """Same samples: accum_iter 4 with micro-batches of 1 gives the update of batch 4 (SGD: scale-sensitive)."""
    models = {}
    for n in (1, 4):
        torch.manual_seed(0)
        opt = _opt(tmp_path, clip=clip)
        opt['train']['optim_g'] = dict(type='SGD', lr=0.5, momentum=0.9)
        opt['train']['accum_iter'] = n
        models[n] = ImageCleanModel(opt)
    assert all(torch.equal(a, b) for a, b in zip(_params(models[1]).values(), _params(models[4]).values(), strict=True))
    start = _params(models[1])
    for it in (1, 2, 3):
        for m in models.values():
            _step(m, it, _batch(4, seed=it))
        assert models[4].log_dict['l_pix'] == pytest.approx(models[1].log_dict['l_pix'], rel=1e-5)
    one, four = _params(models[1]), _params(models[4])
    assert any(not torch.equal(one[k], start[k]) for k in one)
    for k in one:
        torch.testing.assert_close(four[k], one[k], rtol=1e-4, atol=1e-6, msg=k)


def test_progressive_stages_count_per_micro_batch(tmp_path):
    """mini_batch_sizes are per micro-batch: the fed batch (accum_iter x batch_size_per_gpu) keeps accum_iter x them."""
    opt = model_opt(tmp_path, grad_clip=False, progressive=True)   # batch 4, mini [4, 2], iters [2, 2], gt [16, 32]
    opt['train']['accum_iter'] = 2
    model = ImageCleanModel(opt)
    shapes = []
    for it in range(1, 5):
        model.update_learning_rate(it)
        model.feed_data(_batch(8, seed=it, size=32))
        shapes.append(tuple(model.lq.shape))
        model.optimize_parameters(it)
    assert shapes == [(8, 3, 16, 16), (8, 3, 16, 16), (4, 3, 32, 32), (4, 3, 32, 32)]


def test_micro_batches_must_split_evenly(tmp_path):
    opt = _opt(tmp_path)
    opt['train']['accum_iter'] = 3
    model = ImageCleanModel(opt)
    with pytest.raises(ValueError, match='does not split into 3 equal micro-batches'):
        _step(model, 1, _batch(4))


def test_loader_delivers_accum_iter_micro_batches(tmp_path, demo_data):
    """compat's accum_loader: train_pipeline's loader gives accum_iter x batch_size_per_gpu per iteration."""
    import basicsr.train as bt
    data = demo_data / 'datasets' / 'demo_rain' / 'train'
    opt = dict(world_size=1, rank=0, num_gpu=0, dist=False, manual_seed=0, train=dict(total_iter=10, accum_iter=3),
               datasets={'train': dict(name='t', type='PairedImageDataset', phase='train', scale=1,
                                       dataroot_gt=str(data / 'target'), dataroot_lq=str(data / 'input'),
                                       io_backend={'type': 'disk'}, gt_size=16, use_hflip=False, use_rot=False,
                                       use_shuffle=True, num_worker_per_gpu=0, batch_size_per_gpu=2,
                                       dataset_enlarge_ratio=6)})
    logger = logging.getLogger('accum-test')
    assert bt.create_train_val_dataloader is compat._create_train_val_dataloader
    loader, _, _, epochs, _ = bt.create_train_val_dataloader(deepcopy(opt), logger)
    images = len(os.listdir(data / 'target'))
    assert next(iter(loader))['lq'].shape[0] == 6 and len(loader) == images  # images x 6 / 6 per iteration
    assert epochs == math.ceil(10 / images)                                  # 10 iterations of `images` per epoch
    upstream, _, _, _, _ = compat.ORIGINALS['accum_loader'](deepcopy(opt), logger)
    assert next(iter(upstream))['lq'].shape[0] == 2                          # the symptom: micro-batch only
    kept = deepcopy(opt)
    bt.create_train_val_dataloader(kept, logger)
    assert kept['datasets']['train']['batch_size_per_gpu'] == 2              # the option is restored for the model


@pytest.fixture
def single_rank_group(monkeypatch):
    import torch.distributed as dist
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    dist.init_process_group('gloo', rank=0, world_size=1)
    yield
    dist.destroy_process_group()


def test_ddp_all_reduces_once_per_step(tmp_path, single_rank_group, monkeypatch):
    """Under DDP the first accum_iter - 1 micro-batches run in no_sync; the result equals the unwrapped model's."""
    from torch.nn.parallel import DistributedDataParallel
    entered, calls = [], []
    real, real_forward = DistributedDataParallel.no_sync, DistributedDataParallel.forward
    monkeypatch.setattr(DistributedDataParallel, 'no_sync',
                        lambda self: entered.append(1) or calls.append('no_sync') or real(self))
    monkeypatch.setattr(DistributedDataParallel, 'forward',
                        lambda self, *a, **k: calls.append('forward') or real_forward(self, *a, **k))
    results = []
    for distributed in (True, False):
        torch.manual_seed(0)
        opt = _opt(tmp_path, dist=distributed)
        opt['train'].update(accum_iter=3, optim_g=dict(type='SGD', lr=0.5))
        model = ImageCleanModel(opt)
        assert isinstance(model.net_g, DistributedDataParallel) == distributed
        for it in (1, 2):
            _step(model, it, _batch(6, seed=it))
        results.append(_params(model))
    assert len(entered) == 2 * 2                                  # 2 of 3 micro-batches, 2 steps
    assert calls == ['no_sync', 'forward', 'no_sync', 'forward', 'forward'] * 2   # the last one all-reduces
    for k, v in results[1].items():
        torch.testing.assert_close(results[0][k], v, rtol=1e-5, atol=1e-7)


# ---------------------------------------------------------------- non-finite guard


def test_one_ranks_nonfinite_step_is_skipped_by_all(tmp_path):
    """Under DDP the ranks vote (one all-reduce): a NaN loss on rank 1 alone makes both ranks skip the step, so
    their weights stay equal (2 gloo processes, tests/helpers/nonfinite_vote.py)."""
    import subprocess
    import sys
    helper = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'helpers', 'nonfinite_vote.py')
    procs = [subprocess.Popen([sys.executable, helper, str(rank), str(tmp_path)]) for rank in (0, 1)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert [(tmp_path / f'rank{r}.txt').read_text() for r in (0, 1)] == ['False', 'False']



def test_nonfinite_step_is_skipped_then_training_stops(tmp_path, warnings_log):
    torch.manual_seed(0)
    opt = _opt(tmp_path)
    opt['train'].update(ema_decay=0.5, max_nonfinite_steps=3)
    model = ImageCleanModel(opt)
    _step(model, 1, _batch())
    weights, ema = _params(model), {k: v.clone() for k, v in model.net_g_ema.state_dict().items()}
    adam_steps = [s['step'].item() for s in model.optimizer_g.state.values()]
    nan = _batch()
    nan['lq'][0, 0, 0, 0] = float('nan')
    _step(model, 2, nan)
    assert model.nonfinite_streak == 1
    assert all(torch.equal(v, weights[k]) for k, v in _params(model).items())
    assert all(torch.equal(v, ema[k]) for k, v in model.net_g_ema.state_dict().items())
    assert [s['step'].item() for s in model.optimizer_g.state.values()] == adam_steps
    assert any(m.startswith('iter 2: non-finite loss or gradients') and 'step skipped' in m for m in warnings_log)
    _step(model, 3, _batch(seed=3))
    assert model.nonfinite_streak == 0 and any(not torch.equal(v, weights[k]) for k, v in _params(model).items())
    # NaN gradients with a finite loss count too
    hook = next(model.net_g.parameters()).register_hook(lambda g: g * float('nan'))
    _step(model, 4, _batch(seed=4))
    hook.remove()
    assert model.nonfinite_streak == 1
    _step(model, 5, nan)
    with pytest.raises(NonFiniteLossError, match=r'stopped at iter 6: 3 consecutive steps.*--auto_resume'):
        _step(model, 6, nan)


# ---------------------------------------------------------------- float16 GradScaler (forced on CPU)


@pytest.fixture
def fp16(monkeypatch):
    monkeypatch.setattr(training, 'resolve_precision', lambda *a: Precision('cpu', torch.float16))


def test_fp16_scaler_unscales_before_clipping_and_resumes(tmp_path, fp16):
    torch.manual_seed(0)
    opt = _opt(tmp_path, clip=True, use_amp=True)
    model = ImageCleanModel(opt)
    assert isinstance(model.grad_scaler, torch.amp.GradScaler) and model.grad_scaler.get_scale() == 2.0 ** 16
    _step(model, 1, _batch())
    norm = torch.norm(torch.stack([p.grad.norm() for p in model.net_g.parameters() if p.grad is not None]))
    assert norm == pytest.approx(0.01, rel=1e-3), 'clipping must see unscaled gradients (norm 0.01 after the step)'
    nan = _batch()
    nan['lq'][:] = float('nan')
    _step(model, 2, nan)                                   # skipped: no scaler step, but the scale backs off
    assert model.grad_scaler.get_scale() == 2.0 ** 15
    (tmp_path / 'models').mkdir()
    model.save(epoch=0, current_iter=2)                   # net_g_2.pth and 2.state, as training saves them
    state_file = tmp_path / 'training_states' / '2.state'
    resume_opt = dict(opt, auto_resume=True)
    state = compat.load_resume_state(resume_opt)          # what train_pipeline calls for --auto_resume
    assert state['iter'] == 2 and state['grad_scaler']['scale'] == 2.0 ** 15 and state_file.is_file()
    fresh = ImageCleanModel(_opt(tmp_path, clip=True, use_amp=True))
    assert fresh.grad_scaler.get_scale() == 2.0 ** 16
    fresh.resume_training(state)
    assert fresh.grad_scaler.get_scale() == 2.0 ** 15


def test_bf16_and_float32_states_have_no_scaler(tmp_path):
    model = ImageCleanModel(_opt(tmp_path, use_amp=True, amp_bf16=True))
    model.save_training_state(0, 1)
    state = torch.load(tmp_path / 'training_states' / '1.state', weights_only=True)
    assert 'grad_scaler' not in state and {'epoch', 'iter', 'optimizers', 'schedulers'} <= set(state)


# ---------------------------------------------------------------- channels-last and compile


def test_channels_last_weights_and_inputs_same_result(tmp_path):
    out = {}
    for cl in (False, True):
        torch.manual_seed(0)
        model = ImageCleanModel(_opt(tmp_path, use_channels_last=cl))
        seen = []
        model.net_g.register_forward_pre_hook(lambda m, args, seen=seen: seen.append(args[0]))
        _step(model, 1, _batch())
        assert seen[0].is_contiguous(memory_format=torch.channels_last) == cl
        conv = model.net_g.patch_embed.proj.weight
        assert conv.is_contiguous(memory_format=torch.channels_last) == cl
        out[cl] = _params(model)
    for k in out[False]:
        torch.testing.assert_close(out[True][k], out[False][k], rtol=1e-4, atol=1e-6, msg=k)


class TinyNet(nn.Module):
    """A two-conv image network: what the compile tests compile (a whole Restormer takes minutes on CPU)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.GELU(), nn.Conv2d(4, 3, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


@pytest.fixture
def tiny_net(monkeypatch):
    import basicsr.models.sr_model as sr_model
    monkeypatch.setattr(sr_model, 'build_network', lambda opt: TinyNet())
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def test_compile_failure_stops_with_the_option_to_switch_off(tmp_path, tiny_net, monkeypatch):
    import torch._inductor.compile_fx as compile_fx

    def broken(*args, **kwargs):
        raise RuntimeError('no C++ compiler found')

    monkeypatch.setattr(compile_fx, 'compile_fx', broken)
    model = ImageCleanModel(_opt(tmp_path, use_compile=True))
    with pytest.raises(CompileError, match=r'use_compile: torch.compile .*failed.*no C\+\+ compiler found.*'
                                           r'Set use_compile: false'):
        _step(model, 1, _batch())
    with pytest.raises(CompileError, match="mode 'fastest'"):
        ImageCleanModel(_opt(tmp_path, use_compile=True, compile_mode='fastest'))


@pytest.mark.slow
def test_compile_trains_and_validates_like_eager(tmp_path, tiny_net):
    """Real inductor compile of a tiny network: training, eval mode and the EMA copy (about a minute on 2 cores)."""
    results = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        opt = _opt(tmp_path, use_compile=compiled)
        opt['train']['ema_decay'] = 0.5
        model = ImageCleanModel(opt)
        for it in (1, 2):
            _step(model, it, _batch())
        model.feed_data(_batch(1, seed=5, size=24))
        model.test()
        bare = model.get_bare_model(model.net_g)
        assert (getattr(bare, '_compiled_call_impl', None) is not None) == compiled
        assert (getattr(model.net_g_ema, '_compiled_call_impl', None) is not None) == compiled
        results[compiled] = (_params(model), model.output.clone(), model.log_dict['l_pix'])
    assert list(results[True][0]) == list(results[False][0])  # checkpoints keep their keys (no _orig_mod.)
    for k, v in results[False][0].items():
        torch.testing.assert_close(results[True][0][k], v, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(results[True][1], results[False][1], rtol=1e-4, atol=1e-5)
    assert results[True][2] == pytest.approx(results[False][2], rel=1e-5)
