"""Equal-budget quality comparison of CSA and GLMHA on the bundled demo data, through the real train/test pipelines.

    .venv/bin/python tools/compare.py                         # CSA vs GLMHA r=0.5, 3 seeds, 200 iterations each
    .venv/bin/python tools/compare.py --seeds 0 1 2 3 --iters 400 --ratios 0.25 0.5 --guidance calibration none
    .venv/bin/python tools/compare.py --warm-start           # adds GLMHA started from each seed's CSA run (SVD)

Builds the demo's rain dataset under --workdir (reused when present), trains
every variant x seed with ``python -m glmha_plugin.train`` on identical data,
iterations and seeds, tests with ``python -m glmha_plugin.test``, and prints
mean ± sample standard deviation of PSNR/SSIM per variant, the paired
difference to CSA, and parameters/MACs.  Writes compare.md, compare.csv and
compare.png under --workdir.
"""
import argparse
import os.path as osp
import shutil
import sys
import time

from glmha_plugin.analysis import compare
from glmha_plugin.analysis.tables import write_csv
from glmha_plugin.demo import DATA_DIR, make_rain_pairs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--workdir', default='compare_run', help='data, experiments/, results/ and the report go here')
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=200, help='training iterations of every run')
    parser.add_argument('--host', default='restormer', choices=compare.COMPARE_HOSTS,
                        help="the network compared (its tiny configuration); the data is the demo's for every host")
    parser.add_argument('--ratios', type=float, nargs='+', default=[0.5], help='GLMHA rank ratios')
    parser.add_argument('--guidance', nargs='+', default=['calibration'], choices=['calibration', 'none'])
    parser.add_argument('--batch', type=int, default=4)
    parser.add_argument('--gt-size', type=int, default=48, help='training patch size')
    parser.add_argument('--workers', type=int, default=0, help='data-loader workers per run')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch CPU threads per run (OMP_NUM_THREADS; 0 = torch default). The tiny model gains '
                             'little from more, and one thread does not stall when other processes share the cores')
    parser.add_argument('--warm-start', action='store_true',
                        help='also run every GLMHA variant started from the same seed\'s trained CSA run, converted '
                             'by truncated SVD (glmha_plugin.convert, as tools/convert_checkpoint.py), then trained '
                             '--iters more iterations')
    parser.add_argument('--fresh', action='store_true', help='delete the work directory first')
    args = parser.parse_args(argv)
    if args.iters < 1:  # (--seeds takes one or more values: argparse already asks for a seed)
        parser.error('give a positive --iters')

    workdir = osp.abspath(args.workdir)
    if args.fresh and osp.isdir(workdir):
        shutil.rmtree(workdir)
    if not osp.isdir(osp.join(workdir, DATA_DIR, 'test', 'target')):
        print(f'[compare] building the demo rain dataset under {osp.join(workdir, DATA_DIR)}', flush=True)
        make_rain_pairs(osp.join(workdir, DATA_DIR))
    t0 = time.time()
    runs = compare.run_comparison(workdir, compare.variants(args.ratios, args.guidance, args.host), args.seeds,
                                  args.iters,
                                  args.batch, args.gt_size, args.workers, args.warm_start, args.threads or None,
                                  progress=lambda msg: print(f'[compare] {msg}', flush=True))
    warm = (f' "{compare.WARM_SUFFIX.strip()}": initialised from the same seed\'s CSA run (after its {args.iters} '
            f'iterations) by truncated SVD, then trained {args.iters} iterations.' if args.warm_start else '')
    md = (f'# Equal-budget comparison on the demo data\n\n{args.iters} iterations, batch {args.batch}, patch '
          f'{args.gt_size}, seeds {args.seeds}; test: {DATA_DIR}/test (RGB PSNR/SSIM, no crop); GMACs at the first '
          f'test image\'s size; {time.time() - t0:.0f} s in total.{warm}\n\n' + compare.summary_markdown(runs))
    with open(osp.join(workdir, 'compare.md'), 'w', encoding='utf-8') as f:
        f.write(md)
    write_csv(runs, osp.join(workdir, 'compare.csv'))
    compare.plot(runs, osp.join(workdir, 'compare.png'))
    print(md)
    print(f'written: {", ".join(osp.join(workdir, f) for f in ("compare.md", "compare.csv", "compare.png"))}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
