"""The bundled demo: derain real photos with a tiny GLMHA-Restormer, end to end.

``python -m glmha_plugin.demo [--workdir demo_run]`` (or ``bash tools/demo.sh``):

1. builds a small paired deraining set in Restormer's folder layout from the
   colour photos scikit-image ships, with synthetic rain streaks
   (:func:`glmha_plugin.demo_data.make_rain_pairs`);
2. trains ``options/tiny/Demo_Deraining_GLMHA.yml`` through basicsr's
   ``train_pipeline`` (``glmha-train``), with basicsr's progress log;
3. tests the final weights through ``test_pipeline`` (``glmha-test``);
4. prints input-vs-output PSNR/SSIM per image and writes a side-by-side PNG
   (rainy input | GLMHA output | ground truth).

Everything is written under the work directory; a second run reuses the data
and resumes training from the last checkpoint (``--auto_resume``).
"""
import argparse
import os
import os.path as osp
import shutil
import subprocess
import sys

import numpy as np

# The data, its layout and reading back the results live in demo_data (also used by the analysis tools);
# they stay importable from here.
from .demo_data import (DATA_DIR, DEMO_TEST_OPT, DEMO_TRAIN_OPT, ROOT, TEST_PHOTOS, TEST_SET,  # noqa: F401
                        TRAIN_PHOTOS, add_rain, make_rain_pairs, result_images, score)


def _run(cmd, cwd):
    print('$', ' '.join(cmd), flush=True)
    subprocess.run(cmd, cwd=cwd, check=True)


def evaluate(workdir: str, test_name: str, out_png: str) -> list:
    """PSNR/SSIM of rainy input and model output against the target; side-by-side PNG. Returns table rows."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    images = list(result_images(workdir, test_name))
    rows = []
    fig, axes = plt.subplots(len(images), 3, figsize=(10, 3.3 * len(images)), squeeze=False)
    for i, (name, lq, pred, gt) in enumerate(images):
        (p_in, s_in), (p_out, s_out) = score(lq, gt), score(pred, gt)
        rows.append((name, p_in, s_in, p_out, s_out))
        for ax, img, title in zip(axes[i], (lq, pred, gt), (f'rainy input {p_in:.2f} dB',
                                                              f'GLMHA-Restormer {p_out:.2f} dB', 'ground truth')):
            ax.imshow(img[..., ::-1])
            ax.set_title(f'{name}: {title}', fontsize=9)
            ax.axis('off')
    fig.tight_layout()
    fig.savefig(out_png, dpi=110)
    plt.close(fig)
    return rows


def print_table(rows):
    print(f'\n{"image":<12} {"PSNR in":>8} {"SSIM in":>8} {"PSNR out":>9} {"SSIM out":>9}')
    for name, p_in, s_in, p_out, s_out in rows:
        print(f'{name:<12} {p_in:8.2f} {s_in:8.4f} {p_out:9.2f} {s_out:9.4f}')
    mean = np.mean([r[1:] for r in rows], axis=0)
    print(f'{"mean":<12} {mean[0]:8.2f} {mean[1]:8.4f} {mean[2]:9.2f} {mean[3]:9.4f}')
    print(f'gain: {mean[2] - mean[0]:+.2f} dB PSNR, {mean[3] - mean[1]:+.4f} SSIM')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--workdir', default='demo_run', help='where data, experiments/ and results/ go')
    parser.add_argument('--iters', type=int, default=None, help='override total_iter of the demo YAML')
    parser.add_argument('--fresh', action='store_true', help='delete the work directory first')
    args = parser.parse_args(argv)

    workdir = osp.abspath(args.workdir)
    if args.fresh and osp.isdir(workdir):
        shutil.rmtree(workdir)
    os.makedirs(workdir, exist_ok=True)
    if not osp.isdir(osp.join(workdir, DATA_DIR, 'test', 'target')):
        print(f'[demo] building the rain dataset under {osp.join(workdir, DATA_DIR)}', flush=True)
        make_rain_pairs(osp.join(workdir, DATA_DIR))
    train_opt, test_opt = osp.join(ROOT, DEMO_TRAIN_OPT), osp.join(ROOT, DEMO_TEST_OPT)
    force = ['--force_yml', f'train:total_iter={args.iters}'] if args.iters else []

    print('[demo] training the tiny GLMHA-Restormer (basicsr train_pipeline)', flush=True)
    _run([sys.executable, '-m', 'glmha_plugin.train', '-opt', train_opt, '--auto_resume'] + force, workdir)
    import yaml
    with open(train_opt, encoding='utf-8') as f:
        train_name = yaml.safe_load(f)['name']
    weights = osp.join('experiments', train_name, 'models', 'net_g_latest.pth')
    print('[demo] testing (basicsr test_pipeline)', flush=True)
    _run([sys.executable, '-m', 'glmha_plugin.test', '-opt', test_opt, '--force_yml',
          f'path:pretrain_network_g={weights}'], workdir)
    with open(test_opt, encoding='utf-8') as f:
        test_name = yaml.safe_load(f)['name']
    png = osp.join(workdir, 'demo_side_by_side.png')
    rows = evaluate(workdir, test_name, png)
    print_table(rows)
    print(f'[demo] side-by-side comparison: {png}')


if __name__ == '__main__':
    main()
