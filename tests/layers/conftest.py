"""The ``path`` fixture: a test using it runs once per layer path (glmha_plugin/layers/paths.py), forced."""
import pytest

from glmha_plugin.layers.paths import PATHS, force_path

ALL_PATHS = sorted(PATHS)


@pytest.fixture(params=ALL_PATHS)
def path(request):
    """Each test using it runs once per layer path, that path forced (CPU tensors either way)."""
    with force_path(request.param):
        yield PATHS[request.param]
