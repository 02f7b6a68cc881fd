"""The complexity report: parameters and MACs of each host, CSA vs GLMHA variants, as Markdown, CSV and PNG.

:func:`main` is ``glmha complexity``.
"""
import argparse
import os
import os.path as osp
import sys
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Sequence

import torch
from tqdm import tqdm

from .complexity import CONVENTION, NORM_KINDS, count, describe_ops
from .hosts import HOSTS, HostSpec, Size, attention_variants, get_host
from .tables import write_csv


@dataclass
class Row:
    """One measured (host, input size, variant)."""
    host: str
    size: str          # 'CxHxW'
    variant: str
    params: int
    macs: int
    attn_macs: int     # the q k^T and A v products (aten::matmul) within ``macs``
    other_ops: int
    norm_ops: int      # the layer / group / instance norm ops within ``other_ops``
    unclassified: str  # op kinds the counter had no rule for ('' when none)


def size_label(size: Size) -> str:
    return 'x'.join(str(s) for s in size)


def parse_size(text: str) -> Size:
    """``'3x256x256'`` -> (3, 256, 256), with a clear error otherwise."""
    try:
        c, h, w = (int(v) for v in text.lower().split('x'))
    except ValueError:
        raise ValueError(f'input size {text!r} must look like CxHxW, e.g. 3x256x256') from None
    return c, h, w


def parse_host_sizes(entries: Optional[Sequence[str]], hosts: Sequence[HostSpec], option: str) -> Dict[str, List[Size]]:
    """``['HOST=CxHxW', ...]`` (a command-line option) -> ``{host: [sizes in the order given]}``."""
    names = [h.name for h in hosts]
    sizes: Dict[str, List[Size]] = {}
    for entry in entries or []:
        name, sep, size = entry.partition('=')
        if not sep or name not in names:
            raise ValueError(f'{option} entry {entry!r} must be HOST=CxHxW with HOST one of {names}')
        sizes.setdefault(name, []).append(parse_size(size))
    return sizes


def measure(hosts: Sequence[HostSpec], variants: Dict[str, Dict], sizes: Optional[Dict[str, List[Size]]] = None,
            overrides: Optional[Dict] = None, op_kinds: Optional[set] = None) -> List[Row]:
    """Count every host x input size x variant (batch 1, eval mode, CPU).

    ``sizes`` maps host name -> sizes (default: the host's paper sizes);
    ``overrides`` are constructor options applied to every model (e.g. a
    host's ``tiny``); the op kinds seen are added to ``op_kinds`` when given.
    """
    jobs = [(h, s, v) for h in hosts for s in (sizes or {}).get(h.name, h.paper_sizes) for v in variants]
    rows = []
    for host, size, label in tqdm(jobs, desc='counting', unit='model'):
        model = host.build(**variants[label], **(overrides or {})).eval()
        c = count(model, host.make_inputs(size, 1, torch.device('cpu')))
        attn = c.by_op.get('aten::matmul', ('mac', 0, 0))[2]
        norms = sum(c.by_op.get(kind, ('other', 0, 0))[2] for kind in NORM_KINDS)
        rows.append(Row(host.name, size_label(size), label, c.params, int(c.macs), int(attn), int(c.other_ops),
                        int(norms), ', '.join(sorted(c.unclassified))))
        if op_kinds is not None:
            op_kinds.update(c.by_op)
    return rows


def _upstream_cell(host: HostSpec, row: Row) -> str:
    """Upstream's figures for this row's size, and ours converted to upstream's convention where it differs."""
    cells = []
    for f in host.upstream:
        if size_label(f.size) != row.size:
            continue
        notes = [f'G = 2^30: {f.macs() / 1e9:.2f}e9'] if f.giga != 1e9 else []
        if f.counts_norms:
            notes.append('norm ops included')
        if notes:
            ours = (row.macs + (row.norm_ops if f.counts_norms else 0)) / f.giga
            notes.append(f'ours counted so: {ours:.2f}G')
        cells.append(f'{f.params:g}M / {f.gmacs:g}G' + (f' ({"; ".join(notes)})' if notes else ''))
    return '; '.join(cells) or '-'


