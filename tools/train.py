"""``python tools/train.py -opt X`` for users of Restormer's ``python basicsr/train.py -opt X`` habit.

Same as ``glmha-train``: basicsr's train_pipeline with the plugin loaded and
the working directory as root.
"""
from glmha_plugin.commands.train import main

if __name__ == '__main__':
    main()
