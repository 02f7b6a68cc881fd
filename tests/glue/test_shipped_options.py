"""Shipped option files: names, the -opt lookup rule, list/copy (glue.option_files, commands.cli)."""
import glob
import os
import os.path as osp

import pytest

from glmha_plugin.commands import cli
from glmha_plugin.errors import UsageError
from glmha_plugin.glue import option_files as options

from helpers.common import OPTIONS

DEMO = 'tiny/Demo_Deraining_GLMHA.yml'


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """An empty working directory outside the repository."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_checkout_ships_its_options_folder():
    assert not osp.isdir(options.PACKAGED_DIR) and options.shipped_dir() == OPTIONS
    repo = sorted(osp.relpath(f, OPTIONS).replace(os.sep, '/')
                  for f in glob.glob(osp.join(OPTIONS, '**', '*.yml'), recursive=True))
    assert options.shipped_names() == repo
    assert {'Deraining_GLMHA.yml', DEMO, 'tiny/test_Demo_Deraining_GLMHA.yml'} <= set(repo)


def test_the_plugins_own_default_option_files_are_found_in_package_data(tmp_path, monkeypatch):
    """The demo, compare and inference defaults (named as in a checkout) resolve to a wheel's package data."""
    import shutil

    from glmha_plugin.demo import data as demo_data
    from glmha_plugin.evaluation.inference import DEFAULT_NETWORK_OPT
    package_data = tmp_path / 'option_files'
    shutil.copytree(OPTIONS, package_data)
    monkeypatch.setattr(options, 'PACKAGED_DIR', str(package_data))
    monkeypatch.setattr(options, 'CHECKOUT_DIR', str(tmp_path / 'no checkout'))
    names = [demo_data.DEMO_TRAIN_OPT, demo_data.DEMO_TEST_OPT, demo_data.DEMO_CSA_TRAIN_OPT,
             demo_data.DEMO_CSA_TEST_OPT, *DEFAULT_NETWORK_OPT.values()]
    for name in names:
        assert options.shipped_file(name) == str(package_data.joinpath(*name.split('/')[1:])), name
    with pytest.raises(UsageError, match="no shipped option file 'options/tiny/Nothing.yml'"):
        options.shipped_file('options/tiny/Nothing.yml')


def test_package_data_comes_before_the_checkout(tmp_path, monkeypatch):
    (tmp_path / 'tiny').mkdir()
    (tmp_path / 'tiny' / 'Only_Here.yml').write_text('# only here\nname: x\n')
    monkeypatch.setattr(options, 'PACKAGED_DIR', str(tmp_path))
    assert options.shipped_names() == ['tiny/Only_Here.yml']
    monkeypatch.setattr(options, 'PACKAGED_DIR', str(tmp_path / 'missing'))
    monkeypatch.setattr(options, 'CHECKOUT_DIR', str(tmp_path / 'missing too'))
    with pytest.raises(UsageError, match='no shipped option files'):
        options.shipped_dir()


@pytest.mark.parametrize('name', [DEMO, 'options/' + DEMO, 'Demo_Deraining_GLMHA.yml', 'Demo_Deraining_GLMHA',
                                  './options/tiny/Demo_Deraining_GLMHA.yml'])
def test_shipped_path_accepts_every_spelling(name):
    assert options.shipped_path(name) == osp.join(options.shipped_dir(), 'tiny', 'Demo_Deraining_GLMHA.yml')


def test_shipped_path_unknown_and_ambiguous(tmp_path, monkeypatch):
    assert options.shipped_path('Nope.yml') is None
    for sub in ('a', 'b'):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / 'Same.yml').write_text('name: x\n')
    monkeypatch.setattr(options, 'PACKAGED_DIR', str(tmp_path))
    with pytest.raises(UsageError, match='fits several shipped option files: a/Same.yml, b/Same.yml'):
        options.shipped_path('Same.yml')
    assert options.shipped_path('b/Same') == str(tmp_path / 'b' / 'Same.yml')


