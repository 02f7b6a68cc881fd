"""The import hook extends an unmodified MST / MST++ checkout's ``architecture.model_generator``.

The checkout is a stand-in with upstream's interface: a local ``architecture``
package whose ``model_generator(method, pretrained_model_path=None)`` builds
its own networks (printing 'Method X is not defined !!!!' for anything else,
then failing, as upstream) and loads ``{'state_dict': {'module.*': ...}}``
checkpoints, plus a ``train.py`` that picks the model as upstream's does.
"""
import importlib
import runpy
import sys
import textwrap

import pytest
import torch

import glmha_plugin_autoload as auto

from helpers.common import run

ARCHITECTURE = textwrap.dedent('''
    import torch


    class StandInMST(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 31, 1)

        def forward(self, x):
            return self.conv(x)


    def model_generator(method, pretrained_model_path=None):
        if method == 'mst_plus_plus':
            model = StandInMST()
        else:
            print(f'Method {method} is not defined !!!!')
        if pretrained_model_path is not None:
            checkpoint = torch.load(pretrained_model_path)
            model.load_state_dict({k.replace('module.', ''): v for k, v in checkpoint['state_dict'].items()},
                                  strict=True)
        return model
''')

TRAIN = textwrap.dedent('''
    import argparse
    import torch
    from architecture import *

    parser = argparse.ArgumentParser()
    parser.add_argument('--method', type=str, default='mst_plus_plus')
    parser.add_argument('--pretrained_model_path', type=str, default=None)
    opt = parser.parse_args()
    model = model_generator(opt.method, opt.pretrained_model_path)
    print('built', type(model).__name__)
    print('output', tuple(model(torch.rand(1, 3, 16, 20)).shape))
''')


@pytest.fixture
def checkout(tmp_path):
    """A stand-in toolbox checkout: architecture/ and train.py."""
    (tmp_path / 'architecture').mkdir()
    (tmp_path / 'architecture' / '__init__.py').write_text(ARCHITECTURE)
    (tmp_path / 'train.py').write_text(TRAIN)
    return tmp_path


@pytest.fixture
def import_architecture(monkeypatch):
    """Import a fresh top-level ``architecture`` from a folder, through this process's import hook."""

    def _import(folder):
        monkeypatch.syspath_prepend(str(folder))
        monkeypatch.delitem(sys.modules, 'architecture', raising=False)
        importlib.invalidate_caches()
        module = importlib.import_module('architecture')
        monkeypatch.delitem(sys.modules, 'architecture')
        return module

    return _import


def test_glmha_methods_are_added_and_upstream_ones_kept(checkout, import_architecture):
    arch = import_architecture(checkout)
    assert getattr(arch.model_generator, 'glmha_extended', False)
    assert type(arch.model_generator('mst_plus_plus')).__name__ == 'StandInMST'
    net = arch.model_generator('glmha_mst_plus_plus')
    assert type(net).__name__ == 'GLMHAMSTPlusPlus'
    assert type(arch.model_generator('glmha_mst_l')).__name__ == 'GLMHAMST'
    with pytest.raises(ValueError, match="unknown method 'glmha_mst_xl'.*Valid methods"):
        arch.model_generator('glmha_mst_xl')


def test_package_without_model_generator_is_untouched(tmp_path, import_architecture):
    (tmp_path / 'architecture').mkdir()
    (tmp_path / 'architecture' / '__init__.py').write_text('VALUE = 1\n')
    arch = import_architecture(tmp_path)
    assert arch.VALUE == 1 and not hasattr(arch, 'model_generator')


def test_switched_off(checkout, import_architecture, monkeypatch):
    monkeypatch.setenv(auto.ENV_VAR, '0')
    arch = import_architecture(checkout)
    assert not hasattr(arch.model_generator, 'glmha_extended')


def test_extension_is_applied_once():
    def original(method, pretrained_model_path=None):
        return ('upstream', method, pretrained_model_path)

    once = auto.extend_model_generator(original)
    module = type(sys)('architecture')
    module.model_generator = once
    auto._after_toolbox_architecture(module)
    assert module.model_generator is once
    assert once('mst_l', 'w.pth') == ('upstream', 'mst_l', 'w.pth')
    assert once.__wrapped__ is original


@pytest.mark.slow
def test_stock_train_script_with_a_glmha_method(checkout):
    """`python train.py --method glmha_mst_plus_plus` in the checkout, nothing changed there, with a
    checkpoint in MST++'s format: the hook at work in a fresh interpreter (the toolbox launcher's smoke test;
    that an upstream name still builds the checkout's own network: test_glmha_methods_are_added_...)."""
    from glmha_plugin.glue.mst_toolbox import model_generator
    weights = model_generator('glmha_mst_plus_plus').state_dict()
    torch.save({'epoch': 1, 'iter': 1000, 'state_dict': {f'module.{k}': v for k, v in weights.items()}},
               checkout / 'net_1epoch.pth')
    proc = run([sys.executable, 'train.py', '--method', 'glmha_mst_plus_plus', '--pretrained_model_path',
                'net_1epoch.pth'], cwd=checkout)
    assert 'built GLMHAMSTPlusPlus' in proc.stdout and 'output (1, 31, 16, 20)' in proc.stdout


def test_stock_train_script_switched_off(checkout, monkeypatch, capsys):
    """The checkout's train.py (run here as ``python train.py`` would run it) with the hook switched off:
    upstream's message, then its failure."""
    monkeypatch.setenv(auto.ENV_VAR, '0')
    monkeypatch.syspath_prepend(str(checkout))
    monkeypatch.delitem(sys.modules, 'architecture', raising=False)
    monkeypatch.setattr(sys, 'argv', ['train.py', '--method', 'glmha_mst_plus_plus'])
    try:
        with pytest.raises(UnboundLocalError):   # upstream's model_generator returns an unset variable
            runpy.run_path(str(checkout / 'train.py'), run_name='__main__')
    finally:
        sys.modules.pop('architecture', None)
    assert 'Method glmha_mst_plus_plus is not defined !!!!' in capsys.readouterr().out
