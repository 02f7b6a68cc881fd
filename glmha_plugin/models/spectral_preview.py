"""PNG preview of a reconstructed spectral cube (a ``.mat`` file cannot be looked at directly)."""
import os
import os.path as osp
from typing import Optional

import numpy as np


def save_spectral_preview(path: str, pred: np.ndarray, gt: Optional[np.ndarray] = None, title: str = '') -> None:
    """Three bands (first, middle, last) of ``pred`` (H x W x C) and, with ``gt``, of the ground truth, the
    mean absolute error over bands, and the image-mean spectra; values shown in [0, 1]."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    bands = sorted({0, pred.shape[-1] // 2, pred.shape[-1] - 1})
    rows = [('output', pred)] + ([('ground truth', gt)] if gt is not None else [])
    fig, axes = plt.subplots(len(rows), len(bands) + 1, figsize=(3 * (len(bands) + 1), 3 * len(rows)), squeeze=False)
    for r, (label, cube) in enumerate(rows):
        for c, band in enumerate(bands):
            axes[r, c].imshow(np.clip(cube[..., band], 0, 1), cmap='gray', vmin=0, vmax=1)
            axes[r, c].set_title(f'{label}, band {band + 1}', fontsize=9)
            axes[r, c].axis('off')
    ax = axes[0, -1]
    ax.plot(np.arange(1, pred.shape[-1] + 1), pred.reshape(-1, pred.shape[-1]).mean(0), label='output')
    if gt is not None:
        ax.plot(np.arange(1, gt.shape[-1] + 1), gt.reshape(-1, gt.shape[-1]).mean(0), '--', label='ground truth')
        err = axes[1, -1].imshow(np.abs(pred - gt).mean(-1), cmap='magma')
        axes[1, -1].set_title('mean |error| over bands', fontsize=9)
        axes[1, -1].axis('off')
        fig.colorbar(err, ax=axes[1, -1], fraction=0.046)
    ax.set_xlabel('band')
    ax.set_title('mean spectrum', fontsize=9)
    ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if osp.dirname(path):
        os.makedirs(osp.dirname(path), exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
