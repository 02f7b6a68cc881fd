"""Speed and memory of CSA vs GLMHA, side by side in one process: attention layers, whole models, training memory.

    .venv/bin/python tools/benchmark.py                          # everything, CUDA when available, else CPU
    .venv/bin/python tools/benchmark.py --parts layers --channels 48 96 --sides 64 128
    .venv/bin/python tools/benchmark.py --parts models memory --model-size restormer=3x128x128
    .venv/bin/python tools/benchmark.py --parts memory --checkpoint --hosts restormer mst_plus_plus   # use_checkpoint
    .venv/bin/python tools/benchmark.py --tiny --repeats 2 --out-dir /tmp/bench   # seconds-long smoke run

Every comparison is interleaved (each repeat runs every variant once, in a
rotating order) and reported as the median over repeats, with ratios to CSA
and the project's targets checked per row.  On CUDA, timed calls are
synchronised.  Writes benchmark.md, benchmark_*.csv and benchmark.png.
The command is glmha_plugin.analysis.benchmark_report.main.
"""
import sys

from glmha_plugin.analysis.benchmark_report import main

if __name__ == '__main__':
    sys.exit(main())
