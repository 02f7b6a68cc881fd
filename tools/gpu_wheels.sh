#!/usr/bin/env bash
# Download, on a machine that reaches PyPI, what the GPU check needs and the GPU machine lacks (basicsr 1.4.2
# as its sdist, mmengine, lmdb built for the GPU machine's Python, addict, yapf, hdf5storage, termcolor,
# platformdirs; the list and versions: bash tools/gpu_check.sh --list-wheels) into .gpu_wheels/, which git
# ignores: name it in the device run's carry list. tools/gpu_check.sh installs them there offline.
#   bash tools/gpu_wheels.sh [PYTHON_VERSION]     # default 3.12, the GPU machine's
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "-h" ] || [ "${1:-}" = "--help" ]; then
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
fi
PYVER="${1:-3.12}"
DEST="$ROOT/.gpu_wheels"
PY="${GLMHA_PYTHON:-}"
if [ -z "$PY" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi
fi
mkdir -p "$DEST"
PYTHONPATH="$ROOT/tools" "$PY" -m gpu_check.driver --list-wheels | while read -r dist version kind; do
    if [ "$kind" = sdist ]; then
        "$PY" -m pip download -q --no-deps --no-binary=:all: -d "$DEST" "$dist==$version"
    else
        "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version "$PYVER" --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            -d "$DEST" "$dist==$version"
    fi
    echo "  $dist==$version ($kind)"
done
echo "$(du -sh "$DEST" | cut -f1) in $DEST: carry it with the device run (.gpu_wheels)"
