"""The compiled folds are what the kernel table runs, and the numpy fallback gives the same bits.

Also an end-to-end check through ``nnlemma.interpret.run`` on a small ReLU MLP built with the IR
builder, against the step-by-step reference of ``kref32``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from kref32 import NpScalar, assert_same_bits, mixed_array, ref_linear
from nnlemma.interpret import run
from nnlemma.ir import Builder
from nnlemma.kernels import KERNEL_RULES, fast, fold

F32 = np.float32
ROOT = Path(__file__).resolve().parents[2]


def test_table_uses_the_compiled_folds():
    assert KERNEL_RULES["linear"].__wrapped__ is fast.linear
    assert KERNEL_RULES["matmul"].__wrapped__ is fast.matmul
    assert KERNEL_RULES["conv2d"].__wrapped__ is fast.conv2d
    if fast.HAVE_NUMBA:
        assert fast.matmul_fold is not fold.matmul_fold and fast.conv_fold is not fold.conv_fold


_FALLBACK_SCRIPT = r"""
import sys
{block}
import numpy as np
from nnlemma.kernels import KERNEL_RULES, fast, fold
assert not fast.HAVE_NUMBA
assert fast.matmul_fold is fold.matmul_fold and fast.conv_fold is fold.conv_fold
rng = np.random.default_rng(0)
x = rng.standard_normal((5, 7)).astype(np.float32); w = rng.standard_normal((3, 7)).astype(np.float32)
np.save(sys.argv[1], KERNEL_RULES["linear"](x, w))
"""


def test_fallback_without_numba_gives_same_bits(tmp_path):
    block = "sys.modules['numba'] = None  # import numba raises ImportError"
    out = tmp_path / "y.npy"
    subprocess.run([sys.executable, "-c", _FALLBACK_SCRIPT.format(block=block), str(out)], check=True,
                   cwd=ROOT, timeout=120)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7)).astype(F32)
    w = rng.standard_normal((3, 7)).astype(F32)
    assert_same_bits(np.load(out), KERNEL_RULES["linear"](x, w))


def test_interpret_run_mlp_matches_reference():
    rng = np.random.default_rng(21)
    sizes = [13, 9, 6, 3]
    layers = [(mixed_array(rng, (o, i), finite=True) * F32(0.25), rng.standard_normal(o).astype(F32))
              for i, o in zip(sizes[:-1], sizes[1:])]
    batch = 6
    b = Builder()
    h = b.input((batch, sizes[0]), "x")
    for k, (w, bias) in enumerate(layers):
        h = b.eqn("linear", [h, b.param(w), b.param(bias)])
        if k < len(layers) - 1:
            h = b.eqn("relu", [h])
    graph = b.build([h])
    x = rng.random((batch, sizes[0])).astype(F32)
    (got,) = run(graph, x)
    ref = x
    for k, (w, bias) in enumerate(layers):
        ref = ref_linear(NpScalar, ref, w, bias)
        if k < len(layers) - 1:
            ref = np.where(ref > 0, ref, np.where(np.isnan(ref), ref, F32(0))).astype(F32)
    assert_same_bits(got, ref)
