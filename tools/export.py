"""ONNX export of a registered network, checked with onnxruntime (same as ``glmha-export``; ``--help``).

    python tools/export.py --opt options/test_Deraining_GLMHA.yml --weights net_g_latest.pth --out restormer.onnx
    python tools/export.py --type GLMHAMST --tiny --out mst.onnx

The work is done by :mod:`glmha_plugin.export` (docs/export.md).
"""
import sys

from glmha_plugin.export import main

if __name__ == '__main__':
    sys.exit(main())
