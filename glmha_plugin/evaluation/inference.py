"""Restormer-style testing: restore every image of a test folder and write ``<result_dir>/<dataset>/<stem>.png``.

``glmha infer --task Deraining --weights W.pth`` does what
Restormer's ``Deraining/test.py`` and ``Motion_Deblurring/test.py`` do, for
Restormer and GLMHARestormer checkpoints alike:

* reads ``<input_dir>/test/<dataset>/input/*.png|*.jpg`` (Restormer's layout;
  ``--task LowLight``: Retinexformer's ``<input_dir>/<dataset>/Test/input``,
  default ``data/LOLv1/Test/input``, padded to a multiple of 4 as its test script);
* pads each image (reflect) to a multiple of 8, runs the network, crops
  back, clamps to [0, 1] and saves an 8-bit PNG named after the input's stem
  in ``<result_dir>/<dataset>/``, where ``evaluate_PSNR_SSIM.m`` /
  ``evaluate_gopro_hide.m`` (and ``glmha evaluate``) look for it;
* ``--tile T --tile_overlap O`` restores images too large for memory in
  overlapping windows of at most T x T, averaged where they overlap
  (Restormer's ``demo.py`` scheme, see :func:`tiled_forward`).  Channel
  attention pools over the whole window, so tiles see less context than one
  pass: the result equals the untiled one when the image fits in one tile,
  and differs slightly otherwise (measured in the README).

The network comes from an option file's ``network_g`` (``--network_opt``,
default: the task's GLMHA training YAML); ``--weights`` is a basicsr
checkpoint (``{'params': ...}``; official Restormer files have this form).
"""
import argparse
import os
import os.path as osp
import sys
import time
from typing import Dict, List, Optional, Sequence

import torch

from ..errors import CheckpointError, UsageError
from ..glue.checkpoints import load_into
from ..glue.option_files import shipped_file
from ..prepare.gopro_patches import patch_corners

TASKS: Dict[str, Sequence[str]] = {
    'Deraining': ('Rain100L', 'Rain100H', 'Test100', 'Test1200', 'Test2800'),
    'Motion_Deblurring': ('GoPro', 'HIDE', 'RealBlur_J', 'RealBlur_R'),
    'LowLight': ('LOLv1',),   # Retinexformer's layout: data/LOLv1/Test/{input,target}
}
DEFAULT_NETWORK_OPT = {'Deraining': 'options/Deraining_GLMHA.yml', 'Motion_Deblurring': 'options/Deblurring_GLMHA.yml',
                       'LowLight': 'options/LowLight_GLMHARetinexFormer_LOL_v1.yml'}
DEFAULT_INPUT_DIR = {'Deraining': 'datasets/Deraining', 'Motion_Deblurring': 'datasets/Motion_Deblurring',
                     'LowLight': 'data'}
INPUT_SUFFIXES = ('.png', '.jpg')  # Restormer's test scripts glob these two
SIZE_MULTIPLE = 8
TASK_SIZE_MULTIPLE = {'LowLight': 4}   # Retinexformer's test script pads to a multiple of 4


def test_folder(task: str, root: str, dataset: str, kind: str) -> str:
    """``<root>/test/<dataset>/<kind>`` (Restormer's layout) or ``<root>/<dataset>/Test/<kind>`` (Retinexformer's)."""
    if task == 'LowLight':
        return osp.join(root, dataset, 'Test', kind)
    return osp.join(root, 'test', dataset, kind)


class InferenceError(UsageError):
    """A problem with the user's inputs; printed without a traceback."""


