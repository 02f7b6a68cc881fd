"""``python -m glmha_plugin.compress``: the ``glmha compress`` command."""
import sys

from .command import main

sys.exit(main())
