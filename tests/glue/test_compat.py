"""Each runtime adaptation of glmha_plugin.glue.compat: the upstream symptom, the fix, the guard."""
import os
import os.path as osp
import sys

import pytest
import torch
import torch.distributed as dist

import glmha_plugin
from glmha_plugin.errors import CheckpointError
from glmha_plugin.glue import compat

from helpers.common import TINY_RESTORMER, free_port, needs_no_gpu, run

NO_GPU = not torch.cuda.is_available()
# what torch says when upstream asks for a GPU that is not there (CUDA build / CPU-only build)
NO_CUDA = 'Found no NVIDIA driver|Torch not compiled with CUDA enabled'


def test_every_adaptation_applied():
    assert {'torchvision_alias', 'cpu_safe_resume', 'dist_init_cpu', 'ddp_cpu', 'registry_errors', 'accum_loader',
            'full_epochs', 'atomic_checkpoints', 'exponent_numbers.yaml', 'exponent_numbers.force_yml'} <= set(
        compat.APPLIED)


def test_apply_is_idempotent():
    import basicsr.train as bt
    before = bt.load_resume_state
    compat.apply()
    assert bt.load_resume_state is before is compat.load_resume_state


# ---------------------------------------------------------------- torchvision alias


def test_torchvision_lacks_functional_tensor_and_basicsr_fails_without_alias(tmp_path):
    """Upstream symptom: with the hook off, a fresh `import basicsr` fails on the removed torchvision module."""
    proc = run([sys.executable, '-c', 'import basicsr'], cwd=tmp_path, check=False, GLMHA_PLUGIN_AUTOLOAD=0)
    assert proc.returncode != 0
    assert "No module named 'torchvision.transforms.functional_tensor'" in proc.stderr


def test_importing_plugin_first_works_with_hook_off(tmp_path):
    proc = run([sys.executable, '-c', 'import glmha_plugin, basicsr; '
                'from torchvision.transforms.functional_tensor import rgb_to_grayscale; print("ok")'],
               cwd=tmp_path, GLMHA_PLUGIN_AUTOLOAD=0)
    assert proc.stdout.strip().endswith('ok')


def test_alias_serves_functional():
    import torchvision.transforms.functional as F
    import torchvision.transforms.functional_tensor as FT
    assert FT.rgb_to_grayscale is F.rgb_to_grayscale


def test_alias_guard_prefers_a_real_module(monkeypatch):
    """Where torchvision still ships the module, the finder stays out of the way."""
    import torchvision.transforms

    import glmha_plugin_common as common
    assert common.TorchvisionAliasFinder().find_spec(common.TV_ALIAS, torchvision.transforms.__path__) is not None
    monkeypatch.setattr(common, 'torchvision_has_it', lambda path: True)
    assert common.TorchvisionAliasFinder().find_spec(common.TV_ALIAS, torchvision.transforms.__path__) is None
    assert common.alias_needed() is False


# ---------------------------------------------------------------- cpu_safe_resume


def _training_state(tmp_path, it=4, network=True):
    """A saved iteration ``it`` of experiment x as basicsr writes it: ``<it>.state`` and ``net_g_<it>.pth`` (a tiny
    Restormer; ``network=False``: the state only)."""
    from basicsr.models.lr_scheduler import MultiStepRestartLR

    from glmha_plugin.archs import Restormer
    net = Restormer(**TINY_RESTORMER)
    optim = torch.optim.Adam(net.parameters())
    net(torch.rand(1, 3, 8, 8)).sum().backward()
    optim.step()
    sched = MultiStepRestartLR(optim, milestones=[2, 4])
    state_dir = tmp_path / 'experiments' / 'x' / 'training_states'
    state_dir.mkdir(parents=True, exist_ok=True)
    torch.save({'epoch': 0, 'iter': it, 'optimizers': [optim.state_dict()], 'schedulers': [sched.state_dict()]},
               state_dir / f'{it}.state')
    models = tmp_path / 'experiments' / 'x' / 'models'
    models.mkdir(exist_ok=True)
    if network:
        torch.save({'params': net.state_dict()}, models / f'net_g_{it}.pth')
    opt = {'name': 'x', 'num_gpu': 0, 'auto_resume': False, 'network_g': dict(type='Restormer', **TINY_RESTORMER),
           'path': {'resume_state': str(state_dir / f'{it}.state'), 'models': str(models),
                    'training_states': str(state_dir)}}
    return opt


@needs_no_gpu
def test_upstream_resume_needs_cuda(tmp_path):
    with pytest.raises((RuntimeError, AssertionError), match=NO_CUDA):
        compat.ORIGINALS['cpu_safe_resume'](_training_state(tmp_path))


def test_resume_loads_on_cpu(tmp_path):
    opt = _training_state(tmp_path)
    state = compat.load_resume_state(opt)
    assert state['iter'] == 4
    assert state['optimizers'][0]['state'][0]['exp_avg'].device.type == 'cpu'
    assert opt['path']['pretrain_network_g'].endswith('net_g_4.pth')  # check_resume ran


def test_auto_resume_picks_highest_iteration(tmp_path):
    """Two readable states: the highest iteration is taken (by number: '9' sorts after '10' as text)."""
    _training_state(tmp_path, it=9)
    opt = _training_state(tmp_path, it=10)
    opt.update(auto_resume=True)
    opt['path']['resume_state'] = None
    assert compat.load_resume_state(opt)['iter'] == 10
    assert opt['path']['resume_state'].endswith('10.state')


