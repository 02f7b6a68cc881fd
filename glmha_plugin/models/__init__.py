"""Models registered in BasicSR's ``MODEL_REGISTRY`` on import, and the recipe parts they use."""
from .cassi_model import CASSIModel
from .distill_model import DistillModel
from .image_restoration_model import ImageCleanModel
from .lr_scheduler import CosineAnnealingRestartCyclicLR
from .mixing_augment import MixingAugment
from .progressive import ProgressiveSchedule, Stage
from .spectral_model import SpectralReconModel

__all__ = ['ImageCleanModel', 'CosineAnnealingRestartCyclicLR', 'MixingAugment', 'ProgressiveSchedule', 'Stage',
           'SpectralReconModel', 'CASSIModel', 'DistillModel']
