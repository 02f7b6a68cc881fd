"""The prepared GPU check (tools/gpu_check.sh): on CPU end to end in its quick mode, and its parts."""
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

from helpers.common import REPO, run

sys.path.insert(0, osp.join(REPO, 'tools'))   # the GPU check lives outside the wheel, in tools/gpu_check/
import gpu_check as gpucheck
from gpu_check import bench, parity, probe, training
from gpu_check import driver as gpu_check

HOST_ARCHS = ('Restormer', 'GLMHARestormer', 'MST', 'GLMHAMST', 'MST_Plus_Plus', 'GLMHAMSTPlusPlus')


@pytest.mark.slow
def test_gpu_check_runs_steps_as_processes_and_reports_them(tmp_path):
    """The command on CPU in its quick mode with three of its steps (install in the driver, the other two as
    processes): the report's summary and sections, the log, the plots copied, the exit status. The other steps
    run in this process below, each as its process would (gpu_check.step_main)."""
    out, work = tmp_path / 'out', tmp_path / 'work'
    steps = ['install', 'environment', 'benchmark_amp']
    proc = run(['bash', osp.join(REPO, 'tools', 'gpu_check.sh'), str(out), '--quick', '--steps', *steps, '--work',
                str(work)], cwd=tmp_path, timeout=900)
    report = (out / 'report.md').read_text()
    for i, name in enumerate(steps, 1):
        step = next(s for s in gpu_check.STEPS if s.name == name)
        assert f'## {i}. {step.name}: ' in report, step.name
        assert re.search(rf'\| {i} \| {step.name} \| .* \| \**(pass|partial)\** \|', report), step.name
    for table in ('Whole model', 'Peak memory of a training step', 'Profiles', 'Targets'):
        assert f'#### {table}' in report, table
    assert 'precision: torch.autocast bf16' in report
    assert {'report.md', 'gpu_check.log', 'benchmark_amp_benchmark.png'} <= set(os.listdir(out))
    assert 'no step failed' in proc.stdout


def run_step(module, tmp_path, *args):
    """``python -m gpu_check.<module> --out OUT --work WORK --quick ARGS`` in this process: its exit status,
    its result and its folder."""
    parser = module.parser() if hasattr(module, 'parser') else gpucheck.step_parser(module.__name__)
    out = tmp_path / 'out'
    code = gpucheck.step_main(module.run, parser, ['--out', str(out), '--work', str(tmp_path / 'work'), '--quick',
                                                   *args])
    result = gpucheck.read_result(str(out))
    assert code == 0 and result.status in (gpucheck.PASS, gpucheck.PARTIAL), result
    return result, out


def test_parity_step_on_cpu(tmp_path):
    result, _ = run_step(parity, tmp_path)
    assert result.status == gpucheck.PARTIAL and 'no CUDA device: CUDA vs CPU not run' in result.summary
    for arch in HOST_ARCHS:
        assert f'| {arch} | 2x' in result.markdown, arch


@pytest.mark.slow
def test_training_step_trains_resumes_and_sees_bf16(tmp_path):
    """train_bf16 (train_fp32 / train_fp16 differ in PRECISIONS' options only): two glmha-train processes."""
    result, _ = run_step(training, tmp_path, '--precision', 'bf16')
    assert '| first | 1..4 |' in result.markdown and '| resumed | 5..6 --auto_resume |' in result.markdown
    assert 'convolutions in bfloat16' in result.summary


def test_training_steps_differ_in_the_precision_options_only(tmp_path):
    opts = {p: training.write_options(str(tmp_path / f'{p}.yml'), 'x', p, 4, 2, workers=0) for p in training.PRECISIONS}
    assert {k for k in opts['fp16'] if opts['fp16'][k] != opts['fp32'].get(k)} == {'use_amp', 'amp_bf16'}
    assert (opts['fp32'].get('use_amp'), opts['bf16']['amp_bf16'], opts['fp16']['amp_bf16']) == (None, True, False)
    steps = {s.name: s.args for s in gpu_check.STEPS if s.module == 'training'}
    assert steps == {'train_fp32': ('--precision', 'fp32'), 'train_bf16': ('--precision', 'bf16'),
                     'train_fp16': ('--precision', 'fp16'), 'torchrun': ('--launcher', 'torchrun')}


