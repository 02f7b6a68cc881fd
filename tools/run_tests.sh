#!/usr/bin/env bash
# README's test command (and the whole of .ci/run): install (if needed), then pytest on
# $GLMHA_TEST_WORKERS processes (pytest-xdist; default 2, the CI machine's cores; 0: in this process).
# Extra arguments go to pytest (e.g. -m "not slow", -k restormer, -x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/install.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest tests -ra --durations=15 -n "${GLMHA_TEST_WORKERS:-2}" "$@"
