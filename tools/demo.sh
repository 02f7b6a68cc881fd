#!/usr/bin/env bash
# README's main command: install (if needed), then run the bundled demo:
# build rain/clean pairs from scikit-image's photos, train a tiny GLMHA-Restormer
# through basicsr's train_pipeline, test it, print PSNR/SSIM and the trade against
# its CSA twin (parameters, MACs, time per iteration), write a PNG.
# Extra arguments go to `glmha demo` (--workdir DIR, --fresh,
# --iters N, --compare: also train the CSA twin).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/tools/install.sh"
cd "$ROOT"
exec "$ROOT/.venv/bin/glmha" demo "$@"
