"""Models registered in BasicSR's ``MODEL_REGISTRY`` on import."""
from .cassi_model import CASSIModel
from .spectral_model import SpectralReconModel

__all__ = ['SpectralReconModel', 'CASSIModel']
