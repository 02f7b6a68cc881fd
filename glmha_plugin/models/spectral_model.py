"""Model for RGB -> hyperspectral reconstruction (MST++) under BasicSR's pipelines.

BasicSR's ``SRModel`` trains any ``lq -> gt`` network, but its validation
turns outputs into 8-bit 1- or 3-channel images (``tensor2img``), which
fails for 31 bands, and writes PNGs.  :class:`SpectralReconModel` keeps
SRModel's set-up (network, loading, EMA, optimizers, schedulers, saving) and
replaces:

* the training step and ``test`` of :class:`~.training.GPUTrainingMixin`
  (mixed precision, gradient accumulation, ...; ``docs/gpu_training.md``)
  with the pixel loss (``train.pixel_opt``, e.g. ``MRAELoss``) on the
  network output; perceptual losses do not apply to spectral cubes and are
  refused; the forward pass goes through :meth:`net_forward` (a subclass may
  feed more inputs, see :class:`~glmha_plugin.models.cassi_model.CASSIModel`);
* ``nondist_validation``: metrics on the float cubes (``val.metrics`` with
  this package's spectral metrics) and, with ``save_img``, the output as
  upstream's evaluation reads it: one MATLAB v7.3 file per image, variable
  ``cube`` (H x W x C, clamped to [0, 1]), named after the input image
  (``results/<name>/visualization/<dataset>/<image>.mat`` in a test run,
  ``experiments/<name>/visualization/<image>/<image>_<iter>.mat`` during training),
  and a PNG preview beside it (bands, error map, mean spectra).

Metric options may carry ``better: lower`` (MRAE, RMSE, SAM) so the best
value is tracked the right way round.  After the metric lines the log names
the evaluation each metric follows (``metrics.spectral_metrics.PROTOCOLS``):
for CASSI, MST's Python metrics and its MATLAB script give different figures.
"""
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
import torch
from basicsr.metrics import calculate_metric
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from tqdm import tqdm

from ..data.matfile import write_mat_v73
from ..metrics.spectral_metrics import PROTOCOLS
from .spectral_preview import save_spectral_preview
from .training import GPUTrainingMixin


@MODEL_REGISTRY.register()
class SpectralReconModel(GPUTrainingMixin, SRModel):
    """SRModel for spectral cubes (module docstring). Batches: ``lq`` B x 3 x H x W, ``gt`` B x C x H x W."""

    def init_training_settings(self):
        if self.opt['train'].get('perceptual_opt'):
            raise ValueError(f'{type(self).__name__} trains with train.pixel_opt only (a perceptual loss needs '
                             f'RGB images); remove train.perceptual_opt')
        super().init_training_settings()

    # ------------------------------------------------------------------
    # validation / test

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        dataset_name = dataloader.dataset.opt['name']
        metrics = self.opt['val'].get('metrics') or {}
        if metrics:
            if not hasattr(self, 'metric_results'):
                self.metric_results = {name: 0 for name in metrics}
            self._initialize_best_metric_results(dataset_name)
        per_image: Dict[str, List[float]] = {name: [] for name in metrics}
        pbar = tqdm(total=len(dataloader), unit='image') if self.opt['val'].get('pbar', False) else None

        for val_data in dataloader:
            path = val_data.get('lq_path', val_data.get('gt_path'))[0]
            img_name = osp.splitext(osp.basename(path))[0]
            self.feed_data(val_data)
            self.test()
            pred = self.output[0].float().cpu().numpy().transpose(1, 2, 0)        # H x W x C
            gt = self.gt[0].float().cpu().numpy().transpose(1, 2, 0) if hasattr(self, 'gt') else None
            self._release_batch()
            for name, metric_opt in metrics.items():
                if gt is None:
                    raise ValueError(f'dataset {dataset_name!r} has no ground truth for metric {name!r}')
                per_image[name].append(calculate_metric(dict(img=pred, img2=gt), metric_opt))
            if save_img:
                self.save_prediction(img_name, pred, gt, dataset_name, current_iter)
            if pbar is not None:
                pbar.update(1)
                pbar.set_description(f'Test {img_name}')
        if pbar is not None:
            pbar.close()
        if save_img:
            self.finish_saving(dataset_name, current_iter, per_image)
        if metrics:
            for name, values in per_image.items():
                self.metric_results[name] = float(np.mean(values)) if values else float('nan')
                self._update_best_metric_result(dataset_name, name, self.metric_results[name], current_iter)
            self._log_validation_metric_values(current_iter, dataset_name, tb_logger)

    def _log_validation_metric_values(self, current_iter, dataset_name, tb_logger):
        """basicsr's lines, then the evaluation protocol each metric follows (MST's Python metrics and its MATLAB
        script's give different figures for the same cubes)."""
        super()._log_validation_metric_values(current_iter, dataset_name, tb_logger)
        by_protocol: Dict[str, List[str]] = {}
        for name, metric_opt in (self.opt['val'].get('metrics') or {}).items():
            if metric_opt.get('type') in PROTOCOLS:
                by_protocol.setdefault(PROTOCOLS[metric_opt['type']], []).append(name)
        if by_protocol:
            get_root_logger().info(f'Protocols of the {dataset_name} metrics:\n' + '\n'.join(
                f'\t {", ".join(names)}: {protocol}' for protocol, names in by_protocol.items()))

    def _release_batch(self):
        for attr in ('lq', 'gt', 'output'):
            if hasattr(self, attr):
                delattr(self, attr)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def result_path(self, dataset_name: str, img_name: str, current_iter, ext: str = '.mat') -> str:
        """Where a result file goes (see the module docstring)."""
        vis = self.opt['path']['visualization']
        if self.opt['is_train']:
            return osp.join(vis, img_name, f'{img_name}_{current_iter}{ext}')
        return osp.join(vis, dataset_name, f'{img_name}{ext}')

    def save_prediction(self, img_name: str, pred: np.ndarray, gt: Optional[np.ndarray], dataset_name: str,
                        current_iter) -> None:
        """One v7.3 ``.mat`` per image, variable ``cube`` (H x W x C, clamped to [0, 1]), as MST++'s test.py,
        and its PNG preview."""
        cube = np.clip(pred, 0, 1).astype(np.float32)
        write_mat_v73(self.result_path(dataset_name, img_name, current_iter), {'cube': cube})
        save_spectral_preview(self.result_path(dataset_name, img_name, current_iter, '.png'), cube, gt,
                              self.preview_title(img_name, current_iter))

    def preview_title(self, img_name: str, current_iter) -> str:
        """Title of a preview: image, experiment and, in training, the iteration."""
        when = f', iter {current_iter}' if self.opt['is_train'] else ''
        return f'{img_name} ({self.opt["name"]}{when})'

    def finish_saving(self, dataset_name: str, current_iter, per_image: Dict[str, List[float]]) -> None:
        """Called once after the last image when saving (nothing to do for per-image files)."""
