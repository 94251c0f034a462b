"""Loading a user's Python file that defines a builder function (``system()``, ``problem()``).

The file is imported under a private module name with its own directory on ``sys.path`` (so it
can import helpers next to it); the function gets the command-line values it asks for (``data_dir=``, ``model=``).
Every failure is an :class:`~nnlemma.errors.InputError` naming the file.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

from .errors import InputError


def load_user_object(path: str, func: str, cls: type, expected: str, **given):
    """Import ``path``, call its ``func()`` and check the result is a ``cls`` (public name
    ``expected``). Each keyword in ``given`` whose value is not None (a command-line option: the
    data directory, a model path) is passed on, and must be a parameter of ``func``."""
    p = Path(path)
    if not p.is_file() or p.suffix != ".py":
        raise InputError(f"{path}: expected a Python file defining {func}()")
    sys.path.insert(0, str(p.resolve().parent))
    try:
        spec = importlib.util.spec_from_file_location(f"nnlemma_user_{p.stem}", p)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{path}: importing the file failed: {type(exc).__name__}: {exc}") from None
    finally:
        sys.path.pop(0)
    fn = getattr(mod, func, None)
    if not callable(fn):
        raise InputError(f"{path}: defines no {func}() function")
    params = inspect.signature(fn).parameters
    kwargs = {k: v for k, v in given.items() if v is not None}
    for k in kwargs:
        if k not in params:
            raise InputError(f"{path}: {func}() takes no {k} parameter, but it was given on the command line")
    try:
        obj = fn(**kwargs)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: {func}() failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(obj, cls):
        raise InputError(f"{path}: {func}() returned {type(obj).__name__}, not {expected}")
    return obj
