"""The compress run's report: ``report.json`` (everything measured), ``report.md`` (tables) and ``report.png``
(ranks per layer; PSNR against the teacher and the targets over the distillation)."""
import json
import os
import os.path as osp
from typing import Dict, List

from .planning import AttentionLayer, psnr_of_mse

CHOICE = ('Ranks chosen to minimise the summed student-vs-teacher output error of the layers (mean squared error '
          'of the network output on {crops} crops of {side}x{side} from the training images, each layer swapped '
          'alone at each candidate rank with the SVD warm start) within the MAC budget, by an exact '
          'multiple-choice knapsack; the attention-map energy is measured and shown, not used. The table "plans '
          'at this budget" measures the whole warm-started network of each alternative on the same crops.')
CHOICE_ENERGY = ('Ranks chosen per layer as the smallest per-head rank whose attention maps keep {energy:g} of '
                 'their singular-value energy on {crops} crops of {side}x{side} from the training images.')


def _layer(entry: dict) -> AttentionLayer:
    keep = ('path', 'kind', 'channels', 'heads', 'csa_macs', 'macs_min', 'macs_slope', 'candidates', 'energy')
    return AttentionLayer(**{k: entry[k] for k in keep})


def _fmt(v, spec='.2f'):
    return '-' if v is None else format(v, spec)


def _refit(out: str):
    """``refit.json`` (``--refit``: the warm start's output projections refit by least squares), or None."""
    path = osp.join(out, 'refit.json')
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def write_report(out: str, args, inp, plan: dict, scores: Dict[str, dict], curve: List[dict], pairs: List[dict],
                 seconds: float) -> dict:
    ranks = plan['plan']['ranks']
    layers = []
    for entry in plan['layers']:
        layer, rank = _layer(entry), ranks[entry['path']]
        err = entry['errors'].get(str(rank))
        layers.append({'path': layer.path, 'kind': layer.kind, 'channels': layer.channels, 'heads': layer.heads,
                       'rank': rank, 'rank_ratio': rank / layer.channels, 'energy_kept': layer.energy_at(rank),
                       'alone_psnr_vs_teacher': None if err is None else psnr_of_mse(err),
                       'macs_before': layer.csa_macs, 'macs_after': layer.macs(rank)})
    has_gt = any(p.get('gt') for p in pairs)
    teacher, warm, student = scores['teacher'], scores['warm_start'], scores['student']
    crops, side = plan['crops']
    choice = (CHOICE.format(crops=crops, side=side) if args.budget is not None
              else CHOICE_ENERGY.format(energy=args.energy, crops=crops, side=side))
    curve = [{'iter': 0, **{k: v for k, v in warm.items()}}] + [
        {k: v for k, v in p.items() if k not in ('dataset', 'images')} for p in curve]
    summary = (f'student {student["psnr_teacher"]:.2f} dB PSNR vs the teacher on {len(pairs)} held-out image(s) '
               f'(warm start {warm["psnr_teacher"]:.2f} dB) at {plan["student_macs"] / plan["teacher_macs"]:.4f} of '
               f'its MACs')
    if has_gt:
        summary += (f'; vs the targets: student {student["psnr"]:.2f} dB, teacher {teacher["psnr"]:.2f} dB '
                    f'({student["psnr"] - teacher["psnr"]:+.2f} dB)')
    report = {
        'summary': summary,
        'network': inp.source.block, 'weights': inp.source.weights, 'param_key': inp.source.param_key,
        'target': {'budget': args.budget} if args.budget is not None else {'energy': args.energy},
        'choice': choice,
        'macs_counter': 'mmengine FlopAnalyzer (glmha_plugin.analysis.complexity.count), as the complexity report',
        'input_shape': plan['input_shape'],
        'macs': {'teacher': plan['teacher_macs'], 'student': plan['student_macs'],
                 'ratio': plan['student_macs'] / plan['teacher_macs']},
        'params': {'teacher': plan['teacher_params'], 'student': plan['student_params'],
                   'ratio': plan['student_params'] / plan['teacher_params']},
        'ranks': ranks, 'layers': layers, 'plans_at_this_budget': plan['compared'],
        'distillation': {'iterations': args.iters, 'lr': args.lr, 'crop': args.crop, 'batch': args.batch,
                         'augment': args.augment,
                         'feature_weight': args.feature_weight, 'targets_used': False},
        'held_out': {'images': len(pairs), 'with_targets': has_gt,
                     'source': ('validation folder' if args.val_lq
                                else f'last {len(pairs)} of --images (not trained on)')},
        'refit': _refit(out),
        'evaluation': {'teacher': teacher, 'warm_start': warm, 'student': student},
        'curve': curve, 'seconds': seconds,
        'metrics': 'PSNR/SSIM by basicsr (RGB, no border crop) on the float outputs clamped to [0, 1], not rounded',
    }
    with open(osp.join(out, 'report.json.tmp'), 'w', encoding='utf-8') as f:
        json.dump(report, f, indent=1)
    os.replace(osp.join(out, 'report.json.tmp'), osp.join(out, 'report.json'))
    with open(osp.join(out, 'report.md'), 'w', encoding='utf-8') as f:
        f.write(markdown(report))
    plot(report, osp.join(out, 'report.png'))
    return report