def tiled_forward(net: torch.nn.Module, x: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """Run ``net`` on overlapping windows of B x C x H x W ``x`` and average where they overlap.

    Windows are ``min(tile, H)`` x ``min(tile, W)``; their corners are
    ``0, s, 2s, ...`` plus the last position ``size - window`` on each axis
    (s = window - overlap), as Restormer's ``demo.py``.  Unlike it, the window
    is clipped per axis (Restormer uses one square ``min(tile, H, W)``), so an
    image that fits in one tile is processed in one pass and the result equals
    the untiled one.  Returns B x C' x H x W.
    """
    if tile % SIZE_MULTIPLE:
        raise InferenceError(f'--tile must be a multiple of {SIZE_MULTIPLE} (got {tile})')
    h, w = x.shape[-2:]
    th, tw = min(tile, h), min(tile, w)
    corners = []
    for size, window in ((h, th), (w, tw)):
        if not 0 <= overlap < window:
            raise InferenceError(f'--tile_overlap ({overlap}) must be >= 0 and smaller than the tile ({window} px '
                                 f'here)')
        corners.append(patch_corners(size, window, overlap))
    out = weight = None
    for top in corners[0]:
        for left in corners[1]:
            patch = net(x[..., top:top + th, left:left + tw])
            if out is None:
                out = x.new_zeros(patch.shape[0], patch.shape[1], h, w)
                weight = x.new_zeros(1, 1, h, w)
            out[..., top:top + th, left:left + tw] += patch
            weight[..., top:top + th, left:left + tw] += 1
    return out / weight


@torch.no_grad()
def restore(net: torch.nn.Module, img: torch.Tensor, tile: Optional[int] = None,
            tile_overlap: int = 32, multiple: int = SIZE_MULTIPLE) -> torch.Tensor:
    """Restore 1 x C x H x W ``img`` in [0, 1]: pad (reflect) to a ``multiple``, run (tiled or not), crop, clamp."""
    from ..layers import pad_to_multiple
    h, w = img.shape[-2:]
    x = pad_to_multiple(img, multiple)
    out = net(x) if tile is None else tiled_forward(net, x, tile, tile_overlap)
    return out[..., :h, :w].clamp_(0, 1)


def load_network(network_opt: str, weights: str, param_key: str, device: torch.device) -> torch.nn.Module:
    """Build ``network_g`` of ``network_opt`` and load ``weights`` (strict)."""
    import yaml
    from basicsr.archs import build_network

    if not osp.isfile(network_opt):
        raise InferenceError(f'network option file {network_opt!r} does not exist (--network_opt)')
    with open(network_opt, encoding='utf-8') as f:
        opt = yaml.safe_load(f) or {}
    if 'network_g' not in opt:
        raise InferenceError(f'{network_opt!r} has no network_g block; give a training or test option file')
    if not osp.isfile(weights):
        raise InferenceError(f'weights file {weights!r} does not exist (--weights)')
    net = build_network(dict(opt['network_g']))
    try:
        load_into(net, weights, param_key or None, strict=True)
    except CheckpointError as exc:
        raise InferenceError(f'{weights!r} does not fit network_g of {network_opt!r} ({exc}) Give the option file '
                             f'the checkpoint was trained with (--network_opt), e.g. options/Deraining_Restormer.yml '
                             f'for Restormer weights, or another --param_key') from None
    return net.to(device).eval()


def input_images(folder: str) -> List[str]:
    if not osp.isdir(folder):
        raise InferenceError(f'input folder {folder!r} does not exist (Restormer layout: '
                             f'<input_dir>/test/<dataset>/input/)')
    files = sorted(osp.join(folder, n) for n in os.listdir(folder) if osp.splitext(n)[1].lower() in INPUT_SUFFIXES)
    if not files:
        raise InferenceError(f'input folder {folder!r} has no .png or .jpg images')
    return files


def restore_folder(net: torch.nn.Module, files: Sequence[str], out_dir: str, device: torch.device,
                   tile: Optional[int] = None, tile_overlap: int = 32, desc: str = '',
                   multiple: int = SIZE_MULTIPLE) -> List[str]:
    """Restore ``files`` into ``out_dir/<stem>.png`` (progress bar); returns the written paths."""
    import cv2
    from basicsr.utils import img2tensor, imwrite, tensor2img
    from tqdm import tqdm

    os.makedirs(out_dir, exist_ok=True)
    written = []
    for path in tqdm(files, desc=desc, unit='img'):
        img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise InferenceError(f'cannot read image {path!r} (not an image or corrupt)')
        x = img2tensor(img.astype('float32') / 255.0, bgr2rgb=True, float32=True).unsqueeze(0).to(device)
        out = restore(net, x, tile, tile_overlap, multiple)
        target = osp.join(out_dir, osp.splitext(osp.basename(path))[0] + '.png')
        imwrite(tensor2img(out.cpu(), rgb2bgr=True, min_max=(0, 1)), target)
        written.append(target)
    return written


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description='Restore Restormer-layout test sets into <result_dir>/<dataset>/<stem>.png '
        '(Restormer test.py style). For basicsr test YAMLs use: glmha test -opt OPTIONS.yml')
    p.add_argument('--task', choices=sorted(TASKS), required=True)
    p.add_argument('--weights', required=True, help='checkpoint ({"params": ...}), e.g. net_g_latest.pth')
    p.add_argument('--input_dir', help='folder holding test/<dataset>/input (LowLight: <dataset>/Test/input; default: '
                   + ', '.join(f'{t}: {d}' for t, d in DEFAULT_INPUT_DIR.items()) + ')')
    p.add_argument('--result_dir', default='results', help='results go to <result_dir>/<dataset>/ (default: results)')
    p.add_argument('--dataset', nargs='+', help='test sets (default: all of the task: '
                   + '; '.join(f'{t}: {" ".join(d)}' for t, d in TASKS.items()) + ')')
    p.add_argument('--network_opt', help='option YAML whose network_g matches the weights (default: '
                   + ', '.join(f'{t}: {o}' for t, o in DEFAULT_NETWORK_OPT.items()) + ')')
    p.add_argument('--param_key', default='params', help='checkpoint entry with the weights (params or params_ema)')
    p.add_argument('--tile', type=int, default=None, help='tile size (multiple of 8) for images too large for memory')
    p.add_argument('--tile_overlap', '--tile-overlap', type=int, default=32, help='overlap between tiles (32)')
    p.add_argument('--device', default=None, help='cuda or cpu (default: cuda when available)')
    return p


