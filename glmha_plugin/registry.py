"""mmengine registry of the spectral networks (and Retinexformer, built on their U-Net).

``SPECTRAL_MODELS`` is a child of mmengine's root ``MODELS`` with scope ``glmha_plugin``; mmengine imports
``<scope>.registry`` (this module) when it meets the ``glmha_plugin.`` prefix, which is why it lives here::

    from mmengine.registry import MODELS
    MODELS.build(dict(type='glmha_plugin.GLMHAMSTPlusPlus'))
    from glmha_plugin.registry import SPECTRAL_MODELS
    SPECTRAL_MODELS.build(dict(type='MST', dim=28, stage=2, num_blocks=[4, 7, 5]))

The MST / MST++ toolboxes' ``model_generator`` built on it is :mod:`glmha_plugin.glue.mst_toolbox`.
"""
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import Registry

from .archs import GLMHAMST, MST, GLMHAMSTPlusPlus, GLMHARetinexFormer, MST_Plus_Plus, RetinexFormer

SPECTRAL_MODELS = Registry('spectral model', parent=MMENGINE_MODELS, scope='glmha_plugin')
for _cls in (MST, GLMHAMST, MST_Plus_Plus, GLMHAMSTPlusPlus, RetinexFormer, GLMHARetinexFormer):
    SPECTRAL_MODELS.register_module(module=_cls)
