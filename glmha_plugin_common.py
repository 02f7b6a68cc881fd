"""What the import hook and the package both need, so that neither has to import the other for it.

:mod:`glmha_plugin_autoload` (the import hook, run at interpreter start-up by a ``.pth`` line) imports the
package once basicsr is imported; the package (:mod:`glmha_plugin.glue.compat`, :mod:`glmha_plugin.glue.mst_toolbox`)
needs the torchvision alias and the toolbox method prefix also when the hook is switched off or not
installed.  Both take them from here.  This module imports neither of them: the standard library only
(it costs well under a millisecond at start-up).

* ``torchvision.transforms.functional_tensor``: basicsr 1.4.2 imports this module, which torchvision
  removed (0.17+).  :func:`install_torchvision_alias` puts a meta-path finder in front of
  ``sys.meta_path`` that serves an alias of ``torchvision.transforms.functional`` when the real module
  cannot be found.  Being a finder, it also works in fresh interpreter processes (spawned DataLoader
  workers, torchrun ranks) where the hook installs it before anything else is imported.
* :data:`TOOLBOX_PREFIX`: the prefix of the method names the plugin adds to the MST / MST++ toolboxes'
  ``model_generator`` (``glmha_mst_l``, ...).
"""
import importlib
import importlib.abc
import importlib.machinery
import sys

TV_ALIAS = 'torchvision.transforms.functional_tensor'
TV_TARGET = 'torchvision.transforms.functional'
TOOLBOX_PREFIX = 'glmha_'


def torchvision_has_it(path) -> bool:
    """Whether the installed torchvision ships ``TV_ALIAS`` itself (a file on ``torchvision.transforms``'
    package ``path``); asks the path finder only, so no other meta-path finder (an alias) can answer."""
    return path is not None and importlib.machinery.PathFinder.find_spec(TV_ALIAS, path) is not None


class _AliasLoader(importlib.abc.Loader):
    """Serves ``TV_ALIAS`` as a module holding the public names of ``TV_TARGET``."""

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        target = importlib.import_module(TV_TARGET)
        module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith('__')})


class TorchvisionAliasFinder(importlib.abc.MetaPathFinder):
    """Finds ``TV_ALIAS`` when torchvision lacks it (a torchvision that still ships it keeps its own)."""

    def find_spec(self, fullname, path, target=None):
        if fullname != TV_ALIAS or torchvision_has_it(path):
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader())


def install_torchvision_alias():
    """Make ``import torchvision.transforms.functional_tensor`` work (idempotent)."""
    if not any(isinstance(f, TorchvisionAliasFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, TorchvisionAliasFinder())


def alias_needed():
    """True when the installed torchvision lacks ``functional_tensor`` (imports torchvision.transforms)."""
    return not torchvision_has_it(importlib.import_module('torchvision.transforms').__path__)
