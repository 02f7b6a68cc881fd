"""``tools/count_params.py``: parameters of Restormer vs GLMHARestormer (default sizes), a Markdown table."""
import argparse

from ..archs import GLMHARestormer, Restormer


def count(net):
    return sum(p.numel() for p in net.parameters())


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Print parameter counts of Restormer vs GLMHARestormer (default sizes) for a few GLMHA settings.')
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