def run(args: argparse.Namespace) -> Dict[str, List[str]]:
    datasets = args.dataset or list(TASKS[args.task])
    input_dir = args.input_dir or DEFAULT_INPUT_DIR[args.task]
    network_opt = args.network_opt or shipped_file(DEFAULT_NETWORK_OPT[args.task])
    folders = {d: test_folder(args.task, input_dir, d, 'input') for d in datasets}
    missing = [f for f in folders.values() if not osp.isdir(f)]
    if missing:
        raise InferenceError(f'missing input folder(s): {", ".join(missing)}; pass --input_dir (the folder that holds '
                             f'{test_folder(args.task, "", "<dataset>", "input")}) or choose sets with --dataset')
    files = {d: input_images(f) for d, f in folders.items()}
    device = torch.device(args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    net = load_network(network_opt, args.weights, args.param_key, device)
    print(f'===> testing {args.weights} ({type(net).__name__}, {network_opt}) on {device}', flush=True)
    written = {}
    for dataset in datasets:
        start = time.time()
        written[dataset] = restore_folder(net, files[dataset], osp.join(args.result_dir, dataset), device, args.tile,
                                          args.tile_overlap, desc=dataset,
                                          multiple=TASK_SIZE_MULTIPLE.get(args.task, SIZE_MULTIPLE))
        print(f'{dataset}: {len(written[dataset])} images -> {osp.join(args.result_dir, dataset)} '
              f'({time.time() - start:.1f} s)', flush=True)
    return written


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run(args)
    except InferenceError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0
