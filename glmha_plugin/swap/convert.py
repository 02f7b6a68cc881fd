"""``glmha convert``: a trained CSA checkpoint (Restormer, MST, MST++, Retinexformer) made into the starting point of
its GLMHA network (the SVD warm start of :mod:`glmha_plugin.swap.warm_start`, file in, file out); ``glmha swap``
does the same for any network."""
import argparse
import inspect
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

import torch

from ..errors import CheckpointError, UsageError
from ..glue.checkpoints import load_into
from .warm_start import LayerReport, convert_network

GLMHA_KEYS = ('attention', 'rank', 'rank_ratio', 'guidance', 'gamma')   # network options of GLMHA, not of its parent


def parent_options(network_g: dict) -> dict:
    """The CSA network's options matching a GLMHA ``network_g``, GLMHA's own keys dropped: the registered network
    the GLMHA class derives from (``GLMHARestormer`` -> ``Restormer``, ``GLMHAMST`` -> ``MST``, ...), or the same
    type with ``attention: csa`` (``type: Restormer, attention: glmha``)."""
    from basicsr.utils.registry import ARCH_REGISTRY
    kind = network_g.get('type')
    cls = ARCH_REGISTRY._obj_map.get(kind)
    names = {v: k for k, v in ARCH_REGISTRY._obj_map.items()}
    opt = {k: v for k, v in network_g.items() if k not in GLMHA_KEYS}
    bases = [names[c] for c in getattr(cls, '__mro__', ())[1:] if c in names]
    if bases:
        opt['type'] = bases[0]
    elif inspect.isclass(cls) and 'attention' in inspect.signature(cls).parameters:
        opt['attention'] = 'csa'
    else:
        raise ValueError(f'network_g type {kind!r} has no CSA network glmha convert knows (it converts Restormer, '
                         f'MST, MST++ and Retinexformer checkpoints into their GLMHA networks); for any other network '
                         f'use glmha swap')
    return opt


def convert_checkpoint(src: str, dst: str, network_g: dict, param_key: str = 'params',
                       overwrite: bool = False) -> List[LayerReport]:
    """Read a CSA checkpoint of ``network_g``'s host (Restormer, MST, MST++, Retinexformer), write
    ``{'params': GLMHA state_dict}`` for ``network_g`` to ``dst``."""
    from basicsr.archs import build_network
    if not osp.isfile(src):
        raise FileNotFoundError(f'input checkpoint {src!r} does not exist')
    if osp.exists(dst) and not overwrite:
        raise FileExistsError(f'{dst!r} exists; choose another --output or pass --overwrite')
    options = parent_options(network_g)
    try:
        parent, child = build_network(dict(options)), build_network(dict(network_g))
    except (TypeError, ValueError) as exc:
        raise ValueError(f'network_g ({network_g.get("type")}) does not build: {exc}') from None
    try:
        load_into(parent, src, param_key, strict=True)
    except CheckpointError as exc:
        raise ValueError(f'{src!r} is not a {options["type"]} (CSA) checkpoint matching network_g: {exc} Check the '
                         f'network options (dim, num_blocks, heads, ...) or --param_key') from None
    reports = convert_network(parent, child, progress=True)
    os.makedirs(osp.dirname(osp.abspath(dst)), exist_ok=True)
    torch.save({'params': child.state_dict()}, dst)
    return reports


def format_report(reports: Sequence[LayerReport]) -> str:
    lines = [f'{"layer":44s} {"C":>4s} {"h":>2s} {"r":>4s} {"K energy":>9s} {"V energy":>9s}']
    for r in reports:
        lines.append(f'{r.name:44s} {r.dim:4d} {r.heads:2d} {r.rank:4d} {r.key_energy:9.4f} {r.value_energy:9.4f}')
    return '\n'.join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    from ..glue.option_files import load_options
    p = argparse.ArgumentParser(description=(
        'Turn a CSA checkpoint (Restormer, MST, MST++, Retinexformer) into a checkpoint of the GLMHA network of an '
        'option file (SVD warm start); then fine-tune with path.pretrain_network_g pointing to the output.'))
    p.add_argument('--input', required=True, help='CSA checkpoint, e.g. deraining.pth (official Restormer) or '
                                                  'net_g_*.pth')
    p.add_argument('--output', required=True, help='where to write the GLMHA checkpoint')
    p.add_argument('-opt', '--opt', default='options/Deraining_GLMHA.yml',
                   help='option YAML whose network_g is the GLMHA network (default: options/Deraining_GLMHA.yml)')
    p.add_argument('--param_key', default='params', help='checkpoint entry to convert (params or params_ema)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing --output')
    args = p.parse_args(argv)
    try:
        network_g = load_options(args.opt).get('network_g')
        if not isinstance(network_g, dict) or 'type' not in network_g:
            raise ValueError(f'{args.opt!r} has no network_g block with a type')
        reports = convert_checkpoint(args.input, args.output, network_g, args.param_key, args.overwrite)
    except (OSError, KeyError, ValueError, UsageError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(format_report(reports))
    print(f'wrote {args.output} ({len(reports)} attention layers initialised by truncated SVD; '
          f'fine-tune with path.pretrain_network_g: {args.output})')
    return 0