def markdown(r: dict) -> str:
    shape = 'x'.join(map(str, r['input_shape'][1:]))
    ev = r['evaluation']
    lines = ['# Compressed network', '', r['summary'] + '.', '', r['choice'], '',
             '| | teacher | student | ratio |', '|---|---:|---:|---:|',
             f'| MACs at {shape} | {r["macs"]["teacher"]:,} | {r["macs"]["student"]:,} | {r["macs"]["ratio"]:.4f} |',
             f'| parameters | {r["params"]["teacher"]:,} | {r["params"]["student"]:,} | {r["params"]["ratio"]:.4f} |',
             '', f'Held-out images: {r["held_out"]["images"]} ({r["held_out"]["source"]}). {r["metrics"]}.', '',
             '| network | PSNR vs teacher | SSIM vs teacher | PSNR vs targets | SSIM vs targets |',
             '|---|---:|---:|---:|---:|']
    for name in ('teacher', 'warm_start', 'student'):
        s = ev[name]
        lines.append(f'| {name.replace("_", " ")} | {_fmt(s.get("psnr_teacher"))} | '
                     f'{_fmt(s.get("ssim_teacher"), ".4f")} '
                     f'| {_fmt(s.get("psnr"))} | {_fmt(s.get("ssim"), ".4f")} |')
    lines += ['', '## Ranks per layer', '',
              '| layer | kind | C | heads | rank | ratio | attention energy kept | this layer alone: PSNR vs teacher '
              '(dB, crops) | MACs before | MACs after |',
              '|---|---|---:|---:|---:|---:|---:|---:|---:|---:|']
    for layer in r['layers']:
        lines.append(f'| {layer["path"]} | {layer["kind"]} | {layer["channels"]} | {layer["heads"]} | '
                     f'{layer["rank"]} | {layer["rank_ratio"]:.3f} | {_fmt(layer["energy_kept"], ".4f")} | '
                     f'{_fmt(layer["alone_psnr_vs_teacher"])} | {layer["macs_before"]:,} | {layer["macs_after"]:,} |')
    lines += ['', '## Plans at this budget (warm start, before distillation, on the planning crops)', '',
              '| plan | MACs / teacher | PSNR vs teacher (dB) |', '|---|---:|---:|']
    for c in r['plans_at_this_budget']:
        lines.append(f'| {c["method"]} | {c["macs"] / r["macs"]["teacher"]:.4f} | '
                     f'{c["warm_start_psnr_vs_teacher"]:.2f} |')
    d = r['distillation']
    lines += ['', f'## Distillation ({d["iterations"]} iterations, lr {d["lr"]:g}, crop {d["crop"]}, batch '
              f'{d["batch"]}, no targets)', '', '| iteration | PSNR vs teacher | SSIM vs teacher | PSNR vs targets | '
              'SSIM vs targets |', '|---:|---:|---:|---:|---:|']
    for p in r['curve']:
        lines.append(f'| {p["iter"]} | {_fmt(p.get("psnr_teacher"))} | {_fmt(p.get("ssim_teacher"), ".4f")} | '
                     f'{_fmt(p.get("psnr"))} | {_fmt(p.get("ssim"), ".4f")} |')
    lines += ['', f'Teacher: {r["network"]["type"]} from {r["weights"]} ({r["param_key"]}). MACs: {r["macs_counter"]}. '
              f'{r["seconds"]:.0f} s in all.', '', '![report](report.png)', '']
    return '\n'.join(lines)


def plot(r: dict, path: str) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    names = [layer['path'] for layer in r['layers']]
    x = range(len(names))
    left.bar(x, [layer['rank_ratio'] for layer in r['layers']], color='tab:blue', label='rank / C')
    energy = [layer['energy_kept'] for layer in r['layers']]
    if all(e is not None for e in energy):
        left.plot(x, energy, 'o', color='tab:orange', label='attention energy kept')
    left.set_xticks(list(x))
    left.set_xticklabels(names, rotation=60, ha='right', fontsize=7)
    left.set_ylim(0, 1.05)
    left.set_title(f'ranks per layer ({r["macs"]["ratio"]:.3f} of the MACs)', fontsize=10)
    left.legend(fontsize=8)
    iters = [p['iter'] for p in r['curve']]
    right.plot(iters, [p.get('psnr_teacher') for p in r['curve']], 'o-', label='student vs teacher')
    if any(p.get('psnr') is not None for p in r['curve']):
        right.plot(iters, [p.get('psnr') for p in r['curve']], 's-', label='student vs targets')
        right.axhline(r['evaluation']['teacher']['psnr'], color='gray', ls='--', label='teacher vs targets')
    right.set_xlabel('distillation iteration')
    right.set_ylabel('PSNR (dB), held-out images')
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    right.set_title(r['summary'][:90], fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
