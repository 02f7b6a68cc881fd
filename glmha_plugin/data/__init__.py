"""Datasets; importing registers ``Dataset_PairedImage`` in basicsr's ``DATASET_REGISTRY``."""
from .paired_image_dataset import Dataset_PairedImage
from .pairing import IMAGE_EXTENSIONS, image_files, lmdb_keys, paired_paths
from .transforms import dihedral, pad_to_size, random_dihedral

__all__ = ['Dataset_PairedImage', 'IMAGE_EXTENSIONS', 'image_files', 'lmdb_keys', 'paired_paths', 'dihedral',
           'pad_to_size', 'random_dihedral']
