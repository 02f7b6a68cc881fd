"""The prepared GPU check (``tools/gpu_check.sh OUTDIR``, docs/gpu_check.md).

Each step is a module of this package run as its own process by the driver
``tools/gpu_check/driver.py`` (so a crash, a hang or a CUDA error in one step costs
that step only): ``python -m gpu_check.<step> --out DIR
--work DIR [--quick]``.  A step writes ``DIR/result.json`` (a :class:`StepResult`)
and exits 1 when it failed; the driver puts the results into the Markdown
report.  A step runs on CPU too (slower, smaller where its module says so).
This module is stdlib-only: the driver loads it before it has installed
basicsr and the other dependencies.

Statuses: ``pass``; ``fail``; ``partial`` (everything that ran passed, a named
part could not run here, e.g. the CUDA half without a GPU; never counted as
a pass).
"""
import argparse
import json
import os
import os.path as osp
import traceback
from dataclasses import asdict, dataclass
from typing import Callable

PASS, FAIL, PARTIAL = 'pass', 'fail', 'partial'
STATUSES = (PASS, FAIL, PARTIAL)
RESULT_FILE = 'result.json'


@dataclass
class StepResult:
    status: str        # one of STATUSES
    summary: str       # one line for the report's summary table
    markdown: str = ''  # the step's section of the report

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f'status {self.status!r} is not one of {STATUSES}')


def step_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument('--out', required=True, help='folder for result.json and the files of this step')
    parser.add_argument('--work', required=True, help="the check's scratch folder (data, experiments)")
    parser.add_argument('--quick', action='store_true', help='fewer iterations and smaller sizes (the CPU test)')
    return parser


def write_result(out_dir: str, result: StepResult) -> str:
    os.makedirs(out_dir, exist_ok=True)
    path = osp.join(out_dir, RESULT_FILE)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(asdict(result), f, indent=1)
    return path


def read_result(out_dir: str):
    """The step's :class:`StepResult`, or None when it wrote none (it crashed or was stopped)."""
    try:
        with open(osp.join(out_dir, RESULT_FILE), encoding='utf-8') as f:
            return StepResult(**json.load(f))
    except (OSError, ValueError, TypeError):
        return None


def step_main(run: Callable[[argparse.Namespace], StepResult], parser: argparse.ArgumentParser, argv=None) -> int:
    """Run one step: an exception becomes a ``fail`` with its traceback; exit status 1 on ``fail``."""
    args = parser.parse_args(argv)
    try:
        result = run(args)
    except Exception as exc:  # noqa: BLE001  the report must say what broke, and the check goes on with the next step
        result = StepResult(FAIL, f'{type(exc).__name__}: {exc}'.splitlines()[0][:300],
                            f'```\n{traceback.format_exc()[-6000:]}```\n')
    write_result(args.out, result)
    print(f'step result: {result.status}: {result.summary}', flush=True)
    return 1 if result.status == FAIL else 0


def fenced(text: str, limit: int = 4000) -> str:
    """``text`` (its last ``limit`` characters) as a Markdown code block."""
    text = text if len(text) <= limit else '...\n' + text[-limit:]
    return f'```\n{text.rstrip()}\n```\n'

