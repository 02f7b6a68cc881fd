"""Print parameter counts of Restormer vs GLMHARestormer (default sizes) for a few GLMHA settings.

    .venv/bin/python tools/count_params.py [--ratios 0.25 0.5 0.75] [--gamma 8]

The command is glmha_plugin.analysis.count_params.main.
"""
from glmha_plugin.analysis.count_params import main

if __name__ == '__main__':
    main()
