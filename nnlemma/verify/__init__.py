"""Complete verification of VNN-LIB properties for the float32 kernel.

``nl.verify(graph, prop, ...)`` calls :func:`nnlemma.verify.api.verify`: the package itself is
callable, so ``nl.verify.Options`` and ``nl.verify.checker`` stay reachable under the same name.
"""

import sys
import types

from .api import VerifyResult, verify
from .bab import Options


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs) -> VerifyResult:
        return verify(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

__all__ = ["Options", "VerifyResult", "verify"]
