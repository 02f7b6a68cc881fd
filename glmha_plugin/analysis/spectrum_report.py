"""``glmha spectrum``: attention spectra of a model on real images, and GLMHA ranks from them.

:func:`main` loads the model (an option file's ``network_g`` or a host's
paper configuration, random or trained weights) and the images (a folder, or
the bundled demo photos), collects the spectra with
:class:`~glmha_plugin.analysis.spectrum.SpectrumCollector` and writes
spectrum.png, spectrum.md and spectrum_ranks.csv, and with
``--write-options`` a ``network_g`` block with the measured ranks (usage:
``glmha spectrum``'s docstring).
"""
import argparse
import copy
import csv
import os
import os.path as osp
import sys
import tempfile

import cv2
import numpy as np
import torch
import yaml
from tqdm import tqdm

from ..errors import UsageError
from ..glue.checkpoints import extract_state_dict, key_mismatch, load_checkpoint
from ..glue.option_files import load_options
from . import spectrum
from .hosts import HOSTS, get_host, host_for_arch

IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


def load_images(folder: str, size: int, limit: int):
    """RGB float tensors 1 x 3 x size x size in [0, 1]: short side resized to ``size``, centre crop."""
    from basicsr.utils import img2tensor
    if not osp.isdir(folder):
        raise UsageError(f'image folder {folder!r} does not exist')
    names = sorted(f for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTS))[:limit]
    if not names:
        raise UsageError(f'no images ({", ".join(IMAGE_EXTS)}) in {folder!r}')
    images = []
    for name in names:
        img = cv2.imread(osp.join(folder, name), cv2.IMREAD_COLOR)
        if img is None:
            raise UsageError(f'cannot read image {osp.join(folder, name)!r}')
        h, w = img.shape[:2]
        s = size / min(h, w)
        img = cv2.resize(img, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_AREA)
        top, left = (img.shape[0] - size) // 2, (img.shape[1] - size) // 2
        img = img[top:top + size, left:left + size]
        images.append(img2tensor(img.astype(np.float32) / 255.0, bgr2rgb=True, float32=True).unsqueeze(0))
    return names, images


def demo_images(size: int, limit: int):
    """The bundled demo's rainy photos (glmha_plugin.demo.data.make_rain_pairs), built in a temporary folder."""
    from ..demo.data import make_rain_pairs
    with tempfile.TemporaryDirectory() as tmp:
        folders = make_rain_pairs(tmp, train_short_side=max(size, 64))
        names, images = [], []
        for key in ('train_input', 'test_input'):
            n, imgs = load_images(folders[key], size, limit - len(images))
            names += n
            images += imgs
            if len(images) >= limit:
                break
    return names, images


def build_model(args):
    """(model, host, network options) from --opt or --host."""
    from basicsr.utils.registry import ARCH_REGISTRY
    if args.opt:
        net_opt = copy.deepcopy(load_options(args.opt).get('network_g') or {})
        if 'type' not in net_opt:
            raise UsageError(f'{args.opt}: network_g.type is missing')
        arch = net_opt.pop('type')
        try:
            host = host_for_arch(arch)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        return ARCH_REGISTRY.get(arch)(**net_opt), host, dict(type=arch, **net_opt)
    host = get_host(args.host)
    options = dict(host.default_options, **(host.tiny if args.tiny else {}))
    return host.build(**options), host, dict(type=host.arch, **options)


def load_weights(model, path: str, key: str):
    """Weights ``ckpt[key]`` (or a plain state_dict) into ``model``, strict, through glmha_plugin.glue.checkpoints
    (weights_only; its errors are UsageErrors that name the file and the mismatching keys)."""
    if not osp.isfile(path):
        raise UsageError(f'weights file {path!r} does not exist')
    ckpt = load_checkpoint(path)
    if isinstance(ckpt, dict) and key not in ckpt and any(isinstance(v, dict) for v in ckpt.values()):
        raise UsageError(f'{path}: no key {key!r} in the checkpoint (keys: {sorted(ckpt)}); set --param-key')
    state = extract_state_dict(ckpt, key, path)
    report = key_mismatch(model.state_dict(), state)
    if report:
        raise UsageError(f'{path} does not fit {type(model).__name__}: {report}')
    model.load_state_dict(state, strict=True)


