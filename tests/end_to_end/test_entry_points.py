"""The train/test entry points in-process: the option check before basicsr runs, deterministic kernels."""
import os

import pytest
import torch

from helpers.common import TINY_TRAIN


def test_train_checks_the_options_before_basicsr_runs(tmp_path, monkeypatch, capsys):
    """A mistake in the option file ends glmha-train with exit 2 and a one-line error before basicsr's
    train_pipeline (which creates and archives experiment folders) is called."""
    import basicsr.train

    from glmha_plugin.commands import train
    monkeypatch.setattr(basicsr.train, 'train_pipeline', lambda root: pytest.fail('train_pipeline was called'))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        train.main(['-opt', TINY_TRAIN, '--force_yml', 'network_g:type=GLMHARestomer'])
    assert exc.value.code == 2
    assert capsys.readouterr().err.startswith("error: network_g.type: No object named 'GLMHARestomer'")
    assert os.listdir(tmp_path) == []


def test_request_deterministic_kernels_sets_torch_flags(monkeypatch):
    from glmha_plugin.commands.train import request_deterministic_kernels
    monkeypatch.delenv('CUBLAS_WORKSPACE_CONFIG', raising=False)
    try:
        request_deterministic_kernels()
        assert torch.are_deterministic_algorithms_enabled() and torch.backends.cudnn.deterministic
        assert os.environ['CUBLAS_WORKSPACE_CONFIG'] == ':4096:8'
    finally:
        torch.use_deterministic_algorithms(False)
        torch.backends.cudnn.deterministic = False


@pytest.mark.parametrize('entry', ['train', 'test'])
def test_help_prints_basicsrs_options_without_checking_anything(entry, tmp_path, monkeypatch, capsys):
    """``glmha-train --help`` / ``glmha-test --help``: basicsr's own usage (-opt, --launcher, ...), exit 0,
    nothing created (before, the missing -opt was reported as an error)."""
    import importlib
    module = importlib.import_module(f'glmha_plugin.commands.{entry}')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        module.main(['--help'])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and out.startswith('usage:') and '-opt OPT' in out and '--launcher' in out
    assert os.listdir(tmp_path) == []
