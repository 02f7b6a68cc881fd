"""Packaging glue that setup.cfg cannot express: ship the import hook's ``.pth``.

A regular (wheel) install gets ``glmha_plugin_autoload.pth`` at the root of
site-packages, so that ``python -m basicsr.train`` finds the plugin's names;
pip removes it again on uninstall because it is listed in the wheel's RECORD.
Editable installs do not carry it (setuptools builds no wheel root for them):
``tools/install.sh`` runs ``python -m glmha_plugin_autoload install`` instead.
"""
import os
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import glmha_plugin_autoload  # noqa: E402  (stdlib only; defines the .pth name and line)


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        target = os.path.join(self.build_lib, glmha_plugin_autoload.PTH_NAME)
        with open(target, 'w', encoding='utf-8') as f:
            f.write(glmha_plugin_autoload.PTH_LINE)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [
            os.path.join(self.build_lib, glmha_plugin_autoload.PTH_NAME)]


setup(cmdclass={'build_py': BuildPyWithPth})
