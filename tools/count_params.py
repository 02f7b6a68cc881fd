"""Print parameter counts of Restormer vs GLMHARestormer (default sizes) for a few GLMHA settings.

    .venv/bin/python tools/count_params.py [--ratios 0.25 0.5 0.75] [--gamma 8]
"""
import argparse

import glmha_plugin  # noqa: F401  (registers the architectures)
from glmha_plugin.archs import GLMHARestormer, Restormer


def count(net):
    return sum(p.numel() for p in net.parameters())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--ratios', type=float, nargs='+', default=[0.25, 0.5, 0.75])
    parser.add_argument('--gamma', type=int, default=8)
    args = parser.parse_args(argv)
    base = count(Restormer())
    print(f'| model | attention | rank_ratio | guidance | parameters | vs Restormer |')
    print(f'|---|---|---|---|---:|---:|')
    print(f'| Restormer | CSA | 1 | - | {base:,} | - |')
    for ratio in args.ratios:
        for guidance in ('calibration', 'none'):
            n = count(GLMHARestormer(rank_ratio=ratio, guidance=guidance, gamma=args.gamma))
            print(f'| GLMHARestormer | GLMHA | {ratio:g} | {guidance} | {n:,} | {n - base:+,} ({n / base:.3f}x) |')


if __name__ == '__main__':
    main()
