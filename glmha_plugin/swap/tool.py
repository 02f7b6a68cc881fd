"""``glmha swap``: a trained checkpoint of any network -> the same network with GLMHA attention.

The network is a name registered in basicsr's ``ARCH_REGISTRY`` (``--network
Restormer --options '{"dim": 48}'``, or ``-opt`` for an option file's
``network_g``) or an importable class (``--network mypkg.arch:MyNet
--options '{...}'``).  The checkpoint (``--param-key``, default ``params``;
``module.`` prefixes are stripped) is loaded strict, the attention is swapped
by :func:`glmha_plugin.swap_attention` with the SVD warm start, and
``{'params': state_dict}`` is written; the report prints per layer the rank
and the K/V energy kept.  ``--full-rank-check`` first verifies, on a random
input, that the full-rank unguided conversion reproduces the network.  For a
registered network the ``network_g`` block that trains the result
(``type: GLMHASwap``) is printed.

``--network spandrel`` (or no ``--network`` and no ``-opt``) lets spandrel
recognise the network from the checkpoint's keys
(:func:`glmha_plugin.deploy.spandrel.load_network`: spandrel's own
architectures, ``spandrel_extra_arches``' when installed); the result is then
loaded back through spandrel with the GLMHA architectures
(:func:`glmha_plugin.register_spandrel`) and its output compared with the
swapped network's.
"""
import argparse
import copy
import importlib
import json
import os
import os.path as osp
import sys
from typing import Optional, Sequence

import torch

from ..deploy.spandrel import SpandrelError, SpandrelMissing, load_network
from ..errors import CheckpointError
from ..glue.checkpoints import load_into
from . import SwapError, swap_attention

FULL_RANK_TOLERANCE = 1e-5
RELOAD_TOLERANCE = 1e-5
SPANDREL = 'spandrel'
INPUT_KEYS = ('inp_channels', 'in_channels', 'in_nc', 'num_in_ch', 'in_ch', 'in_dim')


class ToolError(Exception):
    """A problem with the command line or its files; printed without a traceback."""


def _json(text: Optional[str], what: str):
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ToolError(f'{what}: not valid JSON ({exc}): {text!r}') from None


def network_block(args) -> dict:
    """``{'type': ..., **options}`` from ``-opt`` or ``--network`` / ``--options``."""
    if args.opt:
        import yaml
        if not osp.isfile(args.opt):
            raise ToolError(f'option file {args.opt!r} does not exist')
        with open(args.opt, encoding='utf-8') as f:
            block = (yaml.safe_load(f) or {}).get('network_g')
        if not isinstance(block, dict) or 'type' not in block:
            raise ToolError(f'{args.opt!r} has no network_g block with a type')
        return dict(block)
    options = _json(args.options, '--options') or {}
    if not isinstance(options, dict):
        raise ToolError(f'--options must be a JSON object of keyword arguments, got {args.options!r}')
    return dict(options, type=args.network)


