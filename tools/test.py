"""Testing, two ways (glmha_plugin.test.tools_test_main).

* ``python tools/test.py -opt options/test_Deraining_GLMHA.yml``: basicsr's
  ``test_pipeline`` (same as ``glmha-test``): metrics in the log, images under
  ``results/<name>/visualization/``.
* ``python tools/test.py --task Deraining --weights W.pth [--tile 720]``:
  Restormer's test scripts: ``results/<dataset>/<stem>.png`` where Restormer's
  MATLAB evaluation and ``tools/evaluate.py`` look for them (``--help`` lists
  the options).
"""
import sys

from glmha_plugin.test import tools_test_main as main

if __name__ == '__main__':
    sys.exit(main())
