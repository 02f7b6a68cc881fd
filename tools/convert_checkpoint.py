"""``python tools/convert_checkpoint.py --input restormer.pth --output glmha.pth [-opt options/Deraining_GLMHA.yml]``.

SVD warm start of a GLMHARestormer from a Restormer checkpoint (see glmha_plugin.convert).
"""
import sys

from glmha_plugin.convert import main

if __name__ == '__main__':
    sys.exit(main())
