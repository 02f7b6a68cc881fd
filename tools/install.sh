#!/usr/bin/env bash
# Idempotent installer: creates .venv at the checkout root (when missing) and
# installs torch, basicsr (without build isolation) and this package (editable,
# with its test extra). Safe to run again: every step is a no-op when done.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${GLMHA_VENV:-$ROOT/.venv}"
PY="${PYTHON:-python3}"
TORCH_SPEC="torch==2.14.1 torchvision==0.29.1"
BASICSR_SPEC="basicsr==1.4.2"
STAMP="$VENV/.glmha-install-stamp"

say() { printf '[install] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
    say "creating virtual environment $VENV"
    "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

# The stamp records the hash of the inputs of the last successful install, so a
# second run costs a second rather than a minute of pip resolution.
want=$(cat "$ROOT/setup.cfg" "$ROOT/pyproject.toml" "$ROOT/setup.py" "$0" 2>/dev/null | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && "$VENV/bin/python" -c "import glmha_plugin" 2>/dev/null; then
    say "environment up to date ($VENV)"
    exit 0
fi

if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
    say "installing $TORCH_SPEC (large; from the local wheel cache where available)"
    "${PIP[@]}" install -q $TORCH_SPEC wheel setuptools cython numpy
fi
if ! "$VENV/bin/python" -m pip show -q basicsr >/dev/null 2>&1; then
    # --no-build-isolation: basicsr's setup_requires would otherwise install
    # torch a second time into a throwaway build environment.
    say "installing $BASICSR_SPEC"
    "${PIP[@]}" install -q --no-build-isolation "$BASICSR_SPEC"
fi
say "installing glmha-plugin (editable, with test extra)"
"${PIP[@]}" install -q --no-build-isolation -e "$ROOT[test]"
# An editable install does not place the package's .pth import hook; do it here.
"$VENV/bin/python" -m glmha_plugin_autoload install
echo "$want" > "$STAMP"
say "done: $("$VENV/bin/python" -c 'import torch, basicsr, glmha_plugin; print("torch", torch.__version__, "basicsr", basicsr.__version__, "glmha_plugin", glmha_plugin.__version__)')"