@pytest.mark.slow
def test_torchrun_step(tmp_path):
    result, _ = run_step(training, tmp_path, '--launcher', 'torchrun')
    assert '| torchrun | 1..4 |' in result.markdown and 'backend gloo' in result.markdown


def test_benchmark_step_float32_tables(tmp_path):
    result, out = run_step(bench, tmp_path, '--precision', 'fp32')
    for table in ('Attention layer alone', 'Whole model', 'Peak memory of a training step'):
        assert f'#### {table}' in result.markdown, table
    assert (out / 'benchmark.png').is_file()


# ---------------------------------------------------------------- the driver


def test_wheel_list_is_what_gpu_wheels_downloads():
    proc = subprocess.run(['bash', osp.join(REPO, 'tools', 'gpu_check.sh'), '--list-wheels'],
                          capture_output=True, text=True, check=True)
    lines = proc.stdout.split('\n')
    assert 'basicsr 1.4.2 sdist' in lines and 'lmdb 3.0.0 wheel' in lines
    assert len([line for line in lines if line]) == len(gpu_check.WHEELS)


def test_wheel_file_matches_name_and_exact_version(tmp_path):
    for name in ('basicsr-1.4.2.tar.gz', 'basicsr-1.4.20.tar.gz', 'lmdb-3.0.0-cp312-cp312-manylinux2014_x86_64.whl',
                 'mmengine-0.10.6-py3-none-any.whl'):
        (tmp_path / name).write_bytes(b'')
    assert gpu_check.wheel_file('basicsr', '1.4.2', str(tmp_path)).endswith('basicsr-1.4.2.tar.gz')
    assert gpu_check.wheel_file('lmdb', '3.0.0', str(tmp_path)).endswith('.whl')
    assert gpu_check.wheel_file('mmengine', '0.10.7', str(tmp_path)) is None
    assert gpu_check.wheel_file('mmengine', '0.10.7', str(tmp_path / 'absent')) is None
    (tmp_path / 'other').mkdir()
    (tmp_path / 'other' / 'basicsr-1.4.20.tar.gz').write_bytes(b'')
    assert gpu_check.wheel_file('basicsr', '1.4.2', str(tmp_path / 'other')) is None


def test_install_names_a_missing_package_without_its_wheel(tmp_path, monkeypatch):
    """Nothing is installed here: a module that is absent and has no wheel stops the step with the remedy."""
    monkeypatch.setitem(gpu_check.WHEELS, 'glmha_no_such_module', ('glmha-no-such-module', '0.1', 'wheel'))
    monkeypatch.setattr(gpu_check, '_pip', lambda *a: pytest.fail('pip must not run'))
    result = gpu_check.install(sys.executable, str(tmp_path), dict(os.environ))
    assert result['status'] == gpucheck.FAIL and 'glmha-no-such-module==0.1' in result['summary']
    assert 'tools/gpu_wheels.sh' in result['markdown']


def test_a_step_over_its_limit_is_stopped(tmp_path):
    tee = gpu_check.Tee(str(tmp_path / 'log'))
    code, seconds = gpu_check.run_step_process([sys.executable, '-c', 'import time; print("up", flush=True); '
                                                'time.sleep(60)'], dict(os.environ), 2, tee)
    assert code is None and seconds < 30
    assert 'up' in (tmp_path / 'log').read_text()


def test_steps_past_the_deadline_fail_and_the_exit_status_says_so(tmp_path, capsys):
    code = gpu_check.main([str(tmp_path / 'out'), '--steps', 'environment', '--deadline', '0.001',
                           '--work', str(tmp_path / 'work')])
    report = (tmp_path / 'out' / 'report.md').read_text()
    assert code == 1 and 'not started: the 0 s of the whole check were used' in report
    assert 'FAILED: environment' in capsys.readouterr().out


# ---------------------------------------------------------------- the steps' parts


