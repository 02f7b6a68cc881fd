"""Import hook that makes the unmodified ``basicsr`` find glmha-plugin.

This module is imported by ``glmha_plugin_autoload.pth`` at interpreter
start-up, so it must stay tiny and use the standard library only (it costs
about a millisecond; importing torch here would cost seconds for every Python
process in the environment).  ``install()`` puts one meta-path finder in front
of ``sys.meta_path`` which does three things, each only when it is needed:

* ``torchvision.transforms.functional_tensor``: basicsr 1.4.2 imports this
  module, which torchvision removed (0.17+).  When the real module cannot be
  found, the finder serves an alias of ``torchvision.transforms.functional``.
  Being a finder, it also works in fresh interpreter processes (spawned
  DataLoader workers, torchrun ranks) before anything else is imported.
* ``basicsr``: once the package has finished importing, ``glmha_plugin`` is
  imported, which registers the plugin's names in basicsr's registries and
  applies the runtime adaptations of :mod:`glmha_plugin.compat`.  Hooking the
  package itself (not ``basicsr.utils.registry``) avoids a circular import.
  If the plugin fails to import, ``import basicsr`` still succeeds and a
  warning says why.
* ``python -m basicsr.train`` / ``python -m basicsr.test``: these are
  redirected to ``glmha_plugin.train`` / ``glmha_plugin.test``, which call
  basicsr's own, unmodified ``train_pipeline`` / ``test_pipeline`` (with the
  output root and resume adaptations that cannot be applied to a ``__main__``
  module from outside).
* ``architecture``: the MST and MST++ toolboxes' scripts run ``from
  architecture import *`` and ``model_generator(opt.method, ...)`` from their
  local package.  When a top-level package of that name defines
  ``model_generator``, it is wrapped right after import: methods named
  ``glmha_*`` are built by :func:`glmha_plugin.registry.model_generator`
  (imported only then), every other name goes to the package's own function
  unchanged.  Packages without ``model_generator`` are not touched.

Set ``GLMHA_PLUGIN_AUTOLOAD=0`` to switch all of this off.

Command line (for editable installs, which do not place the ``.pth``)::

    python -m glmha_plugin_autoload install|uninstall|status
"""
import functools
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import warnings

ENV_VAR = 'GLMHA_PLUGIN_AUTOLOAD'
PTH_NAME = 'glmha_plugin_autoload.pth'
# A .pth line is executed only when it starts with "import".  A leftover .pth
# (package removed) must not print a traceback at every interpreter start.
PTH_LINE = ('import sys; exec("try:\\n import glmha_plugin_autoload as _g\\n'
            'except ImportError:\\n _g = None\\nif _g is not None:\\n _g.install()")\n')

TV_ALIAS = 'torchvision.transforms.functional_tensor'
TV_TARGET = 'torchvision.transforms.functional'
# `python -m <key>` is served by `<value>.main`.
MAIN_REDIRECTS = {'basicsr.train': 'glmha_plugin.train', 'basicsr.test': 'glmha_plugin.test'}
# The spectral toolboxes' model package, and the prefix of the method names the plugin adds to it.
TOOLBOX_PACKAGE = 'architecture'
TOOLBOX_PREFIX = 'glmha_'


def enabled():
    """False when the user switched the hook off with GLMHA_PLUGIN_AUTOLOAD=0."""
    return os.environ.get(ENV_VAR, '1').strip().lower() not in ('0', 'false', 'no', 'off')


def _find_elsewhere(fullname, path, target=None):
    """Spec from the finders after ours (None when nobody else has the module)."""
    for finder in sys.meta_path:
        if isinstance(finder, _Finder) or not hasattr(finder, 'find_spec'):
            continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


class _AliasLoader(importlib.abc.Loader):
    """Serves ``TV_ALIAS`` as a module holding the public names of ``TV_TARGET``."""

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        target = importlib.import_module(TV_TARGET)
        module.__dict__.update({k: v for k, v in vars(target).items() if not k.startswith('__')})


class _AfterImportLoader(importlib.abc.Loader):
    """Runs the real loader, then ``callback(module)``; restores the real loader."""

    def __init__(self, loader, callback):
        self.loader = loader
        self.callback = callback

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        module.__loader__ = self.loader
        if getattr(module, '__spec__', None) is not None:
            module.__spec__.loader = self.loader
        self.callback(module)

    def __getattr__(self, name):  # resource readers etc. of the real loader
        return getattr(self.loader, name)


class _RedirectLoader(importlib.abc.Loader):
    """Gives runpy a two-line ``__main__`` that calls ``<entry>.main()``."""

    def __init__(self, entry, original_spec):
        self.entry = entry
        self.original_spec = original_spec

    def get_code(self, fullname):
        src = f'import {self.entry} as _entry\n_entry.main(redirected_from={fullname!r})\n'
        return compile(src, f'<python -m {fullname}: redirected to {self.entry}>', 'exec')

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        exec(self.get_code(module.__name__), module.__dict__)


