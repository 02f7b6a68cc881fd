"""Restormer's recipe in tests: the closed-form learning rate, a tiny ImageCleanModel option dict, and the
comparison of a YAML with a published recipe."""
import numpy as np

from helpers.common import TINY_RESTORMER

TINY_NET = dict(type='GLMHARestormer', **TINY_RESTORMER, rank_ratio=0.5)


def closed_form(step, base, periods, weights, etas):
    """lr at scheduler step ``step`` (numpy): cycle k = first with step <= cumulative period (right-closed)."""
    ends = np.cumsum(periods)
    k = np.minimum(np.searchsorted(ends, step, side='left'), len(periods) - 1)
    start = ends[k] - np.asarray(periods)[k]
    eta, w = np.asarray(etas)[k], np.asarray(weights)[k]
    return eta + w * (base - eta) * 0.5 * (1 + np.cos(np.pi * (step - start) / np.asarray(periods)[k]))


def model_opt(tmp_path, grad_clip=True, mixup=False, progressive=True):
    train_ds = dict(name='t', type='Dataset_PairedImage', phase='train', gt_size=32, batch_size_per_gpu=4)
    if progressive:
        train_ds.update(mini_batch_sizes=[4, 2], iters=[2, 2], gt_sizes=[16, 32])
    paths = {k: str(tmp_path / k) for k in ('models', 'training_states', 'visualization', 'log')}
    return dict(name='m', model_type='ImageCleanModel', scale=1, num_gpu=0, is_train=True, dist=False, rank=0,
                world_size=1, datasets={'train': train_ds}, network_g=dict(TINY_NET), path=dict(paths),
                train=dict(optim_g=dict(type='AdamW', lr=3e-4, weight_decay=1e-4, betas=[0.9, 0.999]),
                           scheduler=dict(type='CosineAnnealingRestartCyclicLR', periods=[2, 4], restart_weights=[1, 1],
                                          eta_mins=[3e-4, 1e-6]),
                           total_iter=6, warmup_iter=-1, use_grad_clip=grad_clip,
                           mixing_augs=dict(mixup=mixup, mixup_beta=1.2, use_identity=True),
                           pixel_opt=dict(type='L1Loss', loss_weight=1, reduction='mean')),
                val=dict(window_size=8, save_img=False,
                         metrics={'psnr': dict(type='calculate_psnr_matlab', crop_border=0, test_y_channel=True)}))


def mismatches(expected, actual, where=''):
    """Paths where ``actual`` lacks or differs from a value of ``expected`` (numbers compared as floats)."""
    out = []
    for key, value in expected.items():
        path = f'{where}.{key}' if where else key
        if key not in actual:
            out.append(f'{path}: missing')
        elif isinstance(value, dict):
            out += mismatches(value, actual[key], path)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            if not isinstance(actual[key], (int, float)) or float(actual[key]) != float(value):
                out.append(f'{path}: {actual[key]!r} != {value!r}')
        elif actual[key] != value:
            out.append(f'{path}: {actual[key]!r} != {value!r}')
    return out
