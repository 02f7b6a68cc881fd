"""Import hook that makes the unmodified ``basicsr`` find glmha-plugin.

This module is imported by ``glmha_plugin_autoload.pth`` at interpreter
start-up, so it must stay tiny and use the standard library only (it costs
about a millisecond; importing torch here would cost seconds for every Python
process in the environment).  ``install()`` puts two meta-path finders in
front of ``sys.meta_path``, each acting only when it is needed:

* ``torchvision.transforms.functional_tensor``: the alias finder of
  :mod:`glmha_plugin_common` (basicsr 1.4.2 imports this module, which
  torchvision removed); the package installs the same finder itself when the
  hook is off.
* ``basicsr``: once the package has finished importing, ``glmha_plugin`` is
  imported, which registers the plugin's names in basicsr's registries and
  applies the runtime adaptations of :mod:`glmha_plugin.glue.compat`.  Hooking the
  package itself (not ``basicsr.utils.registry``) avoids a circular import.
  If the plugin fails to import, ``import basicsr`` still succeeds and a
  warning says why.
* ``python -m basicsr.train`` / ``python -m basicsr.test``: these are
  redirected to ``glmha_plugin.commands.train`` / ``glmha_plugin.commands.test``, which call
  basicsr's own, unmodified ``train_pipeline`` / ``test_pipeline`` (with the
  output root and resume adaptations that cannot be applied to a ``__main__``
  module from outside); see :func:`_redirect_main`.
* ``architecture``: the MST and MST++ toolboxes' scripts run ``from
  architecture import *`` and ``model_generator(opt.method, ...)`` from their
  local package.  When a top-level package of that name defines
  ``model_generator``, it is wrapped right after import: methods named
  ``glmha_*`` are built by :func:`glmha_plugin.glue.mst_toolbox.model_generator`
  (imported only then), every other name goes to the package's own function
  unchanged.  Packages without ``model_generator`` are not touched.

Set ``GLMHA_PLUGIN_AUTOLOAD=0`` to switch all of this off.  The package is
imported here only inside functions, once it is needed; it never imports this
module (what both need is in :mod:`glmha_plugin_common`).

Command line (for editable installs, which do not place the ``.pth``)::

    python -m glmha_plugin_autoload install|uninstall|status
"""
import functools
import importlib.abc
import importlib.util
import os
import sys
import warnings

from glmha_plugin_common import TOOLBOX_PREFIX, install_torchvision_alias

ENV_VAR = 'GLMHA_PLUGIN_AUTOLOAD'
PTH_NAME = 'glmha_plugin_autoload.pth'
# A .pth line is executed only when it starts with "import".  A leftover .pth
# (package removed) must not print a traceback at every interpreter start.
PTH_LINE = ('import sys; exec("try:\\n import glmha_plugin_autoload as _g\\n'
            'except ImportError:\\n _g = None\\nif _g is not None:\\n _g.install()")\n')

# `python -m <key>` is served by `<value>.main`.
MAIN_REDIRECTS = {'basicsr.train': 'glmha_plugin.commands.train', 'basicsr.test': 'glmha_plugin.commands.test'}
# The spectral toolboxes' model package (TOOLBOX_PREFIX: the prefix of the method names the plugin adds to it).
TOOLBOX_PACKAGE = 'architecture'
# `python -m` modules taken out of sys.modules until runpy asks the finders for them (_redirect_main).
_STASHED = {}


def _find_elsewhere(fullname, path, target=None):
    """Spec from the finders after ours (None when nobody else has the module)."""
    for finder in sys.meta_path:
        if isinstance(finder, _Finder) or not hasattr(finder, 'find_spec'):
            continue
        spec = finder.find_spec(fullname, path, target)
        if spec is not None:
            return spec
    return None


def enabled():
    """False when the user switched the hook off with GLMHA_PLUGIN_AUTOLOAD=0."""
    return os.environ.get(ENV_VAR, '1').strip().lower() not in ('0', 'false', 'no', 'off')


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
    """Gives runpy a two-line ``__main__`` that calls ``<entry>.main()``.

    ``module`` is the imported module runpy was asked to run (e.g. ``basicsr.train``), out of
    ``sys.modules`` since :func:`_redirect_main`; it goes back as soon as runpy has found this loader.
    """

    def __init__(self, entry, module):
        self.entry = entry
        self.module = module

    def get_code(self, fullname):
        sys.modules[fullname] = self.module
        src = f'import {self.entry} as _entry\n_entry.main(redirected_from={fullname!r})\n'
        return compile(src, f'<python -m {fullname}: redirected to {self.entry}>', 'exec')

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        # an ordinary import of the module while it was out of sys.modules (not runpy): it gets the real one
        sys.modules[module.__name__] = self.module


class _Finder(importlib.abc.MetaPathFinder):

    def find_spec(self, fullname, path, target=None):
        if fullname in _STASHED:
            module = _STASHED.pop(fullname)
            spec = importlib.util.spec_from_loader(fullname, _RedirectLoader(MAIN_REDIRECTS[fullname], module),
                                                   origin=module.__spec__.origin)
            spec.has_location = module.__spec__.has_location  # runpy: sys.argv[0] and __file__ of __main__
            return spec
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
    except Exception as exc:  # noqa: BLE001  never break `import basicsr`
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
            from glmha_plugin.glue.mst_toolbox import model_generator as plugin_generator
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
    """At the end of ``import basicsr`` under ``python -m basicsr.train|test``: run the entry point instead.

    basicsr/__init__ imports .train and .test, so runpy, which imports the
    package first, would find the module already imported: it would warn
    ("'basicsr.train' found in sys.modules after import of package 'basicsr',
    but prior to execution of 'basicsr.train'; this may result in
    unpredictable behaviour") and run the module's own spec.  The module is
    taken out of ``sys.modules`` here instead; runpy then asks the finders,
    :class:`_Finder` answers with a :class:`_RedirectLoader`, and the module is
    back in ``sys.modules`` before any of the redirected code runs.
    """
    name = module_run_as_main()
    if name in MAIN_REDIRECTS and name in sys.modules:
        _STASHED[name] = sys.modules.pop(name)


def _install_finder():
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def install():
    """Entry of the ``.pth`` line: install the finders unless switched off."""
    if enabled():
        install_torchvision_alias()
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
