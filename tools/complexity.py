"""Parameters and MACs of each host with CSA vs GLMHA, as Markdown + CSV + PNG.

    .venv/bin/python tools/complexity.py                       # every host at its papers' sizes, ratios 0.25/0.5/0.75
    .venv/bin/python tools/complexity.py --hosts restormer --sizes restormer=3x128x128 --ratios 0.5
    .venv/bin/python tools/complexity.py --tiny --out-dir /tmp/cx  # seconds-long check with tiny models

Counting: mmengine FlopAnalyzer with an explicit rule per op
(glmha_plugin/analysis/complexity.py); MACs = multiply-accumulates of
convolutions, linear layers and matrix products; other ops are counted
separately and every op kind seen is listed in the report.
The command is glmha_plugin.analysis.complexity_report.main.
"""
import sys

from glmha_plugin.analysis.complexity_report import main

if __name__ == '__main__':
    sys.exit(main())
