"""Equal-budget quality comparison of CSA and GLMHA on the bundled demo data, through the real train/test pipelines.

    .venv/bin/python tools/compare.py                         # CSA vs GLMHA r=0.5, 3 seeds, 200 iterations each
    .venv/bin/python tools/compare.py --seeds 0 1 2 3 --iters 400 --ratios 0.25 0.5 --guidance calibration none
    .venv/bin/python tools/compare.py --warm-start           # adds GLMHA started from each seed's CSA run (SVD)

Builds the demo's rain dataset under --workdir (reused when present), trains
every variant x seed with ``python -m glmha_plugin.train`` on identical data,
iterations and seeds, tests with ``python -m glmha_plugin.test``, and prints
mean ± sample standard deviation of PSNR/SSIM per variant, the paired
difference to CSA, and parameters/MACs.  Writes compare.md, compare.csv and
compare.png under --workdir.  The command is glmha_plugin.analysis.compare.main.
"""
import sys

from glmha_plugin.analysis.compare import main

if __name__ == '__main__':
    sys.exit(main())