def build(block: dict) -> torch.nn.Module:
    block = dict(block)
    name = block.pop('type')
    try:
        if ':' in name:
            module, _, cls_name = name.partition(':')
            cls = getattr(importlib.import_module(module), cls_name)
        else:
            from basicsr.utils.registry import ARCH_REGISTRY
            cls = ARCH_REGISTRY.get(name)
        return cls(**block)
    except (ImportError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ToolError(f'cannot build network {name!r} with {block}: {type(exc).__name__}: {exc}') from None


def _shape(text: Optional[str], block: Optional[dict], channels: Optional[int] = None):
    if text:
        try:
            return tuple(int(v) for v in text.lower().split('x'))
        except ValueError:
            raise ToolError(f'--input-shape {text!r} must look like 1x3x64x64') from None
    if channels is None:
        channels = next((block[k] for k in INPUT_KEYS if k in block), 3)
    return (1, channels, 64, 64)


def uses_spandrel(args) -> bool:
    """``--network spandrel``, or neither ``--network`` nor ``-opt``: spandrel recognises the network."""
    return args.network == SPANDREL or not (args.network or args.opt)


def load_with_spandrel(args):
    """(network, SpandrelNetwork) of ``--input`` as spandrel recognises it."""
    if args.opt:
        raise ToolError('give either -opt (the option file\'s network_g) or --network spandrel, not both')
    if args.options:
        raise ToolError('--options does not apply to --network spandrel: spandrel recovers the network\'s options '
                        'from the checkpoint')
    try:
        net, info = load_network(args.input, args.param_key)
    except SpandrelMissing as exc:
        if args.network == SPANDREL:
            raise ToolError(str(exc)) from None
        raise ToolError('give the network: --network NAME (registered) or module.path:ClassName, or -opt '
                        'OPTIONS.yml; or install spandrel to recognise it from the checkpoint '
                        '(pip install glmha-plugin[spandrel])') from None
    except (SpandrelError, CheckpointError) as exc:
        raise ToolError(str(exc)) from None
    print(f'spandrel: {info}')
    if info.glmha:
        raise ToolError(f'{args.input} is already a GLMHA network ({info.arch_id}): nothing to swap')
    return net, info


@torch.no_grad()
def spandrel_reload(path: str, net: torch.nn.Module, channels: int) -> str:
    """How the written checkpoint loads back through spandrel with the GLMHA architectures (one line)."""
    from ..deploy.spandrel import HOSTS
    hosts = ', '.join(host.arch_id for host in HOSTS)
    advice = (f'spandrel has GLMHA architectures for {hosts} only: load the result with the network\'s own class, '
              f'swapped by glmha_plugin.swap_attention with the same ranks')
    try:
        again, info = load_network(path)
    except SpandrelError as exc:
        return f'note: the result does not load through spandrel ({exc}); {advice}'
    if not info.glmha:
        return f'note: spandrel loads the result as {info.arch_id}, not as a GLMHA architecture; {advice}'
    x = torch.rand(1, channels, 32, 32, generator=torch.Generator().manual_seed(0))
    want = net.eval()(x)
    err = float((again(x) - want).abs().max() / want.abs().max().clamp_min(1e-12))
    if not err <= RELOAD_TOLERANCE:
        raise ToolError(f'the result loads through spandrel as {info.arch_id} but computes another function '
                        f'(relative max difference {err:.2e} on a 1 x {channels} x 32 x 32 input)')
    return (f'spandrel loads the result as {info.arch_id} after glmha_plugin.register_spandrel(): same output '
            f'(relative max difference {err:.1e} on a 1 x {channels} x 32 x 32 input)')


@torch.no_grad()
def full_rank_check(net: torch.nn.Module, shape, strict: bool) -> float:
    """Relative max difference between ``net`` and its full-rank unguided swap on a random ``shape`` input."""
    twin = copy.deepcopy(net)
    swap_attention(twin, rank_ratio=1.0, guidance='none', strict=strict)
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(0))
    try:
        want, got = net.eval()(x), twin.eval()(x)
    except Exception as exc:  # noqa: BLE001 (the user's network may need other inputs)
        raise ToolError(f'--full-rank-check: the network does not run on one {tuple(shape)} tensor ({exc}); give '
                        f'--input-shape') from None
    return float((want - got).abs().max() / want.abs().max().clamp_min(1e-12))


