"""``python tools/evaluate.py --task Deraining``: Restormer's evaluation table in Python (see glmha_plugin.evaluate)."""
import sys

from glmha_plugin.evaluate import main

if __name__ == '__main__':
    sys.exit(main())
