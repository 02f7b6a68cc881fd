"""``glmha``: one command for every action of the plugin, ``glmha ACTION [options]`` (``glmha ACTION --help``).

Each action is the ``main(argv)`` of the module that does the work; this table only names them, so
``glmha --help`` imports nothing heavy.  BasicSR's own forms keep working beside it: ``python -m
basicsr.train|test`` (through the import hook), ``glmha-train`` / ``glmha-test``, ``tools/train.py`` /
``tools/test.py``.
"""
import importlib
import os.path as osp
import subprocess
import sys
from typing import Dict, List, NamedTuple, Optional, Sequence

from ..errors import did_you_mean


class Action(NamedTuple):
    module: str      # relative to glmha_plugin
    function: str    # main(argv) -> exit status (None means 0)
    summary: str     # one line for ``glmha --help``
    group: str


ACTIONS: Dict[str, Action] = {
    'train': Action('commands.train', 'main', "train from an option file (basicsr's train_pipeline; -opt X "
                    '[--auto_resume] [--launcher pytorch|slurm])', 'run'),
    'test': Action('commands.test', 'main', "test from an option file (basicsr's test_pipeline; -opt X)", 'run'),
    'infer': Action('evaluation.inference', 'main', "restore a test set as Restormer's test scripts do "
                    '(results/<dataset>/<stem>.png)', 'run'),
    'evaluate': Action('evaluation.evaluate', 'main', "score restored images as the upstream evaluation scripts do",
                       'run'),
    'demo': Action('demo.run', 'main', 'the bundled demo: train, test and plot a tiny GLMHA-Restormer', 'run'),
    'options': Action('glue.option_files', 'main', 'list or copy the option files shipped with the plugin', 'run'),
    'swap': Action('swap.tool', 'main', "swap a trained network's attention for GLMHA (any Restormer- or "
                   'MST-style network), with the SVD warm start', 'cheaper networks'),
    'convert': Action('swap.convert', 'main', 'turn a trained CSA checkpoint of a host into a GLMHA starting point '
                      '(truncated SVD)', 'cheaper networks'),
    'compress': Action('compress.command', 'main', 'a trained CSA network -> a cheaper GLMHA one without its targets: '
                       'per-layer ranks to a MAC budget, warm start, distillation', 'cheaper networks'),
    'export': Action('deploy.onnx_export', 'main', 'export a network to ONNX, checked with onnxruntime', 'deploy'),
    'complexity': Action('analysis.complexity_report', 'main', 'parameters and MACs of CSA vs GLMHA hosts',
                         'measure'),
    'benchmark': Action('analysis.benchmark_report', 'main', 'time and memory of CSA vs GLMHA, side by side',
                        'measure'),
    'spectrum': Action('analysis.spectrum_report', 'main', "the K/V spectrum of a trained network's attention "
                       '(choosing ranks)', 'measure'),
    'compare': Action('analysis.compare', 'main', 'CSA vs GLMHA trained at equal budget on the demo data',
                      'measure'),
    'recipe': Action('analysis.recipe', 'main', "print and plot a recipe's progressive stages and learning rate",
                     'measure'),
    'prepare-lmdb': Action('prepare.lmdb_paired', 'main', 'pack a paired image folder into LMDB', 'data'),
    'prepare-gopro': Action('prepare.gopro_patches', 'main', "cut GoPro into Restormer's training patches", 'data'),
    'gpu-check': Action('commands.glmha', 'gpu_check', 'the prepared GPU check (from a checkout: '
                        'tools/gpu_check.sh OUTDIR)', 'run'),
}
GROUPS = (('run', 'run'), ('cheaper networks', 'make a network cheaper'), ('deploy', 'deploy'),
          ('measure', 'measure'), ('data', 'prepare data'))


def usage() -> str:
    width = max(len(n) for n in ACTIONS)
    lines = ['usage: glmha ACTION [options]    (glmha ACTION --help: the options of one action)', '',
             'GLMHA (Guided Low-rank Multi-Head self-attention) for BasicSR and the MST toolboxes.']
    for group, title in GROUPS:
        lines += ['', f'{title}:']
        lines += [f'  {n:<{width}}  {a.summary}' for n, a in ACTIONS.items() if a.group == group]
    return '\n'.join(lines)


def gpu_check(argv: Sequence[str]) -> int:
    """``tools/gpu_check.sh`` of the checkout this package runs from (the check is not part of the wheel)."""
    script = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools', 'gpu_check.sh')
    if not osp.isfile(script):
        print('error: the GPU check runs from a checkout of the repository (bash tools/gpu_check.sh OUTDIR); this '
              'installation has none', file=sys.stderr)
        return 2
    return subprocess.call(['bash', script, *argv])


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv: List[str] = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ('-h', '--help', 'help'):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in ACTIONS:
        print(f'error: unknown action {name!r}.{did_you_mean(name, ACTIONS)} Actions: {", ".join(ACTIONS)} '
              f'(glmha --help)', file=sys.stderr)
        return 2
    action = ACTIONS[name]
    function = getattr(importlib.import_module(f'glmha_plugin.{action.module}'), action.function)
    saved = sys.argv
    sys.argv = [f'glmha {name}'] + rest   # argparse's prog, and basicsr's pipelines read sys.argv
    try:
        status = function(rest)
    finally:
        sys.argv = saved
    return 0 if status is None else int(status)

