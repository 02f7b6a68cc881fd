"""``glmha compress``: the command line of :mod:`glmha_plugin.compress.pipeline` (``main(argv)``)."""
import argparse
import sys
from typing import Optional, Sequence

from ..errors import UsageError

EXAMPLE = ("glmha compress --network Restormer --options '{\"dim\": 48}' --weights deraining.pth "
           "--images my_rainy_photos/ --budget 0.85 --iters 3000 --out compressed/")


def _size(text: str):
    try:
        h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise argparse.ArgumentTypeError(f'{text!r}: give HxW, e.g. 256x256') from None
    if h < 8 or w < 8:
        raise argparse.ArgumentTypeError(f'{text!r}: at least 8x8')
    return h, w


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f'must be > 0, got {text}')
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog='glmha compress', formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Compress a trained channel-attention network (Restormer, MST++, ... or any network with MDTA / '
                    'MS-MSA layers) into a cheaper GLMHA network: per-layer ranks planned on your images to meet a MAC '
                    'budget, SVD warm start, then distillation from the trained network on the images alone (no '
                    'targets).', epilog=f'example:\n  {EXAMPLE}\n\ndocs/compress.md explains the steps and the report.')
    net = p.add_argument_group('the trained network (the teacher)')
    net.add_argument('--network', help='registered arch name (basicsr ARCH_REGISTRY), module.path:ClassName, or '
                     '"spandrel": a Restormer / Retinexformer / MST++ checkpoint recognised from its tensors (the '
                     'default without --network and -opt)')
    net.add_argument('--options', help='constructor keyword arguments as a JSON object')
    net.add_argument('-opt', '--opt', help='option YAML whose network_g is the network (instead of --network)')
    net.add_argument('--weights', required=True, help='its trained checkpoint')
    net.add_argument('--param-key', '--param_key', default='params',
                     help='checkpoint entry with the weights (params, params_ema, state_dict, ...; default params)')
    net.add_argument('--no-strict', dest='strict', action='store_false',
                     help='skip attention look-alikes swap_attention cannot replace instead of failing')
    data = p.add_argument_group('images')
    data.add_argument('--images', required=True, help='folder of degraded input images (no targets needed)')
    data.add_argument('--val-lq', '--val_lq', help='folder of held-out input images (default: the last 10%% of '
                      '--images, not trained on)')
    data.add_argument('--val-gt', '--val_gt', help='targets of --val-lq (same file stems): also score against them')
    data.add_argument('--holdout', type=int, help='how many of --images to hold out when no --val-lq (default 10%%)')
    data.add_argument('--crop', type=int, default=128, help='training and planning crop side (default 128)')
    data.add_argument('--augment', choices=('dihedral', 'hflip', 'none'), default='dihedral',
                      help="training crops' augmentation: all 8 flips/rotations (Restormer's, default), horizontal "
                           'flips only (e.g. rain that falls from above), or none')
    plan = p.add_argument_group('ranks')
    goal = plan.add_mutually_exclusive_group(required=True)
    goal.add_argument('--budget', type=float,
                      help='at most this fraction of the teacher\'s MACs (at --macs-at), e.g. 0.85')
    goal.add_argument('--energy', type=float, help='per layer, keep this share of the attention-map energy, e.g. 0.95')
    plan.add_argument('--macs-at', '--macs_at', type=_size, default=(256, 256),
                      help='input size the MACs are counted at, HxW (default 256x256)')
    plan.add_argument('--guidance', choices=('calibration', 'none'), default='calibration',
                      help="GLMHA's instance guidance (default calibration)")
    plan.add_argument('--gamma', type=int, default=8, help='calibration reduction (default 8)')
    plan.add_argument('--candidates', type=_positive(int), default=8,
                      help='per-head ranks tried per layer when planning (default 8; all when a head has fewer '
                           'channels)')
    plan.add_argument('--plan-crops', '--plan_crops', type=_positive(int), default=8,
                      help='image crops the planning measures on (default 8)')
    plan.add_argument('--refit', action='store_true',
                      help='after the warm start, refit each swapped layer\'s output projection by least squares to '
                           'the teacher\'s layer output on --refit-crops crops (no targets, no gradients; '
                           'docs/compress.md)')
    plan.add_argument('--refit-crops', '--refit_crops', type=_positive(int), default=32,
                      help='image crops the --refit measures on (default 32)')
    train = p.add_argument_group('distillation')
    train.add_argument('--iters', type=int, default=3000,
                       help='distillation iterations (default 3000; 0: the warm start only)')
    train.add_argument('--batch', type=_positive(int), default=4, help='crops per iteration (default 4)')
    train.add_argument('--lr', type=_positive(float), default=2e-4,
                       help='AdamW learning rate, linear warm-up over a tenth, then cosine decay (default 2e-4)')
    train.add_argument('--feature-weight', '--feature_weight', type=float, default=0.0,
                       help='weight of an MSE loss on the attention layers\' outputs against the teacher\'s '
                            '(default 0: outputs only)')
    train.add_argument('--val-freq', '--val_freq', type=int, default=0,
                       help='validate every N iterations (default: iters / 10)')
    train.add_argument('--window-size', '--window_size', type=int, default=0,
                       help='pad held-out images to a multiple of this for the networks (default 0: as they are)')
    train.add_argument('--workers', type=int, default=2, help='data loader workers (default 2)')
    train.add_argument('--seed', type=int, default=0)
    out = p.add_argument_group('output')
    out.add_argument('--out', required=True, help='folder for student.pth, network_g.yml, train.yml and the report')
    out.add_argument('--resume', action='store_true', help='continue the run in --out')
    out.add_argument('--overwrite', action='store_true', help='replace the run in --out')
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    if args.iters < 0:
        parser.error('--iters must be >= 0')
    if args.crop < 8:
        parser.error('--crop must be at least 8')
    from .pipeline import run
    try:
        return run(args)
    except UsageError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2


if __name__ == '__main__':
    sys.exit(main())
