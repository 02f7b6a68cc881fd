"""The documentation stays true: every command README.md and docs/*.md name runs with ``--help``, and
every option file they name exists and passes the pre-flight check of its keys, types and network.

Commands are found in the text, not listed here: ``tools/<name>.py``, the package's console scripts
(setup.cfg ``console_scripts``) and ``python -m glmha_plugin.<module>``. The ``--help`` runs start
together (one process each) and are collected afterwards, so the check costs about as long as the
slowest of them on two cores.
"""
import configparser
import glob
import os.path as osp
import re
import subprocess
import sys

import pytest

from conftest import BIN, REPO, clean_env, load_yaml

DOCS = [osp.join(REPO, 'README.md')] + sorted(glob.glob(osp.join(REPO, 'docs', '*.md')))
TOOL = re.compile(r'(?<![\w/.-])tools/(\w+)\.py\b')
MODULE = re.compile(r'python -m (glmha_plugin(?:\.\w+)+)')
OPTION_FILE = re.compile(r'(?<![\w/.-])(options/[\w./+-]+?\.yml)\b')


def _text() -> str:
    return '\n'.join(open(path, encoding='utf-8').read() for path in DOCS)


def _console_scripts():
    cfg = configparser.ConfigParser()
    cfg.read(osp.join(REPO, 'setup.cfg'))
    entries = cfg.get('options.entry_points', 'console_scripts', fallback='')
    return sorted(line.split('=')[0].strip() for line in entries.splitlines() if '=' in line)


def named_commands():
    """(label, argv) of every command the docs name, each with ``--help``."""
    text = _text()
    cmds = {}
    for tool in sorted(set(TOOL.findall(text))):
        cmds[f'tools/{tool}.py'] = [sys.executable, osp.join(REPO, 'tools', f'{tool}.py'), '--help']
    for script in _console_scripts():
        if re.search(rf'(?<![\w-]){re.escape(script)}(?![\w-])', text):
            cmds[script] = [osp.join(BIN, script), '--help']
    for module in sorted(set(MODULE.findall(text))):
        cmds[f'python -m {module}'] = [sys.executable, '-m', module, '--help']
    return cmds


def test_docs_name_commands_and_option_files():
    """The scan finds what README.md certainly shows (guards the patterns themselves)."""
    assert {'tools/benchmark.py', 'glmha-train', 'glmha-test'} <= set(named_commands())
    assert 'options/Deraining_GLMHA.yml' in OPTION_FILE.findall(_text())


def test_every_named_command_runs_with_help(tmp_path):
    cmds = named_commands()
    procs = {label: subprocess.Popen(argv, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True) for label, argv in cmds.items()}
    failed = []
    for label, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0 or 'usage' not in out.lower():
            failed.append(f'{label} (exit {proc.returncode}):\n{out[-1500:]}')
    assert not failed, 'commands named in the docs fail with --help:\n' + '\n'.join(failed)


@pytest.mark.parametrize('name', sorted(set(OPTION_FILE.findall(_text()))))
def test_named_option_file_exists_and_passes_preflight(name):
    from glmha_plugin.validate import check_options
    path = osp.join(REPO, name)
    assert osp.isfile(path), f'{name} is named in the docs but does not exist'
    opt = load_yaml(path)
    # files=False: the data sets and weights the shipped files point to are the user's to provide
    check_options(opt, is_train=not osp.basename(name).startswith('test_'), files=False)
