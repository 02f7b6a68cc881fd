#!/usr/bin/env bash
# README's test command (and the whole of .ci/run): install (if needed), then pytest.
# Extra arguments go to pytest (e.g. -m "not slow", -k restormer, -x).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/install.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/python" -m pytest tests -ra --durations=15 "$@"
