"""The import graph of the project: no circles, and the arrows point down the layers of docs/internals.md.

Read with ``ast`` from the source (every import statement, those inside functions included), so the rules
hold for what a module may import at any time, not only at import time:

* no cycles among the package's modules, the import hook (``glmha_plugin_autoload``) and what both share
  (``glmha_plugin_common``);
* every module of the package has a level (:data:`LEVELS`, by folder; the longest matching prefix wins) and
  imports modules of its own level or below only: entry points (``commands/``) -> features (analysis,
  evaluation, deploy, demo, prepare, compress, the swap and convert commands) -> basicsr glue -> BasicSR
  parts (archs, models) -> building blocks (data, losses, metrics, swapping) -> layers and the package's face;
* the package never imports the hook, ``glmha_plugin_common`` imports the standard library only, and the
  hook does at import time (it runs at every interpreter start); it imports the package inside functions;
* ``layers/`` (plain ``nn.Module`` blocks) imports nothing else of the package;
* ``tools/*.py`` are thin front ends: a docstring, imports and the ``__main__`` call of a ``main`` that lives
  in the package.
"""
import ast
import os
import os.path as osp
import sys
from typing import Dict, List, Set

import pytest

from helpers.common import REPO, import_tool

TOP_LEVEL = ('glmha_plugin_autoload', 'glmha_plugin_common')
TOOLS = sorted(f[:-3] for f in os.listdir(osp.join(REPO, 'tools')) if f.endswith('.py'))
# level of each part of the package (docs/internals.md, "Layers of the package"); a module may import its own
# level and the levels below
LEVELS = {
    'glmha_plugin.errors': 0, 'glmha_plugin.version': 0, 'glmha_plugin.layers': 0,
    'glmha_plugin.data': 1, 'glmha_plugin.losses': 1, 'glmha_plugin.metrics': 1, 'glmha_plugin.swap': 1,
    'glmha_plugin.archs': 2, 'glmha_plugin.models': 2, 'glmha_plugin.registry': 2,
    'glmha_plugin.glue': 3,
    'glmha_plugin.analysis': 4, 'glmha_plugin.evaluation': 4, 'glmha_plugin.deploy': 4, 'glmha_plugin.demo': 4,
    'glmha_plugin.prepare': 4, 'glmha_plugin.compress': 4, 'glmha_plugin.swap.tool': 4,
    'glmha_plugin.swap.convert': 4,
    'glmha_plugin.commands': 5, 'glmha_plugin': 5,
    'glmha_plugin_common': 0, 'glmha_plugin_autoload': 6,
}


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


def level(module: str) -> int:
    prefix = max((p for p in LEVELS if module == p or module.startswith(p + '.')), key=len)
    return LEVELS[prefix]


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
    assert {'glmha_plugin.glue.compat', 'glmha_plugin.archs', 'glmha_plugin.models'} <= GRAPH['glmha_plugin']
    assert 'glmha_plugin_common' in GRAPH['glmha_plugin.glue.mst_toolbox']
    assert 'glmha_plugin.layers.calibration' in GRAPH['glmha_plugin.layers.attention']
    assert 'glmha_plugin' in GRAPH['glmha_plugin_autoload']  # the hook imports the plugin (inside a function)
    assert cycles({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': {'a'}}) == [['a', 'b', 'c']]


def test_no_import_cycles():
    assert cycles(GRAPH) == []


def unresolved_imports(name: str) -> List[str]:
    """``from X import y`` statements of the package whose module X is not a module of the project (a relative
    import that points nowhere fails only when its line runs, e.g. inside a function)."""
    tree = ast.parse(open(MODULES[name], encoding='utf-8').read(), MODULES[name])
    package = name if MODULES[name].endswith('__init__.py') else name.rpartition('.')[0]
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            anchor = package.split('.')[:len(package.split('.')) - node.level + 1]
            base = '.'.join(anchor + ([node.module] if node.module else []))
            if base not in MODULES:
                bad.append(f'line {node.lineno}: from {"." * node.level}{node.module or ""} ({base})')
    return bad


def test_relative_imports_point_to_modules_of_the_package():
    wrong = {m: unresolved_imports(m) for m in MODULES if m.startswith('glmha_plugin')}
    assert {m: b for m, b in wrong.items() if b} == {}


def test_every_module_has_a_level():
    assert {m: level(m) for m in MODULES if m.startswith('glmha_plugin.')} and level('glmha_plugin.swap.tool') == 4
    assert level('glmha_plugin.swap.matching') == 1 and level('glmha_plugin.commands.glmha') == 5


def test_imports_point_down_the_levels():
    upward = {m: sorted(f'{i} (level {level(i)})' for i in GRAPH[m] if level(i) > level(m)) for m in GRAPH}
    assert {m: i for m, i in upward.items() if i} == {}, 'an import against the layers (docs/internals.md)'


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
