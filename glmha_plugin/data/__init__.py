"""Datasets registered in BasicSR's ``DATASET_REGISTRY`` on import, and their helpers."""
from .arad_dataset import ARAD1KDataset
from .cassi_dataset import CASSIDataset
from .paired_image_dataset import Dataset_PairedImage
from .pairing import IMAGE_EXTENSIONS, image_files, lmdb_keys, paired_paths
from .transforms import dihedral, pad_to_size, random_dihedral
from .unpaired_image_dataset import UnpairedImageDataset

__all__ = ['ARAD1KDataset', 'CASSIDataset', 'Dataset_PairedImage', 'IMAGE_EXTENSIONS', 'image_files', 'lmdb_keys',
           'paired_paths', 'dihedral', 'pad_to_size', 'random_dihedral', 'UnpairedImageDataset']
