"""Parameters and MACs of each host with CSA vs GLMHA, as Markdown + CSV + PNG.

    .venv/bin/python tools/complexity.py                       # every host at its papers' sizes, ratios 0.25/0.5/0.75
    .venv/bin/python tools/complexity.py --hosts restormer --sizes restormer=3x128x128 --ratios 0.5
    .venv/bin/python tools/complexity.py --tiny --out-dir /tmp/cx  # seconds-long check with tiny models

Counting: mmengine FlopAnalyzer with an explicit rule per op
(glmha_plugin/analysis/complexity.py); MACs = multiply-accumulates of
convolutions, linear layers and matrix products; other ops are counted
separately and every op kind seen is listed in the report.
"""
import argparse
import os
import os.path as osp
import sys

import glmha_plugin  # noqa: F401  (registers the architectures)
from glmha_plugin.analysis import complexity_report as report
from glmha_plugin.analysis.hosts import HOSTS, attention_variants, get_host
from glmha_plugin.analysis.tables import write_csv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--hosts', nargs='+', default=list(HOSTS), help=f'hosts to count (known: {list(HOSTS)})')
    parser.add_argument('--sizes', nargs='+', metavar='HOST=CxHxW',
                        help="input sizes instead of the papers' (repeat a host for several sizes)")
    parser.add_argument('--ratios', type=float, nargs='+', default=[0.25, 0.5, 0.75], help='GLMHA rank ratios')
    parser.add_argument('--guidance', nargs='+', default=['calibration', 'none'], choices=['calibration', 'none'])
    parser.add_argument('--tiny', action='store_true', help="each host's tiny configuration (quick check)")
    parser.add_argument('--out-dir', default='complexity_report', help='where complexity.{md,csv,png} go')
    args = parser.parse_args(argv)
    try:
        hosts = [get_host(name) for name in args.hosts]
        sizes = report.parse_host_sizes(args.sizes, hosts, '--sizes')
    except ValueError as exc:
        parser.error(str(exc))

    variants = attention_variants(args.ratios, args.guidance)
    op_kinds = set()
    rows = []
    for host in hosts:
        rows += report.measure([host], variants, sizes, overrides=host.tiny if args.tiny else None,
                               op_kinds=op_kinds)
    md = report.to_markdown(rows, hosts, op_kinds, show_upstream=not args.tiny)
    os.makedirs(args.out_dir, exist_ok=True)
    paths = {ext: osp.join(args.out_dir, f'complexity.{ext}') for ext in ('md', 'csv', 'png')}
    with open(paths['md'], 'w', encoding='utf-8') as f:
        f.write(md)
    write_csv(rows, paths['csv'])
    report.plot(rows, paths['png'])
    print(md)
    print('written: ' + ', '.join(paths.values()))
    unclassified = sorted({r.unclassified for r in rows if r.unclassified})
    if unclassified:
        print(f'WARNING: op kinds without a counting rule (not counted): {unclassified}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
