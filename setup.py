"""Packaging glue that setup.cfg cannot express: ship the import hook's ``.pth`` and the option files.

A regular (wheel) install gets ``glmha_plugin_autoload.pth`` at the root of
site-packages, so that ``python -m basicsr.train`` finds the plugin's names;
pip removes it again on uninstall because it is listed in the wheel's RECORD.
Editable installs do not carry it (setuptools builds no wheel root for them):
``tools/install.sh`` runs ``python -m glmha_plugin_autoload install`` instead.

The repository's option files (``options/**/*.yml``) travel as package data
under ``glmha_plugin/option_files/`` with the same layout, so a wheel user
has them (:mod:`glmha_plugin.glue.option_files`: ``glmha-train -opt NAME``,
``glmha options list|copy``).  A checkout or an editable
install reads ``options/`` itself.
"""
import glob
import os
import shutil
import sys

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import glmha_plugin_autoload  # noqa: E402  (stdlib only; defines the .pth name and line)

OPTIONS_SRC = 'options'
OPTION_FILES_DIR = os.path.join('glmha_plugin', 'option_files')  # glmha_plugin.glue.option_files.PACKAGED_DIR reads it


def option_files():
    """The shipped option files, relative to ``OPTIONS_SRC`` (``Deraining_GLMHA.yml``, ``tiny/...``)."""
    root = os.path.join(HERE, OPTIONS_SRC)
    return sorted(os.path.relpath(f, root) for f in glob.glob(os.path.join(root, '**', '*.yml'), recursive=True))


class BuildPyWithExtras(build_py):
    def _extras(self):
        """(source or None, target) of every file this step adds to the build: the .pth, the option files."""
        yield None, os.path.join(self.build_lib, glmha_plugin_autoload.PTH_NAME)
        for rel in option_files():
            yield os.path.join(HERE, OPTIONS_SRC, rel), os.path.join(self.build_lib, OPTION_FILES_DIR, rel)

    def run(self):
        super().run()
        for src, target in self._extras():
            if src is None:
                with open(target, 'w', encoding='utf-8') as f:
                    f.write(glmha_plugin_autoload.PTH_LINE)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(src, target)

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [target for _, target in self._extras()]


setup(cmdclass={'build_py': BuildPyWithExtras})
