"""Data preparation: paired LMDB databases and GoPro training patches (plain functions; CLIs in tools/)."""
from .gopro_patches import center_crop_pair, patch_corners, split_pair_into_patches
from .lmdb_paired import create_paired_lmdb, verify_paired_lmdb

__all__ = ['center_crop_pair', 'patch_corners', 'split_pair_into_patches', 'create_paired_lmdb',
           'verify_paired_lmdb']
