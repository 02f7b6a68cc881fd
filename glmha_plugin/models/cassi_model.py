"""Model for CASSI snapshot reconstruction (MST) under BasicSR's pipelines.

Batches carry the ground-truth cubes and mask crops
(:class:`~glmha_plugin.data.cassi_dataset.CASSIDataset`); ``feed_data``
simulates the measurement on the model's device and the network is called
as upstream's MST: ``net(H, Phi)`` (:mod:`glmha_plugin.data.cassi_simulation`).
The dispersion step is the network's ``dispersion_step`` option (2 when the
network has none), so the simulation and the network always agree.

With ``save_img`` the test/validation writes what MST's MATLAB evaluation
(``Quality_Metrics/Cal_quality_assessment.m``) loads: one
``Test_result.mat`` per dataset (``scipy.io`` format) with ``truth`` and
``pred``, N x H x W x C float32 in the dataset's (sorted) scene order, plus
``<metric>_list`` (N values) for every configured metric (``psnr_list``,
``ssim_list`` as upstream's training script when the metrics are named so).
It goes to ``results/<name>/visualization/<dataset>/Test_result.mat``
(training: ``.../visualization/<dataset>/Test_result_<iter>.mat``), with a
PNG preview per scene (``<scene>.png``; training: ``<scene>_<iter>.png``).
"""
import os
import os.path as osp
from typing import Dict, List, Optional

import numpy as np
from basicsr.utils.registry import MODEL_REGISTRY

from ..data.cassi_simulation import simulate
from .spectral_model import SpectralReconModel
from .spectral_preview import save_spectral_preview


@MODEL_REGISTRY.register()
class CASSIModel(SpectralReconModel):
    """Spectral model whose inputs are simulated from ``gt`` and ``mask`` (module docstring)."""

    input_attrs = ('lq', 'phi')
    micro_batch_attrs = ('lq', 'gt', 'phi')

    def __init__(self, opt: dict):
        self.dispersion_step = int(opt['network_g'].get('dispersion_step', 2))
        self._pending: List[tuple] = []
        super().__init__(opt)

    def feed_data(self, data: dict):
        self.gt = data['gt'].to(self.device)
        self.lq, self.phi = simulate(self.gt, data['mask'].to(self.device), self.dispersion_step)

    def net_forward(self, net):
        return net(self.lq, self.phi)

    def _release_batch(self):
        if hasattr(self, 'phi'):
            del self.phi
        super()._release_batch()

    def save_prediction(self, img_name: str, pred: np.ndarray, gt: Optional[np.ndarray], dataset_name: str,
                        current_iter) -> None:
        self._pending.append((pred.astype(np.float32), gt.astype(np.float32)))
        suffix = '' if not self.opt['is_train'] else f'_{current_iter}'
        save_spectral_preview(osp.join(self.opt['path']['visualization'], dataset_name, f'{img_name}{suffix}.png'),
                              pred, gt, self.preview_title(img_name, current_iter))

    def finish_saving(self, dataset_name: str, current_iter, per_image: Dict[str, List[float]]) -> None:
        import scipy.io
        name = 'Test_result' if not self.opt['is_train'] else f'Test_result_{current_iter}'
        path = osp.join(self.opt['path']['visualization'], dataset_name, f'{name}.mat')
        os.makedirs(osp.dirname(path), exist_ok=True)
        content = {'truth': np.stack([t for _, t in self._pending]), 'pred': np.stack([p for p, _ in self._pending])}
        content.update({f'{metric}_list': np.asarray(values, dtype=np.float64) for metric, values in per_image.items()})
        scipy.io.savemat(path, content)
        self._pending = []