def test_auto_resume_without_a_states_path_looks_under_the_working_directory(tmp_path, monkeypatch):
    """No path.training_states (basicsr sets it; a hand-made opt may not): experiments/<name>/training_states
    under the working directory, as upstream."""
    opt = _training_state(tmp_path, it=6)
    del opt['path']['training_states']
    opt.update(auto_resume=True)
    monkeypatch.chdir(tmp_path)
    assert compat.load_resume_state(opt)['iter'] == 6
    assert opt['path']['resume_state'] == osp.join('experiments', 'x', 'training_states', '6.state')


def test_auto_resume_skips_a_truncated_newest_state(tmp_path):
    """A crash while the newest state was written costs one checkpoint interval, not the run."""
    opt = _training_state(tmp_path, it=10)
    (tmp_path / 'experiments' / 'x' / 'training_states' / '12.state').write_bytes(b'PK\x03\x04truncated')
    opt.update(auto_resume=True)
    assert compat.load_resume_state(opt)['iter'] == 10


def test_skipping_a_truncated_state_leaves_the_training_log_to_basicsr(tmp_path, monkeypatch):
    """The warning must not initialise basicsr's logger early (it would drop INFO messages and the log file)."""
    from basicsr.utils import logger as basicsr_logger
    monkeypatch.setattr(basicsr_logger, 'initialized_logger', {})
    opt = _training_state(tmp_path, it=10)
    (tmp_path / 'experiments' / 'x' / 'training_states' / '12.state').write_bytes(b'PK\x03\x04truncated')
    opt.update(auto_resume=True)
    assert compat.load_resume_state(opt)['iter'] == 10
    assert 'basicsr' not in basicsr_logger.initialized_logger


def test_auto_resume_without_states_starts_fresh(tmp_path):
    opt = {'name': 'y', 'num_gpu': 0, 'auto_resume': True, 'path': {'training_states': str(tmp_path / 'none')}}
    assert compat.load_resume_state(opt) is None


def test_resume_errors_are_clear(tmp_path):
    opt = _training_state(tmp_path)
    opt['path']['resume_state'] = str(tmp_path / 'missing.state')
    with pytest.raises(CheckpointError, match='does not exist'):
        compat.load_resume_state(opt)
    bad = tmp_path / 'bad.state'
    bad.write_bytes(b'not a pickle')
    opt['path']['resume_state'] = str(bad)
    with pytest.raises(CheckpointError, match='bad.state is not readable.*cut short'):
        compat.load_resume_state(opt)


def test_resume_guard_leaves_fixed_upstream_alone(monkeypatch):
    import basicsr.train as bt

    def fixed_upstream(opt):
        return None

    monkeypatch.setattr(bt, 'load_resume_state', fixed_upstream)
    compat._patch_resume()
    assert bt.load_resume_state is fixed_upstream


# ---------------------------------------------------------------- dist init / DDP on CPU


@pytest.fixture
def single_rank_env(monkeypatch):
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '1')
    monkeypatch.setenv('MASTER_ADDR', '127.0.0.1')
    monkeypatch.setenv('MASTER_PORT', str(free_port()))
    yield
    if dist.is_initialized():
        dist.destroy_process_group()


@needs_no_gpu
def test_upstream_dist_init_divides_by_zero(single_rank_env):
    with pytest.raises(ZeroDivisionError):
        compat.ORIGINALS['dist_init_cpu.pytorch']('nccl')


@needs_no_gpu
def test_dist_init_uses_gloo_and_ddp_builds_on_cpu(single_rank_env):
    from basicsr.utils.dist_util import init_dist
    from torch.nn.parallel import DistributedDataParallel
    init_dist('pytorch')
    assert dist.get_backend() == 'gloo'

    from basicsr.models.base_model import BaseModel
    model = BaseModel({'num_gpu': 0, 'is_train': True, 'dist': True})
    with pytest.raises(RuntimeError, match=NO_CUDA):  # upstream symptom
        compat.ORIGINALS['ddp_cpu'](model, torch.nn.Linear(2, 2))
    wrapped = model.model_to_device(torch.nn.Linear(2, 2))
    assert isinstance(wrapped, DistributedDataParallel)


# ---------------------------------------------------------------- output root


def test_output_root_redirects_site_packages(tmp_path, monkeypatch):
    import sysconfig
    monkeypatch.chdir(tmp_path)
    site = sysconfig.get_paths()['purelib']
    assert compat.output_root(site) == str(tmp_path)
    assert compat.output_root(None) == str(tmp_path)
    checkout = str(tmp_path / 'BasicSR')
    assert compat.output_root(checkout) == checkout


def test_basicsr_main_root_is_site_packages_for_pip_basicsr():
    """The upstream symptom: for a pip-installed basicsr its __main__ root is site-packages."""
    assert os.path.realpath(compat.basicsr_main_root()) in compat.installed_site_dirs()


# ---------------------------------------------------------------- registry errors


def test_unknown_name_lists_valid_and_close_names():
    from basicsr.utils.registry import ARCH_REGISTRY
    with pytest.raises(KeyError) as info:
        ARCH_REGISTRY.get('GLMHARestomer')
    msg = str(info.value)
    assert "Did you mean 'GLMHARestormer'" in msg and 'Valid names:' in msg and 'SwinIR' in msg


def test_upstream_registry_error_lacks_names():
    from basicsr.utils.registry import ARCH_REGISTRY
    with pytest.raises(KeyError) as info:
        compat.ORIGINALS['registry_errors'](ARCH_REGISTRY, 'GLMHARestomer')
    assert 'GLMHARestormer' not in str(info.value)


def test_suffix_lookup_still_works():
    from basicsr.utils.registry import Registry
    reg = Registry('probe')

    class Thing:
        pass

    reg.register(Thing, suffix='basicsr')
    assert reg.get('Thing') is Thing


def test_plugin_version():
    assert glmha_plugin.__version__
