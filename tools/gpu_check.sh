#!/usr/bin/env bash
# The prepared GPU check (docs/gpu_check.md): bash tools/gpu_check.sh OUTDIR [--quick] [--steps NAME ...]
# Writes OUTDIR/report.md (after every step), OUTDIR/gpu_check.log and the benchmark plots; exit 1 if a step
# failed. Python: $GLMHA_PYTHON, else this checkout's .venv/bin/python, else python3 (the GPU machine's).
# There, what the machine lacks is installed offline from .gpu_wheels/ (tools/gpu_wheels.sh makes it;
# carry it), so the command needs no network. Everything else is tools/gpu_check/ (driver.py and one module per step).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${GLMHA_PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
if [ $# -lt 1 ]; then
    echo "usage: bash tools/gpu_check.sh OUTDIR [--quick] [--steps NAME ...]   (--help, docs/gpu_check.md)" >&2
    exit 2
fi
export PYTHONUNBUFFERED=1
PYTHONPATH="$ROOT/tools${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" -m gpu_check.driver "$@"
