"""``python tools/swap_attention.py --network NAME --input CKPT --output OUT``: swap a trained network's attention
to GLMHA (see glmha_plugin.swap_tool; ``--help`` lists the options)."""
import sys

from glmha_plugin.swap_tool import main

if __name__ == '__main__':
    sys.exit(main())