class _Finder(importlib.abc.MetaPathFinder):

    def find_spec(self, fullname, path, target=None):
        if fullname == TV_ALIAS:
            if _find_elsewhere(fullname, path, target) is not None:
                return None  # a torchvision that still has it: use the real one
            return importlib.machinery.ModuleSpec(fullname, _AliasLoader())
        if fullname == 'basicsr' and enabled():
            spec = _find_elsewhere(fullname, path, target)
            if spec is None or spec.loader is None:
                return None
            spec.loader = _AfterImportLoader(spec.loader, _after_basicsr)
            return spec
        if fullname == TOOLBOX_PACKAGE and path is None and enabled():
            spec = _find_elsewhere(fullname, path, target)
            if spec is None or spec.loader is None:
                return None
            spec.loader = _AfterImportLoader(spec.loader, _after_toolbox_architecture)
            return spec
        return None


def _after_basicsr(module):
    """Import the plugin right after ``basicsr`` has finished importing."""
    try:
        import glmha_plugin  # noqa: F401  (registers names, applies compat)
    except Exception as exc:  # never break `import basicsr`
        warnings.warn(f'glmha_plugin could not be imported ({type(exc).__name__}: {exc}); basicsr works '
                      f'without the plugin. Set {ENV_VAR}=0 to silence this.', RuntimeWarning, stacklevel=2)
        return
    _redirect_main()


def _after_toolbox_architecture(module):
    """Extend a toolbox's ``model_generator`` (only a package that defines one)."""
    original = getattr(module, 'model_generator', None)
    if callable(original) and not getattr(original, 'glmha_extended', False):
        module.model_generator = extend_model_generator(original)


def extend_model_generator(original):
    """``model_generator`` that builds ``glmha_*`` methods with the plugin, the rest with ``original``."""

    @functools.wraps(original)
    def model_generator(method, pretrained_model_path=None, *args, **kwargs):
        if isinstance(method, str) and method.startswith(TOOLBOX_PREFIX):
            from glmha_plugin.registry import model_generator as plugin_generator
            return plugin_generator(method, pretrained_model_path)
        return original(method, pretrained_model_path, *args, **kwargs)

    model_generator.glmha_extended = True
    return model_generator


def module_run_as_main():
    """The module named by ``python -m X`` while runpy is still importing X's parent, else None."""
    argv = getattr(sys, 'orig_argv', None)
    if not argv or not sys.argv or sys.argv[0] != '-m':
        return None
    for i, arg in enumerate(argv[1:], 1):
        if arg == '-m':
            return argv[i + 1] if i + 1 < len(argv) else None
        if arg.startswith('-m') and len(arg) > 2:
            return arg[2:]
    return None


def _redirect_main():
    name = module_run_as_main()
    entry = MAIN_REDIRECTS.get(name)
    module = sys.modules.get(name)
    if entry is None or module is None:
        return
    # runpy's importlib.util.find_spec(name) returns sys.modules[name].__spec__
    # when the module is already imported (basicsr/__init__ imports .train and
    # .test), so this spec decides what runs as __main__.  The entry point puts
    # the original spec back first thing.
    original = module.__spec__
    module.__spec__ = importlib.util.spec_from_loader(
        name, _RedirectLoader(entry, original), origin=original.origin)
    module.__spec__.has_location = original.has_location


def restore_redirected_spec(name):
    """Undo ``_redirect_main`` for module ``name`` (called by the entry point)."""
    module = sys.modules.get(name)
    spec = getattr(module, '__spec__', None)
    if spec is not None and isinstance(spec.loader, _RedirectLoader):
        module.__spec__ = spec.loader.original_spec


def alias_needed():
    """True when the installed torchvision lacks ``functional_tensor`` (imports torchvision.transforms)."""
    transforms = importlib.import_module('torchvision.transforms')
    return _find_elsewhere(TV_ALIAS, transforms.__path__) is None


def install_torchvision_alias():
    """Make ``import torchvision.transforms.functional_tensor`` work (idempotent)."""
    _install_finder()


def _install_finder():
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def install():
    """Entry of the ``.pth`` line: install the finder unless switched off."""
    if enabled():
        _install_finder()


# ----------------------------------------------------------------------------
# Placing the .pth for editable installs


def _site_dir():
    import sysconfig
    return sysconfig.get_paths()['purelib']


def _cli(argv):
    action = argv[0] if argv else 'status'
    path = os.path.join(_site_dir(), PTH_NAME)
    if action == 'install':
        with open(path, 'w', encoding='utf-8') as f:
            f.write(PTH_LINE)
        print(f'installed import hook: {path}')
    elif action == 'uninstall':
        if os.path.exists(path):
            os.remove(path)
            print(f'removed import hook: {path}')
        else:
            print(f'no import hook at {path}')
    elif action == 'status':
        state = 'present' if os.path.exists(path) else 'absent'
        print(f'import hook {path}: {state}; {ENV_VAR}={"on" if enabled() else "off"}')
    else:
        print('usage: python -m glmha_plugin_autoload install|uninstall|status', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(_cli(sys.argv[1:]))