def test_a_local_file_wins_and_is_used_silently(elsewhere):
    (elsewhere / 'Demo_Deraining_GLMHA.yml').write_text('name: mine\n')
    said = []
    assert options.resolve('Demo_Deraining_GLMHA.yml', said.append) == 'Demo_Deraining_GLMHA.yml'
    assert said == []


def test_a_shipped_file_is_used_and_named(elsewhere):
    said = []
    path = options.resolve('Demo_Deraining_GLMHA.yml', said.append)
    assert path == osp.join(options.shipped_dir(), 'tiny', 'Demo_Deraining_GLMHA.yml')
    assert len(said) == 1 and f'using the shipped option file {DEMO} ({path})' in said[0]


def test_a_missing_name_lists_close_shipped_names(elsewhere):
    with pytest.raises(UsageError) as err:
        options.resolve('Deraining_GLMA.yml')
    msg = str(err.value)
    assert "option file 'Deraining_GLMA.yml' does not exist" in msg and 'is not a shipped option file' in msg
    assert 'close shipped names: ' in msg and 'Deraining_GLMHA.yml' in msg
    assert 'glmha options list' in msg


def test_cli_rewrites_only_the_option_argument(elsewhere, capsys):
    shipped = osp.join(options.shipped_dir(), 'tiny', 'Demo_Deraining_GLMHA.yml')
    argv = ['-opt', 'Demo_Deraining_GLMHA.yml', '--auto_resume', '--force_yml', 'train:total_iter=4']
    assert cli.resolve_option_file(argv) == ['-opt', shipped] + argv[2:]
    assert cli.resolve_option_file(['-opt=Demo_Deraining_GLMHA']) == [f'-opt={shipped}']
    # argparse keeps the last -opt: that one is the one resolved
    assert cli.resolve_option_file(['-opt', 'a.yml', '-opt', DEMO]) == ['-opt', 'a.yml', '-opt', shipped]
    assert 'using the shipped option file' in capsys.readouterr().err
    (elsewhere / 'local.yml').write_text('name: x\n')
    assert cli.resolve_option_file(['-opt', 'local.yml']) == ['-opt', 'local.yml']
    assert cli.resolve_option_file(['--auto_resume']) == ['--auto_resume']


def test_summary_is_the_first_sentence(tmp_path):
    f = tmp_path / 'x.yml'
    f.write_text('# Tiny thing for tests. More words\n# and more.\nname: x\n')
    assert options.summary(str(f)) == 'Tiny thing for tests.'
    f.write_text('# A recipe that goes on:\n#   details\nname: x\n')
    assert options.summary(str(f)) == 'A recipe that goes on'
    assert options.summary(str(f), width=8) == 'A rec...'


def test_list_names_every_file(capsys):
    assert options.main(['list']) == 0
    out = capsys.readouterr().out
    assert f'{len(options.shipped_names())} shipped option files in {options.shipped_dir()}' in out
    line = next(ln for ln in out.splitlines() if ln.strip().startswith(DEMO))
    assert 'Tiny GLMHA-Restormer on the bundled demo data' in line


def test_copy_never_overwrites_silently(elsewhere, capsys):
    assert options.main(['copy', 'Demo_Deraining_GLMHA']) == 0
    copied = elsewhere / 'Demo_Deraining_GLMHA.yml'
    assert copied.read_text() == open(osp.join(options.shipped_dir(), DEMO)).read()
    assert f'copied Demo_Deraining_GLMHA -> {osp.join(".", "Demo_Deraining_GLMHA.yml")}' in capsys.readouterr().out
    copied.write_text('edited\n')
    assert options.main(['copy', DEMO]) == 2
    assert 'exists; not overwritten (add --force to replace it)' in capsys.readouterr().err
    assert copied.read_text() == 'edited\n'
    assert options.main(['copy', DEMO, '--force']) == 0
    assert 'replaced the existing file' in capsys.readouterr().out and copied.read_text() != 'edited\n'
    assert options.main(['copy', 'Deraining_GLMHA.yml', 'mine/new.yml']) == 0
    assert (elsewhere / 'mine' / 'new.yml').is_file()
    assert options.main(['copy', 'Deraining_GLMA']) == 2
    assert 'close names: Deraining_GLMHA.yml' in capsys.readouterr().err
