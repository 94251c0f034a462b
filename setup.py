"""Build hook for the one compiled module, ``nnlemma._native`` (everything else is pyproject.toml).

The extension is optional: without a C compiler the install still succeeds and nnlemma runs the
numpy versions of the same loops (same float32 bits, several times slower); ``nnlemma.native``
reports which one is in use. The flags keep every float operation separately rounded: no fused
multiply-add (-ffp-contract=off) and no value-changing optimisation (-fno-fast-math).
"""

import sys

from setuptools import Extension, setup

FLAGS = [] if sys.platform == "win32" else ["-O3", "-ffp-contract=off", "-fno-fast-math"]

setup(ext_modules=[Extension("nnlemma._native", ["nnlemma/_native.c"], extra_compile_args=FLAGS, optional=True)])
