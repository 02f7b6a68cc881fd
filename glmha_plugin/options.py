"""Reading option files (YAML) with errors a user can act on; used by the entry points and the tools."""
import yaml

from .errors import UsageError


def load_options(path):
    """Read an option YAML safely, with a clear error for a missing or malformed file."""
    if path is None:
        raise UsageError('missing -opt: give the option YAML, e.g. -opt options/Deraining_GLMHA.yml')
    try:
        with open(path, encoding='utf-8') as f:
            opt = yaml.safe_load(f)
    except FileNotFoundError:
        raise UsageError(f'option file {path!r} does not exist') from None
    except yaml.YAMLError as exc:
        raise UsageError(f'option file {path!r} is not valid YAML: {exc}') from None
    if not isinstance(opt, dict):
        raise UsageError(f'option file {path!r} must hold a mapping of options, got {type(opt).__name__}')
    return opt
