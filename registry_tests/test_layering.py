"""The import graph of the project: no circles, and the arrows point one way.

Read with ``ast`` from the source (every import statement, those inside functions included), so the rules
hold for what a module may import at any time, not only at import time:

* no cycles among the package's modules, the import hook (``glmha_plugin_autoload``) and what both share
  (``glmha_plugin_common``);
* the entry points (``train``, ``test``, ``demo``, ``cli`` and the GPU check's steps ``gpucheck.*``, each
  run as ``python -m``) are imported by entry points only: library modules and ``analysis/`` never depend
  on a command line;
* the package never imports the hook, ``glmha_plugin_common`` imports the standard library only, and the
  hook does at import time (it runs at every interpreter start); it imports the package inside functions;
* ``layers/`` (plain ``nn.Module`` blocks) imports nothing else of the package;
* ``tools/*.py`` are thin front ends: a docstring, imports and the ``__main__`` call of a ``main`` that lives
  in the package; except ``tools/gpu_check.py``, which installs the package on the GPU machine and so runs
  before it is importable: it imports the standard library only.
"""
import ast
import os
import os.path as osp
import sys
from typing import Dict, List, Set

import pytest

from conftest import REPO, import_tool

TOP_LEVEL = ('glmha_plugin_autoload', 'glmha_plugin_common')
ENTRY_POINTS = {f'glmha_plugin.{name}' for name in ('train', 'test', 'demo', 'cli')}
BEFORE_INSTALL_TOOLS = ('gpu_check',)   # run where the package is not installed yet
TOOLS = sorted(f[:-3] for f in os.listdir(osp.join(REPO, 'tools'))
               if f.endswith('.py') and f[:-3] not in BEFORE_INSTALL_TOOLS)


def project_modules() -> Dict[str, str]:
    """Dotted name -> file of every module of the package and the two top-level modules."""
    modules = {name: osp.join(REPO, f'{name}.py') for name in TOP_LEVEL}
    for folder, _, files in os.walk(osp.join(REPO, 'glmha_plugin')):
        for f in files:
            if f.endswith('.py'):
                parts = osp.relpath(osp.join(folder, f), REPO)[:-3].split(os.sep)
                modules['.'.join(parts[:-1] if parts[-1] == '__init__' else parts)] = osp.join(folder, f)
    return modules


MODULES = project_modules()
ENTRY_POINTS |= {m for m in MODULES if m.startswith('glmha_plugin.gpucheck.')}


def imported_names(path: str, name: str, top_level_only: bool = False) -> Set[str]:
    """Absolute names imported by the module (``from a import b`` gives ``a.b`` and ``a``)."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    package = name if path.endswith('__init__.py') else name.rpartition('.')[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
                base = '.'.join(anchor + ([node.module] if node.module else []))
            names.add(base)
            names.update(f'{base}.{alias.name}' for alias in node.names)
    return names


def project_imports(name: str, **kwargs) -> Set[str]:
    """The project modules ``name`` imports (each imported name resolved to the innermost project module)."""
    out = set()
    for imported in imported_names(MODULES[name], name, **kwargs):
        while imported and imported not in MODULES:
            imported = imported.rpartition('.')[0]
        if imported and imported != name:
            out.add(imported)
    return out


GRAPH = {name: project_imports(name) for name in MODULES}


def cycles(graph: Dict[str, Set[str]]) -> List[List[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_is_read():
    """The reader sees known arrows (so an empty graph cannot pass the rules below)."""
    assert {'glmha_plugin.compat', 'glmha_plugin.archs', 'glmha_plugin.models'} <= GRAPH['glmha_plugin']
    assert 'glmha_plugin_common' in GRAPH['glmha_plugin.registry']
    assert 'glmha_plugin.layers.calibration' in GRAPH['glmha_plugin.layers.attention']
    assert 'glmha_plugin' in GRAPH['glmha_plugin_autoload']  # the hook imports the plugin (inside a function)
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def test_only_entry_points_import_entry_points():
    wrong = {m: sorted(GRAPH[m] & ENTRY_POINTS) for m in GRAPH if m not in ENTRY_POINTS and GRAPH[m] & ENTRY_POINTS}
    assert wrong == {}, 'library and analysis modules must not depend on a command line'


def test_the_package_never_imports_the_hook():
    assert [m for m in GRAPH if m.startswith('glmha_plugin.') or m == 'glmha_plugin'
            if 'glmha_plugin_autoload' in GRAPH[m]] == []


@pytest.mark.parametrize('name', TOP_LEVEL)
def test_hook_modules_import_only_the_standard_library_at_import_time(name):
    """They run at every interpreter start (the .pth line) and in setup.py, before the package is importable."""
    imported = {n.split('.')[0] for n in imported_names(MODULES[name], name, top_level_only=True)}
    assert imported - set(sys.stdlib_module_names) <= {'glmha_plugin_common'}


def test_layers_import_nothing_else_of_the_package():
    outside = {m: sorted(i for i in GRAPH[m] if not i.startswith('glmha_plugin.layers'))
               for m in GRAPH if m.startswith('glmha_plugin.layers')}
    assert {m: i for m, i in outside.items() if i} == {}


@pytest.mark.parametrize('name', TOOLS)
def test_tools_are_thin_front_ends(name):
    """tools/<name>.py: docstring, imports, ``if __name__ == '__main__'``; its ``main`` is the package's."""
    path = osp.join(REPO, 'tools', f'{name}.py')
    body = ast.parse(open(path, encoding='utf-8').read(), path).body
    kinds = [type(node).__name__ for node in body]
    assert kinds[0] == 'Expr' and isinstance(body[0].value, ast.Constant), 'a docstring first'
    assert set(kinds[1:-1]) <= {'Import', 'ImportFrom'} and kinds[-1] == 'If', kinds
    assert import_tool(name).main.__module__.startswith('glmha_plugin.')


@pytest.mark.parametrize('name', BEFORE_INSTALL_TOOLS)
def test_tools_run_before_install_import_only_the_standard_library(name):
    path = osp.join(REPO, 'tools', f'{name}.py')
    imported = {n.split('.')[0] for n in imported_names(path, name)}
    assert imported <= set(sys.stdlib_module_names), sorted(imported - set(sys.stdlib_module_names))
