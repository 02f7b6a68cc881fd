"""``glmha convert``: a trained CSA Restormer checkpoint made into a GLMHARestormer starting point (the SVD warm
start of :mod:`glmha_plugin.swap.warm_start`, file in, file out); ``glmha swap`` does the same for any network."""
import argparse
import os
import os.path as osp
import sys
from typing import List, Optional, Sequence

import torch

from ..errors import CheckpointError
from ..glue.checkpoints import load_into
from .warm_start import LayerReport, convert_network


def parent_options(network_g: dict) -> dict:
    """The CSA ``Restormer`` options matching a GLMHA ``network_g`` (GLMHA's own keys dropped)."""
    glmha_keys = {'attention', 'rank', 'rank_ratio', 'guidance', 'gamma'}
    opt = {k: v for k, v in network_g.items() if k not in glmha_keys}
    opt['type'] = 'Restormer'
    return opt


def convert_checkpoint(src: str, dst: str, network_g: dict, param_key: str = 'params',
                       overwrite: bool = False) -> List[LayerReport]:
    """Read a CSA checkpoint, write ``{'params': GLMHA state_dict}`` for ``network_g`` to ``dst``."""
    from basicsr.archs import build_network
    if not osp.isfile(src):
        raise FileNotFoundError(f'input checkpoint {src!r} does not exist')
    if osp.exists(dst) and not overwrite:
        raise FileExistsError(f'{dst!r} exists; choose another --output or pass --overwrite')
    parent = build_network(parent_options(network_g))
    try:
        load_into(parent, src, param_key, strict=True)
    except CheckpointError as exc:
        raise ValueError(f'{src!r} is not a Restormer (CSA) checkpoint matching network_g: {exc} Check dim, '
                         f'num_blocks, heads, ... or --param_key') from None
    child = build_network(dict(network_g))
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
    import yaml
    p = argparse.ArgumentParser(description=(
        'Turn a Restormer (CSA) checkpoint into a GLMHARestormer checkpoint (SVD warm start); '
        'then fine-tune with path.pretrain_network_g pointing to the output.'))
    p.add_argument('--input', required=True, help='Restormer checkpoint, e.g. deraining.pth (official) or net_g_*.pth')
    p.add_argument('--output', required=True, help='where to write the GLMHARestormer checkpoint')
    p.add_argument('-opt', '--opt', default='options/Deraining_GLMHA.yml',
                   help='option YAML whose network_g is the GLMHA network (default: options/Deraining_GLMHA.yml)')
    p.add_argument('--param_key', default='params', help='checkpoint entry to convert (params or params_ema)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing --output')
    args = p.parse_args(argv)
    try:
        with open(args.opt, encoding='utf-8') as f:
            network_g = (yaml.safe_load(f) or {}).get('network_g')
        if not network_g:
            raise ValueError(f'{args.opt!r} has no network_g block')
        reports = convert_checkpoint(args.input, args.output, network_g, args.param_key, args.overwrite)
    except (OSError, KeyError, ValueError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(format_report(reports))
    print(f'wrote {args.output} ({len(reports)} attention layers initialised by truncated SVD; '
          f'fine-tune with path.pretrain_network_g: {args.output})')
    return 0
