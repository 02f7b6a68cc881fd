"""``python tools/generate_patches_gopro.py``: GoPro 512/256 training crops and 256 validation crops.

See glmha_plugin.prepare.gopro_patches.
"""
import sys

from glmha_plugin.prepare.gopro_patches import main

if __name__ == '__main__':
    sys.exit(main())
