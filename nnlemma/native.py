"""The compiled hot loops (``nnlemma._native``, built from ``nnlemma/_native.c`` at install time),
or ``None`` when the build was skipped (no C compiler): callers then run their numpy versions,
which compute the same float32 bits (the float64 bound loops may differ in last bits, which their
callers' slack already covers) only several times more slowly.

A plain C extension rather than a JIT: it costs nothing at process start (numba's import and
cache load took ~0.6 s per ``nnlemma verify`` run, about half of a typical ACAS Xu instance).
"""

from __future__ import annotations

try:
    from . import _native as lib
except ImportError:  # pragma: no cover - exercised by a subprocess test that hides the module
    lib = None

AVAILABLE = lib is not None
BACKEND = "C extension nnlemma._native" if AVAILABLE else "numpy (nnlemma._native not built)"

__all__ = ["AVAILABLE", "BACKEND", "lib"]
