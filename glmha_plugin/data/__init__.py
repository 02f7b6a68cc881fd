"""Datasets registered in BasicSR's ``DATASET_REGISTRY`` on import, and their file formats."""
from .arad_dataset import ARAD1KDataset
from .cassi_dataset import CASSIDataset

__all__ = ['ARAD1KDataset', 'CASSIDataset']
