"""The code is clean by the project's ruff configuration (``[tool.ruff]`` in pyproject.toml)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.common import REPO


def test_ruff_finds_nothing():
    ruff = shutil.which('ruff', path=str(Path(sys.executable).parent)) or shutil.which('ruff')
    if ruff is None:
        pytest.fail('ruff is not installed: it is in the test extra (pip install -e ".[test]")')
    proc = subprocess.run([ruff, 'check', '--no-cache', '--output-format', 'concise', '.'], cwd=REPO,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