def test_step_main_records_an_exception_as_a_failure(tmp_path):
    def broken(args):
        raise RuntimeError('CUDA error: an illegal memory access was encountered')

    code = gpucheck.step_main(broken, gpucheck.step_parser('x'), ['--out', str(tmp_path), '--work', str(tmp_path)])
    result = gpucheck.read_result(str(tmp_path))
    assert code == 1 and result.status == gpucheck.FAIL and 'illegal memory access' in result.summary
    assert 'Traceback' in result.markdown
    assert gpucheck.read_result(str(tmp_path / 'none')) is None


def test_parity_covers_every_host_architecture():
    from glmha_plugin.analysis.hosts import HOSTS
    archs = [arch for _, arch in parity.architectures()]
    assert {'Restormer', 'GLMHARestormer', 'MST', 'GLMHAMST', 'MST_Plus_Plus', 'GLMHAMSTPlusPlus'} <= set(archs)
    assert len(archs) >= 2 * len(HOSTS)


def test_parity_accelerator_path_and_its_table():
    """The CUDA half of a row, run with the CPU standing in for the accelerator (errors are then tiny)."""
    host, arch = next((h, a) for h, a in parity.architectures() if a == 'GLMHARestormer')
    row = parity.compare(host, arch, side=16, batch=2, device='cpu')
    assert row['ok'] and row['fwd'] < 1e-6 and row['grad'] < 1e-6 and row['cpu32_vs_64'] < 1e-5
    md = parity.table([row], cuda=True)
    assert '| GLMHARestormer | 2x3x16x16 |' in md and len(md.strip().split('\n')) == 3
    assert parity.rel_error(torch.tensor([float('nan'), 1.0]), torch.ones(2)) == float('inf')


class _FakeModel:
    """What :func:`probe._watch` uses of a basicsr model."""

    def __init__(self):
        self.net_g = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 3, 1))
        self.log_dict = {}

    def get_bare_model(self, net):
        return net

    def optimize_parameters(self, current_iter):
        self.net_g.train()
        self.net_g(torch.rand(1, 3, 8, 8)).mean().backward()
        self.log_dict = {'l_pix': 0.5 if current_iter < 2 else float('nan')}


def test_probe_sees_the_dtype_the_convolutions_ran_in_and_nonfinite_losses():
    model, record = _FakeModel(), {'losses': []}
    net = probe._watch(model, record)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        model.optimize_parameters(1)
    model.optimize_parameters(2)
    net.eval()
    with torch.no_grad():
        net(torch.rand(1, 3, 8, 8))
    probe._final(net, record)
    assert record['conv_dtypes'] == {'train': ['torch.bfloat16', 'torch.float32'], 'eval': ['torch.float32']}
    assert record['losses'][0] == [1, {'l_pix': 0.5}] and not record['losses_finite'] and record['weights_finite']


def test_check_run_refuses_float32_convolutions_for_an_amp_request():
    record = {'losses': [[1, {'l_pix': 0.1}], [2, {'l_pix': 0.09}]], 'losses_finite': True, 'weights_finite': True,
              'conv_dtypes': {'train': ['torch.float32'], 'eval': ['torch.float32']}}
    log = '# psnr: 21.5\n'
    assert training.check_run(0, record, log, 1, 2, 'torch.float32', on_cpu=True) == []
    problems = training.check_run(0, record, log, 1, 2, 'torch.bfloat16', on_cpu=True)
    assert problems and all('expected' in p for p in problems)
    assert training.check_run(0, record, '', 1, 3, 'torch.float32', on_cpu=True)  # no PSNR, wrong last iteration
    assert training.check_run(1, None, log, 1, 2, 'torch.float32', on_cpu=True) == ['exit status 1']


def test_check_run_expects_bfloat16_for_a_float16_request_on_cpu_only():
    def record(dtype):
        return {'losses': [[1, {'l_pix': 0.1}], [2, {'l_pix': 0.09}]], 'losses_finite': True,
                'weights_finite': True, 'conv_dtypes': {'train': [dtype], 'eval': [dtype]}}
    log = '# psnr: 21.5\n'
    assert training.check_run(0, record('torch.bfloat16'), log, 1, 2, 'torch.float16', on_cpu=True) == []
    assert training.check_run(0, record('torch.float16'), log, 1, 2, 'torch.float16', on_cpu=True)
    assert training.check_run(0, record('torch.float16'), log, 1, 2, 'torch.float16', on_cpu=False) == []
    assert training.check_run(0, record('torch.bfloat16'), log, 1, 2, 'torch.float16', on_cpu=False)


