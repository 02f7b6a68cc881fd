"""The MST and MST++ toolboxes' ``model_generator``, served by this package.

``model_generator(method, pretrained_model_path=None)`` is a drop-in for the
function of the same name in the MST and MST++ toolboxes'
``architecture/__init__.py``: upstream's method names build this package's
CSA networks (identical state_dicts), the ``glmha_`` names their GLMHA
variants, and upstream checkpoint formats load strictly.  Models are
returned on the CPU (upstream's scripts call ``.cuda()`` on the result).
The import hook (:mod:`glmha_plugin_autoload`) adds the ``glmha_`` names to
an unmodified toolbox's own ``model_generator``.  The networks come from the
mmengine registry :data:`glmha_plugin.registry.SPECTRAL_MODELS`.
"""
from typing import Dict, Optional, Tuple

from torch import nn

from glmha_plugin_common import TOOLBOX_PREFIX as GLMHA_PREFIX

from ..errors import CheckpointError, did_you_mean
from ..registry import SPECTRAL_MODELS
from .checkpoints import load_into

_UPSTREAM: Dict[str, Tuple[str, dict]] = {
    # MST toolbox (CASSI simulation, 28 bands)
    'mst_s': ('MST', dict(dim=28, stage=2, num_blocks=[2, 2, 2])),
    'mst_m': ('MST', dict(dim=28, stage=2, num_blocks=[2, 4, 4])),
    'mst_l': ('MST', dict(dim=28, stage=2, num_blocks=[4, 7, 5])),
    # MST++ toolbox (RGB -> 31 bands)
    'mst_plus_plus': ('MST_Plus_Plus', dict(in_channels=3, out_channels=31, n_feat=31, stage=3)),
}
_GLMHA_TYPES = {'MST': 'GLMHAMST', 'MST_Plus_Plus': 'GLMHAMSTPlusPlus'}
# method name -> (SPECTRAL_MODELS type, constructor arguments)
METHODS: Dict[str, Tuple[str, dict]] = dict(_UPSTREAM)
METHODS.update({GLMHA_PREFIX + name: (_GLMHA_TYPES[t], kw) for name, (t, kw) in _UPSTREAM.items()})


def model_generator(method: str, pretrained_model_path: Optional[str] = None) -> nn.Module:
    """Build the network upstream's toolboxes call ``method``, optionally with weights (strict)."""
    if method not in METHODS:
        raise ValueError(f'unknown method {method!r}.{did_you_mean(method, METHODS)} Valid methods: '
                         f'{", ".join(METHODS)}')
    type_name, kwargs = METHODS[method]
    model = SPECTRAL_MODELS.build(dict(type=type_name, **kwargs))
    if pretrained_model_path is not None:
        # MST++ {'state_dict': ...}, basicsr {'params': ...} or a plain state_dict (MST); weights_only
        # unless GLMHA_ALLOW_PICKLE=1 (MST's real-data checkpoints are whole-model pickles)
        try:
            load_into(model, pretrained_model_path, strict=True)
        except CheckpointError as exc:
            raise CheckpointError(f'method {method!r} ({type_name}): {exc}') from None
    return model
