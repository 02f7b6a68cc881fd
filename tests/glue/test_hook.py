"""The .pth import hook: finds our names from plain basicsr, can be switched off, never breaks basicsr."""
import importlib.util
import sys

import glmha_plugin_autoload as auto

from helpers.common import run

PROBE = ('import basicsr, sys; from basicsr.utils.registry import ARCH_REGISTRY; '
         'print("loaded" if "glmha_plugin" in sys.modules else "absent", ARCH_REGISTRY.get("GLMHARestormer").__name__)')


def test_pth_is_installed_in_this_environment():
    import os
    import sysconfig
    assert os.path.isfile(os.path.join(sysconfig.get_paths()['purelib'], auto.PTH_NAME))


def test_plain_basicsr_import_finds_plugin_names(tmp_path):
    proc = run([sys.executable, '-c', PROBE], cwd=tmp_path)
    assert proc.stdout.split()[-2:] == ['loaded', 'GLMHARestormer']


def test_switch_off(tmp_path):
    code = ('import sys, torchvision.transforms.functional as F; '
            'sys.modules["torchvision.transforms.functional_tensor"] = F; import basicsr; '
            'print("loaded" if "glmha_plugin" in sys.modules else "absent")')
    proc = run([sys.executable, '-c', code], cwd=tmp_path, GLMHA_PLUGIN_AUTOLOAD=0)
    assert proc.stdout.split()[-1] == 'absent'


def test_broken_plugin_does_not_break_basicsr(tmp_path):
    fake = tmp_path / 'shadow' / 'glmha_plugin'
    fake.mkdir(parents=True)
    (fake / '__init__.py').write_text('raise RuntimeError("boom from a broken install")\n')
    proc = run([sys.executable, '-c', 'import basicsr; print("basicsr ok", basicsr.__version__)'], cwd=tmp_path,
               PYTHONPATH=str(tmp_path / 'shadow'))
    assert 'basicsr ok' in proc.stdout
    assert 'glmha_plugin could not be imported (RuntimeError: boom from a broken install)' in proc.stderr


def test_leftover_pth_line_is_silent_without_the_module(tmp_path):
    """A .pth left behind after the package is gone must not print tracebacks at start-up."""
    proc = run([sys.executable, '-S', '-c', auto.PTH_LINE + 'print("started")'], cwd=tmp_path)
    assert proc.stdout.strip() == 'started' and proc.stderr == ''


def test_cli_installs_and_removes_pth(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(auto, '_site_dir', lambda: str(tmp_path))
    assert auto._cli(['install']) == 0
    assert (tmp_path / auto.PTH_NAME).read_text() == auto.PTH_LINE
    assert auto._cli(['status']) == 0 and 'present' in capsys.readouterr().out
    assert auto._cli(['uninstall']) == 0
    assert not (tmp_path / auto.PTH_NAME).exists()
    assert auto._cli(['bogus']) == 2


def test_python_m_redirect_gives_runpy_the_entry_point_without_a_warning(monkeypatch):
    """What runpy meets under `python -m basicsr.train` once basicsr is imported: no 'basicsr.train' in
    sys.modules (so no "found in sys.modules ... unpredictable behaviour" RuntimeWarning), a spec whose code
    calls glmha_plugin.commands.train.main, and the real module back in sys.modules once runpy has the code."""
    import basicsr.train as real
    monkeypatch.setattr(sys, 'argv', ['-m', '-opt', 'x.yml'])
    monkeypatch.setattr(sys, 'orig_argv', ['python', '-m', 'basicsr.train', '-opt', 'x.yml'])
    monkeypatch.setattr(sys, 'meta_path', [auto._Finder()] + sys.meta_path)
    monkeypatch.setattr(auto, '_STASHED', {})
    monkeypatch.setitem(sys.modules, 'basicsr.train', real)  # put back after the test, whatever happens
    auto._redirect_main()
    assert 'basicsr.train' not in sys.modules
    spec = importlib.util.find_spec('basicsr.train')
    assert spec.origin == real.__file__ and spec.has_location  # runpy's sys.argv[0] and __file__
    code = spec.loader.get_code('basicsr.train')
    assert sys.modules['basicsr.train'] is real
    assert code.co_filename == '<python -m basicsr.train: redirected to glmha_plugin.commands.train>'
    assert importlib.util.find_spec('basicsr.train') is real.__spec__  # redirected once only


def test_redirect_only_for_python_m(monkeypatch):
    monkeypatch.setattr(sys, 'argv', ['-m', '-opt', 'x.yml'])
    monkeypatch.setattr(sys, 'orig_argv', ['python', '-u', '-m', 'basicsr.train', '-opt', 'x.yml'])
    assert auto.module_run_as_main() == 'basicsr.train'
    monkeypatch.setattr(sys, 'argv', ['/x/basicsr/train.py', '-opt', 'x.yml'])
    assert auto.module_run_as_main() is None  # runpy already started: not ours to redirect