def ranks_yaml(net_opt: dict, rank, energy: float, source: str) -> str:
    """``network_g`` with GLMHA and the per-layer ``rank`` option ``{module-path prefix: rank}`` (rank_ratio
    removed)."""
    net = {k: v for k, v in net_opt.items() if k not in ('rank_ratio', 'rank')}
    net['attention'] = 'glmha'
    net['rank'] = rank
    header = (f'# GLMHA ranks per stage (or U-Net level) keeping {energy:.0%} of the attention maps\'\n'
              f'# singular-value energy, measured by glmha spectrum on {source};\n'
              f'# rank: {{module-path prefix: rank}}, the longest prefix of a layer\'s module path wins.\n'
              f'# Paste network_g into your option file (other sections are yours to keep).\n')
    return header + yaml.safe_dump({'network_g': net}, sort_keys=False)


def main(argv=None):
    parser = argparse.ArgumentParser(description="How low-rank are a model's channel-attention maps? Spectra per "
                                                 'level on real images, and ranks for GLMHA.')
    src = parser.add_argument_group('model')
    src.add_argument('--opt', help='option YAML whose network_g is analysed (default: --host with paper options)')
    src.add_argument('--host', default='restormer', help=f'host network when no --opt (known: {sorted(HOSTS)})')
    src.add_argument('--tiny', action='store_true', help="the host's tiny configuration (quick check)")
    src.add_argument('--weights', help='checkpoint to load (default: random initialisation)')
    src.add_argument('--param-key', default='params', help="key of the weights in the checkpoint (basicsr: 'params')")
    data = parser.add_argument_group('images')
    data.add_argument('--images', help='folder of images (default: the bundled demo photos)')
    data.add_argument('--size', type=int, default=128, help='images are resized (short side) and centre-cropped')
    data.add_argument('--max-images', type=int, default=8)
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--out-dir', default='spectrum_report')
    parser.add_argument('--write-options', metavar='PATH', help='write network_g with GLMHA and the measured ranks')
    parser.add_argument('--energy', type=float, default=0.95, help='energy kept by the ranks of --write-options')
    args = parser.parse_args(argv)
    try:
        if not 0 < args.energy <= 1:
            raise UsageError(f'--energy must be in (0, 1], got {args.energy}')
        if args.write_options and osp.exists(args.write_options):
            raise UsageError(f'{args.write_options} exists; choose a new path (nothing is overwritten)')
        try:
            model, host, net_opt = build_model(args)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        if args.weights:
            load_weights(model, args.weights, args.param_key)
        names, images = (load_images(args.images, args.size, args.max_images) if args.images
                         else demo_images(args.size, args.max_images))
    except UsageError as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    device = torch.device(args.device)
    model = model.to(device).eval()
    with spectrum.SpectrumCollector(model, host.stage_namer(model)) as collector, torch.no_grad():
        for img in tqdm(images, desc='images', unit='img'):
            img = img.to(device)
            model(*(host.from_images(img) if host.from_images else (img,)))
    layers = collector.results()

    source = (f'{len(images)} images from {args.images or "the demo photos"} ({args.size}x{args.size}), '
              f'{"weights " + args.weights if args.weights else "random initialisation"}')
    os.makedirs(args.out_dir, exist_ok=True)
    md = [f'# Attention spectrum of {net_opt["type"]}', '', f'- {source}', '',
          spectrum.table(layers), '', 'Per-stage ranks (largest per-head rank of the stage x heads):', '']
    for e in spectrum.ENERGIES:
        md.append(f'- {e:.0%}: {spectrum.stage_ranks(layers, e)}')
    md = '\n'.join(md) + '\n'
    with open(osp.join(args.out_dir, 'spectrum.md'), 'w', encoding='utf-8') as f:
        f.write(md)
    with open(osp.join(args.out_dir, 'spectrum_ranks.csv'), 'w', newline='', encoding='utf-8') as f:
        writer = csv.writer(f)
        writer.writerow(['layer', 'stage', 'channels', 'heads'] + [f'rank_per_head_{e:g}' for e in spectrum.ENERGIES])
        for layer in layers:
            writer.writerow([layer.name, layer.stage, layer.channels, layer.heads]
                            + [layer.rank(e) for e in spectrum.ENERGIES])
    spectrum.plot(layers, osp.join(args.out_dir, 'spectrum.png'), title=f'{net_opt["type"]}: {source}')
    print(md)
    print(f'written: {osp.join(args.out_dir, "spectrum.md")}, spectrum_ranks.csv, spectrum.png')
    if args.write_options:
        rank = host.rank_option(spectrum.stage_ranks(layers, args.energy), model)
        os.makedirs(osp.dirname(osp.abspath(args.write_options)), exist_ok=True)
        with open(args.write_options, 'w', encoding='utf-8') as f:
            f.write(ranks_yaml(net_opt, rank, args.energy, source))
        print(f'written: {args.write_options} (rank for {args.energy:.0%} energy: {rank})')
    return 0
