"""``python tools/test.py -opt X``: same as ``glmha-test`` (basicsr's test_pipeline, plugin loaded)."""
from glmha_plugin.test import main

if __name__ == '__main__':
    main()
