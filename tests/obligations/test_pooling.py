"""fp-transfer obligations of avg_pool2d, max_pool2d and batch_norm: every node covered (no gap),
every lemma proved, and on a degenerate box a claim narrowed by one ulp below the kernel's value
is refuted with a model that replays on the kernel."""

from __future__ import annotations

import numpy as np
import pytest

from nnlemma.bounds import ibp
from nnlemma.interpret import interpret
from nnlemma.ir import Builder
from nnlemma.kernels import KERNEL_RULES
from obligations.fp_transfer import Dom, Gap, generate, transfer
from obligations.replay import replay
from solvers import get_solver
from solvers.z3_backend import Z3Solver

F32 = np.float32


def _pool(op, attrs, shape=(1, 2, 4, 4)):
    b = Builder()
    x = b.input(shape, "x")
    return b.build([b.eqn(op, [x], attrs, name="pool")])


def _batch_norm(rng, C=3):
    b = Builder()
    x = b.input((1, C, 2, 2), "x")
    mean, gamma, beta = (b.param(rng.standard_normal(C).astype(F32)) for _ in range(3))
    var = b.param(np.abs(rng.standard_normal(C)).astype(F32))
    return b.build([b.eqn("batch_norm", [x, mean, var, gamma, beta], {"eps": 1e-5}, name="bn")])


CASES = [
    ("avg_pool2d", {"kernel": (2, 2), "stride": (2, 1), "pads": (1, 0, 0, 1)}),
    ("avg_pool2d", {"kernel": (2, 2), "stride": (2, 1), "pads": (1, 0, 0, 1), "count_include_pad": 1}),
    ("avg_pool2d", {"kernel": (3, 3), "stride": (1, 1)}),
    ("max_pool2d", {"kernel": (2, 2), "pads": (1, 1, 0, 0)}),
    ("max_pool2d", {"kernel": (3, 2), "stride": (1, 2)}),
]


def _check_all(g, lo, hi, expect_steps=None):
    items = list(generate(g, ibp(g, lo, hi), "p"))
    assert not [i for i in items if isinstance(i, Gap)]
    n_out = int(np.prod(g.output_values[0].shape))
    finals = [o for o in items if o.id.rsplit("/", 1)[-1] in ("divide", "result") or o.op == "batch_norm"]
    assert len(finals) == n_out
    bw = get_solver("bitwuzla")  # faster than Z3 here; Z3 runs the refutations below
    for o in items:
        assert bw.check(o.violation, 30).status == "unsat", o.id
    return items


@pytest.mark.parametrize("op,attrs", CASES)
def test_pooling_lemmas_proved_and_one_ulp_narrowing_refuted(op, attrs):
    rng = np.random.default_rng(3)
    g = _pool(op, attrs)
    lo = rng.standard_normal((1, 2, 4, 4)).astype(F32)
    lo[0, 0, 1, 1] = F32(-0.0)  # a signed zero in a window
    hi = (lo + F32(0.25)).astype(F32)
    items = _check_all(g, lo, hi)
    if op == "avg_pool2d":  # one lemma per window position (padding included) plus the division
        adds = sum("/add" in o.id for o in items)
        assert adds == int(np.prod(g.output_values[0].shape)) * attrs["kernel"][0] * attrs["kernel"][1]
    # degenerate box: IBP's claims are the kernel's values; one ulp below is refuted and replays
    (y,) = [interpret(g, KERNEL_RULES, [lo])[i] for i in g.outputs]
    finals = [o for o in generate(g, ibp(g, lo, lo), "p") if o.id.rsplit("/", 1)[-1] in ("divide", "result")]
    for k in (0, 5):
        o = finals[k]
        v = y.reshape(-1)[k]
        assert Dom.from_json(o.replay["claim"]) == Dom.interval(v, v)
        below = np.nextafter(v, F32(-np.inf))
        bad = transfer(o.replay["op"], o.replay["attrs"], [Dom.from_json(d) for d in o.replay["operands"]],
                       Dom.interval(below, below), "m", {}, step=o.replay["step"])
        out = Z3Solver().check(bad.violation, 30)
        assert out.status == "sat" and replay(bad.replay, out.model)[0]


def test_max_pool_window_holding_nan_may_give_nan():
    """An operand interval flagged NaN makes its window's maximum possibly NaN (IEEE-2019
    maximum propagates NaN): a claim without NaN is refuted there, one with NaN is proved."""
    from obligations.pooling import _max_step
    a, x = Dom.interval(F32(0), F32(1)), Dom.interval(F32(-1), F32(2), True)
    step = _max_step(a, x)
    assert step.nan and Dom.from_json(step.to_json()) == step
    s = Z3Solver()
    assert s.check(transfer("maximum", {}, [a, x], step, "ok", {}).violation, 10).status == "unsat"
    no_nan = Dom(step.lo, step.hi, False)
    out = s.check(transfer("maximum", {}, [a, x], no_nan, "bad", {}).violation, 10)
    assert out.status == "sat"


def test_batch_norm_lemmas_proved_and_one_ulp_narrowing_refuted():
    rng = np.random.default_rng(5)
    g = _batch_norm(rng)
    lo = rng.standard_normal((1, 3, 2, 2)).astype(F32)
    hi = (lo + F32(0.25)).astype(F32)
    items = _check_all(g, lo, hi)
    assert len(items) == 12 and {o.op for o in items} == {"batch_norm"}
    (y,) = [interpret(g, KERNEL_RULES, [lo])[i] for i in g.outputs]
    for k in (0, 7):
        o = list(generate(g, ibp(g, lo, lo), "p"))[k]
        v = y.reshape(-1)[k]
        assert Dom.from_json(o.replay["claim"]) == Dom.interval(v, v)
        above = np.nextafter(v, F32(np.inf))
        bad = transfer("batch_norm", o.replay["attrs"], [Dom.from_json(d) for d in o.replay["operands"]],
                       Dom.interval(above, above), "m", {})
        out = Z3Solver().check(bad.violation, 30)
        assert out.status == "sat" and replay(bad.replay, out.model)[0]
