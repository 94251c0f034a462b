"""The compiled (C) folds are what the kernel table runs, and the numpy fallback gives the same bits.

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
from nnlemma import native
from nnlemma.kernels import KERNEL_RULES, fast, fold

F32 = np.float32
ROOT = Path(__file__).resolve().parents[2]


def test_table_uses_the_compiled_folds():
    assert KERNEL_RULES["linear"].__wrapped__ is fast.linear
    assert KERNEL_RULES["matmul"].__wrapped__ is fast.matmul
    assert KERNEL_RULES["conv2d"].__wrapped__ is fast.conv2d
    assert native.AVAILABLE, "nnlemma._native was not built (no C compiler at install time?)"
    assert fast.matmul_fold is not fold.matmul_fold and fast.conv_fold is not fold.conv_fold


_FALLBACK_SCRIPT = r"""
import sys
{block}
import numpy as np
from nnlemma import native
from nnlemma.kernels import KERNEL_RULES, fast, fold
assert not native.AVAILABLE
assert fast.matmul_fold is fold.matmul_fold and fast.conv_fold is fold.conv_fold
rng = np.random.default_rng(0)
x = rng.standard_normal((5, 7)).astype(np.float32); w = rng.standard_normal((3, 7)).astype(np.float32)
np.save(sys.argv[1], KERNEL_RULES["linear"](x, w))
# the bound passes' numpy loops (fold_f32._fold_py, fused._relax_np, ...) on a small ReLU net
import nnlemma as nl
from nnlemma.ir import Builder
b = Builder()
h = b.input((1, 7), "x")
for k in range(3):
    h = b.eqn("linear", [h, b.param(rng.standard_normal((5 if k < 2 else 2, 7 if k == 0 else 5)).astype(np.float32))])
    h = b.eqn("relu", [h]) if k < 2 else h
g = b.build([h])
lo = np.full((1, 7), -0.5, np.float32)
res = nl.bounds.crown(g, lo, -lo, "float32")
np.save(sys.argv[2], np.stack([res.bounds[g.outputs[0]].lo, res.bounds[g.outputs[0]].hi]).astype(np.float64))
"""


def test_fallback_without_the_extension_gives_same_bits(tmp_path):
    block = "sys.modules['nnlemma._native'] = None  # importing the extension raises ImportError"
    out, bounds = tmp_path / "y.npy", tmp_path / "bounds.npy"
    subprocess.run([sys.executable, "-c", _FALLBACK_SCRIPT.format(block=block), str(out), str(bounds)],
                   check=True, cwd=ROOT, timeout=120)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 7)).astype(F32)
    w = rng.standard_normal((3, 7)).astype(F32)
    assert_same_bits(np.load(out), KERNEL_RULES["linear"](x, w))
    # the fallback's CROWN bounds contain the kernel's outputs on the box (corners and random points)
    ws = [rng.standard_normal((5 if k < 2 else 2, 7 if k == 0 else 5)).astype(F32) for k in range(3)]
    lo, hi = np.load(bounds)
    pts = np.concatenate([rng.uniform(-0.5, 0.5, (500, 7)), np.where(rng.random((64, 7)) < 0.5, -0.5, 0.5)])
    y = pts.astype(F32)
    for k, wk in enumerate(ws):
        y = KERNEL_RULES["linear"](y, wk)
        y = np.maximum(y, F32(0)) if k < 2 else y
    assert np.all(lo <= y) and np.all(y <= hi)


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
