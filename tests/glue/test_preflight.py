"""Pre-flight checks of long runs: GPU-training keys (closest names), values, num_gpu, schedule length."""
import logging
import os.path as osp

import pytest
import torch

from glmha_plugin.commands import train as glmha_train
from glmha_plugin.errors import OptionError
from glmha_plugin.glue.preflight import check_options

from helpers.common import FAST, TINY_TRAIN, expect
from helpers.runs import run_main


@pytest.fixture
def clean_opt(opt):
    opt['model_type'] = 'ImageCleanModel'
    return opt


@pytest.fixture
def warnings_log():
    records = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda r: records.append(r.getMessage())
    logging.getLogger('basicsr').addHandler(handler)
    yield records
    logging.getLogger('basicsr').removeHandler(handler)


def test_all_gpu_options_pass(clean_opt):
    clean_opt.update(use_amp=True, amp_bf16=True, use_channels_last=True, use_compile=True,
                     compile_mode='max-autotune')
    clean_opt['train'].update(accum_iter=4, max_nonfinite_steps=3)
    clean_opt['network_g']['use_checkpoint'] = True
    check_options(clean_opt)


@pytest.mark.parametrize('key, hint', [('use_ampp', 'use_amp'), ('amp_bf61', 'amp_bf16'), ('bfloat16', 'amp_bf16'),
                                       ('use_channel_last', 'use_channels_last'), ('compile_mod', 'compile_mode')])
def test_misspelled_top_level_keys_get_the_closest_name(clean_opt, key, hint):
    clean_opt[key] = True
    expect(clean_opt, f"unknown top-level option {key!r}. Did you mean {hint!r}?")


def test_unrelated_top_level_keys_are_left_alone(clean_opt):
    clean_opt['my_notes'] = 'anything'
    check_options(clean_opt)


@pytest.mark.parametrize('key, hint', [('accum_iters', 'accum_iter'), ('max_nonfinite_step', 'max_nonfinite_steps'),
                                       ('grad_accum', 'accum_iter'), ('warmup_iters', 'warmup_iter')])
def test_misspelled_train_keys(clean_opt, key, hint):
    clean_opt['train'][key] = 2
    expect(clean_opt, f"train.{key}: unknown option. Did you mean 'train.{hint}'?")


def test_misplaced_keys(clean_opt):
    clean_opt['datasets']['train']['accum_iter'] = 4          # where traiNNer-redux puts it
    expect(clean_opt, 'accum_iter in datasets.train is a train option here; move it to train.accum_iter')
    del clean_opt['datasets']['train']['accum_iter']
    clean_opt['use_checkpoint'] = True
    expect(clean_opt, 'use_checkpoint at the top level is a network_g option here; move it to '
                      'network_g.use_checkpoint')
    del clean_opt['use_checkpoint']
    clean_opt['network_g']['use_checkpiont'] = True
    expect(clean_opt, "has no option 'use_checkpiont'. Did you mean 'use_checkpoint'?")


@pytest.mark.parametrize('where, key, value, fragment', [
    ('top', 'use_amp', 'yes', 'use_amp must be true or false'),
    ('top', 'compile_mode', 'max_autotune', "Did you mean 'max-autotune'?"),
    ('train', 'accum_iter', 0, 'train.accum_iter must be a whole number >= 1, got 0'),
    ('train', 'max_nonfinite_steps', 2.5, 'train.max_nonfinite_steps must be a whole number >= 1'),
])
def test_bad_values(clean_opt, where, key, value, fragment):
    (clean_opt if where == 'top' else clean_opt['train'])[key] = value
    expect(clean_opt, fragment)


def test_a_model_that_ignores_the_options_is_refused(opt):
    opt['model_type'] = 'SRModel'                          # basicsr's own model
    opt['use_amp'] = True
    opt['train']['accum_iter'] = 2
    expect(opt, 'use_amp, train.accum_iter: model_type SRModel does not implement them', 'ImageCleanModel')


def test_num_gpu_without_gpus(clean_opt, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 0)
    clean_opt['num_gpu'] = 8                                 # Restormer's own YAML
    msg = expect(clean_opt, 'num_gpu: 8, but no GPU is visible', 'set num_gpu: auto')
    assert '\n' not in msg
    expect(clean_opt, 'num_gpu: auto', is_train=False)       # test runs too
    clean_opt['num_gpu'] = 'all'
    expect(clean_opt, "num_gpu must be auto or a whole number >= 0, got 'all'")
    for ok in ('auto', 0):
        clean_opt['num_gpu'] = ok
        check_options(clean_opt)


def test_num_gpu_more_than_visible(monkeypatch, warnings_log):
    """Decisions for a 2-GPU machine (device count replaced): DataParallel refused, DDP warned."""
    from glmha_plugin.glue.preflight import check_num_gpu
    monkeypatch.setattr(torch.cuda, 'device_count', lambda: 2)
    with pytest.raises(OptionError, match=r'only 2 GPU\(s\) are visible.*set num_gpu: auto'):
        check_num_gpu(8, 'none')
    check_num_gpu(8, 'pytorch')
    assert any('with --launcher pytorch' in m and 'num_gpu: auto' in m for m in warnings_log)
    check_num_gpu(2, 'none')


@pytest.mark.filterwarnings('ignore:Detected call of:UserWarning')
def test_basicsr_cosine_past_its_periods_is_refused_with_both_numbers(clean_opt):
    from basicsr.models.lr_scheduler import CosineAnnealingRestartLR
    clean_opt['train']['scheduler'] = dict(type='CosineAnnealingRestartLR', periods=[800], restart_weights=[1],
                                           eta_min=1e-7)   # basicsr's own cosine
    clean_opt['train']['total_iter'] = 801                  # iteration 801 runs step 800: still in the schedule
    check_options(clean_opt)
    clean_opt['train']['total_iter'] = 802
    expect(clean_opt, 'train.total_iter (802)', 'periods [800] sum to 800', 'TypeError', 'at iteration 802')
    # the boundary is upstream's: step 800 works, step 801 (iteration 802) dies
    s = CosineAnnealingRestartLR(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1), periods=[800],
                                 restart_weights=[1], eta_min=0)
    for _ in range(800):
        s.step()
    with pytest.raises(TypeError, match='not NoneType'):
        s.step()


def test_cyclic_cosine_past_its_periods_is_a_warning(clean_opt, warnings_log):
    clean_opt['train']['scheduler'] = dict(type='CosineAnnealingRestartCyclicLR', periods=[300, 500],
                                           restart_weights=[1, 1], eta_mins=[2e-3, 1e-6])
    clean_opt['train']['total_iter'] = 1000
    check_options(clean_opt)
    assert any('total_iter (1000)' in m and 'sum to 800' in m and 'holds its last eta_min' in m
               for m in warnings_log)


def test_glmha_train_prints_the_check_and_exits_2(workdir):
    proc = run_main(glmha_train.main, ['-opt', TINY_TRAIN, '--force_yml', *FAST, 'model_type=ImageCleanModel',
                                       'use_ampp=true'], workdir, check=False)
    assert proc.returncode == 2 and "Did you mean 'use_amp'?" in proc.stderr and 'Traceback' not in proc.stderr
    assert not osp.exists(osp.join(workdir, 'experiments'))
