"""``python tools/test.py -opt options/test_Deraining_GLMHA.yml`` for users of BasicSR's
``python basicsr/test.py -opt X`` habit: the same as ``glmha test`` (basicsr's test_pipeline with the plugin
loaded, the working directory as root).
Restormer's per-task test scripts (``--input_dir``, ``--weights``, ...) are ``glmha infer``.
"""
from glmha_plugin.commands.test import main

if __name__ == '__main__':
    main()
