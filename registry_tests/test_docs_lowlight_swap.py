"""docs/lowlight.md and docs/swap_attention.md: every tool they name answers --help, every option file exists."""
import glob
import os.path as osp
import re

import pytest

from conftest import BIN, REPO, import_tool

PAGES = ('docs/lowlight.md', 'docs/swap_attention.md')


def text(page):
    with open(osp.join(REPO, page), encoding='utf-8') as f:
        return f.read()


@pytest.mark.parametrize('page', PAGES)
def test_named_option_files_exist(page):
    names = set(re.findall(r'options/[\w./*+-]+\.yml', text(page)))
    assert names
    for name in names:
        assert glob.glob(osp.join(REPO, name)), f'{page} names {name}, which does not exist'


@pytest.mark.parametrize('page', PAGES)
def test_named_commands_answer_help(page, capsys):
    body = text(page)
    tools = sorted(set(re.findall(r'tools/(\w+)\.py', body)))
    assert tools
    for name in tools:
        module = import_tool(name)
        entry = getattr(module, 'main', None) or getattr(module, 'test_tool_main')
        with pytest.raises(SystemExit) as exc:
            entry(['--help'])
        assert exc.value.code == 0, name
        assert 'usage' in capsys.readouterr().out, name
    for script in set(re.findall(r'\b(glmha-\w+)\b', body)):
        assert osp.isfile(osp.join(BIN, script)), script
