"""Training recipe parts; importing registers ``ImageCleanModel`` in basicsr's ``MODEL_REGISTRY``."""
from .image_restoration_model import ImageCleanModel
from .lr_scheduler import CosineAnnealingRestartCyclicLR
from .mixing_augment import MixingAugment
from .progressive import ProgressiveSchedule, Stage

__all__ = ['ImageCleanModel', 'CosineAnnealingRestartCyclicLR', 'MixingAugment', 'ProgressiveSchedule', 'Stage']