def test_benchmark_amp_measures_under_autocast(tmp_path, monkeypatch):
    """glmha benchmark --amp bf16: every measurement runs under autocast, and only the measurements."""
    from glmha_plugin.analysis import benchmark_report as benchmark  # glmha benchmark's main
    seen = []
    monkeypatch.setattr(benchmark.bench, 'benchmark_layers', lambda *a, **k: seen.append(
        (torch.is_autocast_enabled('cpu'), torch.get_autocast_dtype('cpu'))) or [])
    assert benchmark.main(['--parts', 'layers', '--device', 'cpu', '--amp', 'bf16', '--out-dir', str(tmp_path)]) == 0
    assert seen == [(True, torch.bfloat16)] and not torch.is_autocast_enabled('cpu')
    assert 'precision: torch.autocast bf16' in (tmp_path / 'benchmark.md').read_text()


def test_benchmark_step_sizes():
    cuda = bench.benchmark_args('bf16', quick=False, cuda=True, out_dir='o')
    assert '--model-size' not in cuda and cuda[cuda.index('--amp') + 1] == 'bf16'  # the hosts' paper sizes
    assert cuda[cuda.index('--model-batch') + 1] == '2'
    cpu = bench.benchmark_args('fp32', quick=False, cuda=False, out_dir='o')
    assert 'restormer=3x64x64' in cpu and 'mst_l=28x64x64' in cpu and '--amp' not in cpu and '--tiny' not in cpu
    assert '--tiny' in bench.benchmark_args('bf16', quick=False, cuda=False, out_dir='o')
    assert '--checkpoint' in cpu
    assert cpu[cpu.index('--parts') + 1:cpu.index('--parts') + 5] == ['layers', 'models', 'memory', 'paths']


def test_targets_table_judges_time_memory_and_checkpointing_from_the_csv_files(tmp_path):
    """The benchmark_amp step's targets: every GLMHA Restormer row of the models, memory and checkpointing CSVs."""
    from glmha_plugin.analysis.benchmark import CheckpointRow, MemoryRow, ModelRow
    from glmha_plugin.analysis.tables import write_csv
    glmha = 'GLMHA r=0.5 calibration'
    write_csv([ModelRow('restormer', '3x256x256', 2, 'CSA', 10, 1.0, 3.0, 1.0, 1.0, 1.0),
               ModelRow('restormer', '3x256x256', 2, glmha, 9, 0.9, 2.7, 0.9, 0.90, 0.883),
               ModelRow('mst_l', '28x256x256', 2, glmha, 9, 0.9, 2.7, 0.9, 0.99, 0.825)],
              tmp_path / 'benchmark_models.csv')
    write_csv([MemoryRow('restormer', '3x256x256', 2, 'CSA', 100.0, 1.0),
               MemoryRow('restormer', '3x256x256', 2, glmha, 95.0, 0.95)], tmp_path / 'benchmark_memory.csv')
    write_csv([CheckpointRow('restormer', '3x256x256', 2, 'CSA', 100.0, 20.0, 0.2),
               CheckpointRow('restormer', '3x256x256', 2, glmha, 95.0, 19.0, 0.2)],
              tmp_path / 'benchmark_checkpoint.csv')
    table = bench.targets_markdown(str(tmp_path), cuda=True, quick=False)
    rows = [line for line in table.splitlines() if line.startswith('| ') and glmha in line]
    assert len(rows) == 3 and 'mst_l' not in table and '| CSA |' not in table     # Restormer's GLMHA rows only
    assert rows[0].startswith('| training-step time') and rows[0].endswith('| 0.900 | <= 0.933 | met |')
    assert rows[1].startswith('| peak training memory / CSA') and rows[1].endswith('| 0.950 | <= 0.93 | MISSED |')
    assert 'use_checkpoint' in rows[2] and rows[2].endswith('| 0.200 | <= 0.5 | met |')
    assert 'Not the target setting' not in table
    assert 'Not the target setting' in bench.targets_markdown(str(tmp_path), cuda=False, quick=False)