def to_markdown(rows: Iterable[Row], hosts: Sequence[HostSpec], op_kinds: Iterable[str] = (),
                show_upstream: bool = True) -> str:
    """A Markdown table with ratios to the CSA row of the same host and size, then the counting notes.

    ``show_upstream=False`` leaves the upstream column empty (for models that
    are not the papers' configurations).
    """
    rows = list(rows)
    by_name = {h.name: h for h in hosts}
    base = {(r.host, r.size): r for r in rows if r.variant == 'CSA'}
    lines = ['| host | input | attention | params | vs CSA | GMACs | vs CSA | of which q·kᵀ, A·v | other Gops | '
             'upstream params / GMACs |', '|---|---|---|---:|---:|---:|---:|---:|---:|---|']
    for r in rows:
        b = base.get((r.host, r.size))
        pr = f'{r.params / b.params:.3f}' if b else '-'
        mr = f'{r.macs / b.macs:.3f}' if b else '-'
        up = _upstream_cell(by_name[r.host], r) if r.variant == 'CSA' and show_upstream else ''
        flag = f' (UNCLASSIFIED: {r.unclassified})' if r.unclassified else ''
        lines.append(f'| {r.host} | {r.size} | {r.variant}{flag} | {r.params:,} | {pr} | {r.macs / 1e9:.2f} | {mr} | '
                     f'{r.attn_macs / 1e9:.2f} | {r.other_ops / 1e9:.2f} | {up} |')
    lines += ['', f'Convention: {CONVENTION}', '']
    lines += [f'- {n}' for n in describe_ops(op_kinds, {})]
    sources = [f'- {h.name} upstream: {f.source}' for h in hosts for f in h.upstream] if show_upstream else []
    if sources:
        lines += [''] + sources
    return '\n'.join(lines) + '\n'


def plot(rows: Iterable[Row], path: str) -> None:
    """Bar charts of GMACs and parameters per variant, one row of panels per host and input size."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = list(rows)
    groups = list(dict.fromkeys((r.host, r.size) for r in rows))
    fig, axes = plt.subplots(len(groups), 2, figsize=(12, 3.6 * len(groups)), squeeze=False)
    for (host, size), (ax_m, ax_p) in zip(groups, axes, strict=True):
        sel = [r for r in rows if (r.host, r.size) == (host, size)]
        labels = [r.variant.replace('GLMHA ', '').replace(' calibration', '\n+calib').replace(' none', '\nno guid.')
                  for r in sel]
        colors = ['tab:gray' if r.variant == 'CSA' else 'tab:blue' for r in sel]
        for ax, values, title in ((ax_m, [r.macs / 1e9 for r in sel], 'GMACs'),
                                  (ax_p, [r.params / 1e6 for r in sel], 'parameters (M)')):
            bars = ax.bar(range(len(sel)), values, color=colors)
            ax.set_xticks(range(len(sel)), labels, fontsize=7)
            ax.set_title(f'{host} {size}: {title}', fontsize=10)
            ax.set_ylim(0, max(values) * 1.15)
            for bar, v in zip(bars, values, strict=True):
                ax.text(bar.get_x() + bar.get_width() / 2, v, f'{v:.2f}', ha='center', va='bottom', fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description='Parameters and MACs of each host with CSA vs GLMHA, as Markdown + CSV + PNG.')
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
        sizes = parse_host_sizes(args.sizes, hosts, '--sizes')
    except ValueError as exc:
        parser.error(str(exc))

    variants = attention_variants(args.ratios, args.guidance)
    op_kinds = set()
    rows = []
    for host in hosts:
        rows += measure([host], variants, sizes, overrides=host.tiny if args.tiny else None, op_kinds=op_kinds)
    md = to_markdown(rows, hosts, op_kinds, show_upstream=not args.tiny)
    os.makedirs(args.out_dir, exist_ok=True)
    paths = {ext: osp.join(args.out_dir, f'complexity.{ext}') for ext in ('md', 'csv', 'png')}
    with open(paths['md'], 'w', encoding='utf-8') as f:
        f.write(md)
    write_csv(rows, paths['csv'])
    plot(rows, paths['png'])
    print(md)
    print('written: ' + ', '.join(paths.values()))
    unclassified = sorted({r.unclassified for r in rows if r.unclassified})
    if unclassified:
        print(f'WARNING: op kinds without a counting rule (not counted): {unclassified}', file=sys.stderr)
        return 1
    return 0
