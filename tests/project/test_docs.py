"""The documentation stays true: every command README.md and docs/*.md name runs with ``--help``, and
every option file they name exists and passes the pre-flight check of its keys, types and network.

Commands are found in the text, not listed here: ``glmha ACTION`` (every action of the ``glmha`` command is
run with ``--help`` in this process, and each one the docs name must exist), ``tools/<name>.py``, the
package's console scripts (setup.cfg ``console_scripts``) and ``python -m <module>``; those last three start
one process each (a smoke test of each launcher), together, and are collected afterwards, except the
launchers whose process another test starts (:data:`PROCESS_TESTED`): their ``main`` runs here.
"""
import configparser
import glob
import os.path as osp
import re
import subprocess
import sys

import pytest

from glmha_plugin.commands import test as glmha_test
from glmha_plugin.commands import train as glmha_train

from helpers.common import BIN, REPO, clean_env, load_yaml
from helpers.runs import run_main

DOCS = [osp.join(REPO, 'README.md')] + sorted(glob.glob(osp.join(REPO, 'docs', '*.md')))
TOOL = re.compile(r'(?<![\w/.-])tools/(\w+)\.py\b')
MODULE = re.compile(r'python -m ((?:glmha_plugin|basicsr)(?:\.\w+)+)')
ACTION = re.compile(r'(?<![\w/.-])glmha ([a-z][\w-]*)(?= |$|`|\n|\))', re.M)
OPTION_FILE = re.compile(r'(?<![\w/.-])(options/[\w./+-]+?\.yml)\b')


# Launchers started as processes elsewhere (test_end_to_end.py: glmha-train killed and resumed, glmha-test's
# refusal, python -m basicsr.train and basicsr.test through the hook): their --help runs here in this process.
PROCESS_TESTED = {'glmha-train': glmha_train.main, 'glmha-test': glmha_test.main,
                  'python -m basicsr.train': lambda argv: glmha_train.main(argv, redirected_from='basicsr.train'),
                  'python -m basicsr.test': lambda argv: glmha_test.main(argv, redirected_from='basicsr.test')}


def _text() -> str:
    return '\n'.join(open(path, encoding='utf-8').read() for path in DOCS)


def _console_scripts():
    cfg = configparser.ConfigParser()
    cfg.read(osp.join(REPO, 'setup.cfg'))
    entries = cfg.get('options.entry_points', 'console_scripts', fallback='')
    return sorted(line.split('=')[0].strip() for line in entries.splitlines() if '=' in line)


def named_actions():
    """The actions of the ``glmha`` command the docs name (``glmha ACTION ...``)."""
    return set(ACTION.findall(_text()))


def named_commands():
    """(label, argv) of every other command the docs name (a process each), each with ``--help``."""
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
    assert {'benchmark', 'swap', 'export'} <= named_actions()
    assert {'glmha-train', 'glmha-test', 'glmha'} <= set(named_commands())
    assert 'options/Deraining_GLMHA.yml' in OPTION_FILE.findall(_text())


def test_every_action_the_docs_name_exists():
    from glmha_plugin.commands.glmha import ACTIONS
    assert named_actions() - set(ACTIONS) == set()


def _actions():
    from glmha_plugin.commands.glmha import ACTIONS
    return sorted(ACTIONS)


@pytest.mark.parametrize('action', _actions())
def test_every_action_prints_its_options_with_help(action, capfd):
    """``glmha ACTION --help``, in this process: a usage line that names the action, and options."""
    from glmha_plugin.commands.glmha import main
    try:
        status = main([action, '--help'])
    except SystemExit as exc:   # argparse exits after printing the help
        status = exc.code
    out = capfd.readouterr().out   # capfd: gpu-check's help comes from a subprocess
    assert status in (0, None) and 'usage' in out.lower() and '--' in out, out[-2000:]


def test_glmha_help_lists_every_action(capsys):
    from glmha_plugin.commands.glmha import ACTIONS, main
    assert main(['--help']) == 0
    out = capsys.readouterr().out
    assert all(f'  {name} ' in out for name in ACTIONS)
    assert main([]) == 2 and 'usage: glmha ACTION' in capsys.readouterr().out


def test_every_named_command_runs_with_help(tmp_path):
    cmds = named_commands()
    procs = {label: subprocess.Popen(argv, cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
             for label, argv in cmds.items() if label not in PROCESS_TESTED}
    failed = []
    for label in sorted(set(cmds) & set(PROCESS_TESTED)):
        proc = run_main(PROCESS_TESTED[label], cmds[label][-1:], tmp_path, check=False)
        if proc.returncode != 0 or 'usage' not in proc.stdout.lower():
            tail = f'{proc.stdout[-1500:]}{proc.stderr[-1500:]}'
            failed.append(f'{label} (exit {proc.returncode}, in this process):\n{tail}')
    for label, proc in procs.items():
        out, _ = proc.communicate(timeout=600)
        if proc.returncode != 0 or 'usage' not in out.lower():
            failed.append(f'{label} (exit {proc.returncode}):\n{out[-1500:]}')
    assert not failed, 'commands named in the docs fail with --help:\n' + '\n'.join(failed)


@pytest.mark.parametrize('name', sorted(set(OPTION_FILE.findall(_text()))))
def test_named_option_file_exists_and_passes_preflight(name):
    from glmha_plugin.glue.preflight import check_options
    path = osp.join(REPO, name)
    assert osp.isfile(path), f'{name} is named in the docs but does not exist'
    opt = load_yaml(path)
    # files=False: the data sets and weights the shipped files point to are the user's to provide
    check_options(opt, is_train=not osp.basename(name).startswith('test_'), files=False)