def _spec(text: Optional[str], what: str):
    value = _json(text, what)
    if value is not None and not isinstance(value, (int, float, dict)):
        raise ToolError(f'{what} must be a number or a JSON object {{"module.path.prefix": number}}, got {text!r}')
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=(
                                    'examples:\n  glmha swap --network Restormer --input deraining.pth '
                                    '--output glmha.pth --rank-ratio 0.5 --full-rank-check\n'
                                    '  glmha swap --network mypkg.arch:PromptIR --options '
                                    '\'{"decoder": true}\' --input promptir.ckpt --param-key state_dict '
                                    '--output glmha.pth'))
    src = p.add_argument_group('network')
    src.add_argument('--network', help='registered arch name (basicsr ARCH_REGISTRY), module.path:ClassName, or '
                     '"spandrel": recognised from the checkpoint by spandrel (the default without --network and -opt)')
    src.add_argument('--options', help='constructor keyword arguments as a JSON object')
    src.add_argument('-opt', '--opt', help="option YAML whose network_g is the network (instead of --network)")
    p.add_argument('--input', required=True, help='the trained checkpoint')
    p.add_argument('--param-key', '--param_key',
                   help='checkpoint entry with the weights (params, params_ema, state_dict, ...; default params, '
                   'with spandrel the entry spandrel picks: params_ema before params)')
    p.add_argument('--output', required=True, help="where to write {'params': swapped state_dict}")
    p.add_argument('--rank', help='K/V rank: a number or a JSON object {"module.path.prefix": rank}')
    p.add_argument('--rank-ratio', '--rank_ratio', help='rank as a fraction of the channels (default 0.5): a number or '
                   'a JSON object of prefixes')
    p.add_argument('--guidance', choices=('calibration', 'none'), default='calibration')
    p.add_argument('--gamma', type=int, default=8, help='calibration reduction (default 8)')
    p.add_argument('--no-strict', action='store_true', help='skip look-alike attention modules instead of failing')
    p.add_argument('--full-rank-check', action='store_true',
                   help='first verify that the full-rank unguided swap reproduces the network on a random input')
    p.add_argument('--input-shape', help='input of the check, e.g. 1x3x64x64 (default: 1 x in_channels x 64 x 64)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing --output')
    return p


def run(args) -> int:
    spandrel = uses_spandrel(args)
    block = None if spandrel else network_block(args)
    if osp.exists(args.output) and not args.overwrite:
        raise ToolError(f'{args.output!r} exists; choose another --output or pass --overwrite')
    if spandrel:
        net, info = load_with_spandrel(args)
        channels, name = info.input_channels, info.arch_id
    else:
        net, channels, name = build(block), None, block['type']
        try:
            load_into(net, args.input, args.param_key or 'params', strict=True)
        except CheckpointError as exc:
            raise ToolError(f'{exc} Check the network options or --param-key') from None
    strict = not args.no_strict
    if args.full_rank_check:
        err = full_rank_check(net, _shape(args.input_shape, block, channels), strict)
        ok = err <= FULL_RANK_TOLERANCE
        print(f'full-rank check: relative max difference {err:.3e} between the network and its full-rank unguided '
              f'GLMHA swap ({"OK" if ok else "FAILED"}, tolerance {FULL_RANK_TOLERANCE:g})')
        if not ok:
            return 1
    spec = dict(rank=_spec(args.rank, '--rank'), rank_ratio=_spec(args.rank_ratio, '--rank-ratio'),
                guidance=args.guidance, gamma=args.gamma)
    report = swap_attention(net, strict=strict, **spec)
    if not report.layers:
        raise ToolError(f'no attention layer of {name} could be swapped\n{report}')
    os.makedirs(osp.dirname(osp.abspath(args.output)), exist_ok=True)
    if spandrel:   # checked through spandrel before it takes the output's name
        folder, base = osp.split(osp.abspath(args.output))
        partial = osp.join(folder, f'.{base}.partial')
        torch.save({'params': net.state_dict()}, partial)
        try:
            reloaded = spandrel_reload(partial, net, channels)
        except BaseException:
            os.remove(partial)
            raise
        os.replace(partial, args.output)
    else:
        torch.save({'params': net.state_dict()}, args.output)
    print(report)
    print(f'wrote {args.output}')
    if spandrel:
        print(reloaded)
    elif ':' not in block['type']:
        import yaml
        network_g = dict(type='GLMHASwap', base=block, **{k: v for k, v in spec.items() if v is not None},
                         strict=strict)
        print('fine-tune it with path.pretrain_network_g: ' + args.output + ' and\n'
              + yaml.safe_dump({'network_g': network_g}, sort_keys=False))
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (ToolError, SwapError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
