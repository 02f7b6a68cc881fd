"""glmha-plugin: GLMHA attention for Restormer, MST-L, MST++ and Retinexformer as a BasicSR plugin.

Importing this package installs the torchvision compatibility alias (before
basicsr is imported), applies the runtime adaptations in
:mod:`glmha_plugin.glue.compat`, and registers every architecture, dataset, model,
loss and metric of the plugin in basicsr's registries.  :func:`swap_attention`
puts GLMHA into any network with Restormer-style or MST-style attention;
:func:`register_spandrel` lets spandrel (chaiNNer, ComfyUI-style applications)
load GLMHA checkpoints (spandrel is optional and imported only by that call).
"""
from .glue import compat

compat.apply()

from . import archs, data, losses, metrics, models  # noqa: E402  (importing them registers their names)
from .deploy.spandrel import register_spandrel  # noqa: E402  (imports spandrel only when called)
from .swap import SwapError, SwapReport, swap_attention  # noqa: E402
from .version import __version__  # noqa: E402

__all__ = ['__version__', 'compat', 'archs', 'data', 'losses', 'metrics', 'models', 'swap_attention', 'SwapReport',
           'SwapError', 'register_spandrel']
