"""fp-transfer obligations: generated for every node, proved by Z3 on small nets, and refuted —
with a counterexample that replays on the kernel — when a claim is wrong by one ulp or a MAC is
rounded the wrong way."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from nnlemma.bounds import ibp
from nnlemma.interpret import interpret
from nnlemma.ir import Builder
from nnlemma.kernels import KERNEL_RULES
from obligations import manifest
from obligations.fp_transfer import Dom, Gap, generate, partial_sums, transfer
from obligations.generate import generate_dir
from obligations.replay import replay
from solvers.discharge import DischargeOptions, discharge
from solvers.z3_backend import Z3Solver

F32 = np.float32
f = lambda v: int(np.float32(v).view(np.uint32))  # noqa: E731


def solve_all(obls, timeout=30.0):
    s = Z3Solver()
    return [(o, s.check(o.violation, timeout)) for o in obls]


def test_small_net_every_node_covered_and_proved(small_net):
    g = small_net
    lo, hi = np.array([[-0.5, 0.25, 1.0]], F32), np.array([[0.5, 0.5, 1.25]], F32)
    items = list(generate(g, ibp(g, lo, hi), "small"))
    assert not [i for i in items if isinstance(i, Gap)]
    nodes = {o.provenance["node"] for o in items}
    assert nodes == {"fc", "relu", "leaky", "max", "rs", "tr", "shift"}
    assert sum(o.id.endswith("/bias") for o in items) == 2
    assert sum("/mac" in o.id for o in items) == 6
    for o, out in solve_all(items):
        assert out.status == "unsat", (o.id, out)


def test_attained_bound_narrowed_one_ulp_is_refuted_and_replays(small_net):
    """Degenerate box: IBP's bounds are the kernel's values. Claim one ulp less at each node:
    every such lemma is refuted with a model that replays on the kernel."""
    g = small_net
    x = np.array([[0.3, -0.7, 1.1]], F32)
    b = ibp(g, x, x)
    env = interpret(g, KERNEL_RULES, [x])
    refuted = 0
    for o in generate(g, b, "small"):
        claim = Dom.from_json(o.replay["claim"])
        if claim.lo != claim.hi or "/mac" in o.id:
            continue
        v = np.array(claim.hi, np.uint32).view(F32)
        narrowed = Dom(f(np.nextafter(v, F32(-np.inf))), f(np.nextafter(v, F32(-np.inf))))
        ops = [Dom.from_json(d) for d in o.replay["operands"]]
        bad = transfer(o.op, o.replay["attrs"], ops, narrowed, o.id + "/mutant", o.provenance,
                       step=o.replay["step"])
        out = Z3Solver().check(bad.violation, 30)
        assert out.status == "sat", o.id
        ok, detail = replay(bad.replay, out.model)
        assert ok, (o.id, detail)
        refuted += 1
    assert refuted >= 7
    # and the kernel's outputs are exactly the (degenerate) claimed bounds
    (y,) = [env[i] for i in g.outputs]
    assert np.array_equal(b.outputs[0].lo.view(np.uint32), y.view(np.uint32))


def test_mac_rounded_the_wrong_way_is_refuted():
    """A partial sum computed with a fused multiply-add (one rounding instead of two) differs from
    the kernel's fold; the MAC lemma claiming the fused value is refuted and replays."""
    from fractions import Fraction
    rng = np.random.default_rng(5)
    while True:  # a case where one rounding and two roundings differ
        acc, x, w = (F32(v) for v in rng.standard_normal(3))
        exact = Fraction(float(acc)) + Fraction(float(x)) * Fraction(float(w))
        if Fraction(float(exact)) != exact:
            continue  # keep float64 exact so float32(float64) is the one correct rounding
        kernel = np.add(acc, np.multiply(x, w, dtype=F32), dtype=F32)
        fused = F32(float(exact))
        if kernel != fused:
            break
    ob = transfer("linear", {}, [Dom.point(acc), Dom.point(x), Dom.point(w)], Dom.point(fused),
                  "m/n/fp-transfer/0/mac1", {}, step="mac")
    out = Z3Solver().check(ob.violation, 30)
    assert out.status == "sat"
    ok, detail = replay(ob.replay, out.model)
    assert ok and str(kernel) in detail
    good = replace(ob, violation=transfer("linear", {}, [Dom.point(acc), Dom.point(x), Dom.point(w)],
                                          Dom.point(kernel), "ok", {}, step="mac").violation)
    assert Z3Solver().check(good.violation, 30).status == "unsat"


def test_partial_sums_are_the_kernel_fold_at_the_corners():
    rng = np.random.default_rng(3)
    for _ in range(50):
        K = 6
        lo = rng.standard_normal(K).astype(F32)
        hi = (lo + np.abs(rng.standard_normal(K)).astype(F32)).astype(F32)
        w = rng.standard_normal(K).astype(F32)
        plo, phi, nan = partial_sums(lo, hi, np.zeros(K, bool), w)
        assert not nan.any()
        for corner in (lo, hi, np.where(w > 0, lo, hi), np.where(w > 0, hi, lo)):
            acc = F32(0)
            for k in range(K):
                acc = np.add(acc, np.multiply(corner[k], w[k], dtype=F32), dtype=F32)
                assert plo[k] <= acc <= phi[k]
        low = np.where(w > 0, lo, hi)
        acc = F32(0)
        for k in range(K):
            acc = np.add(acc, np.multiply(low[k], w[k], dtype=F32), dtype=F32)
        assert acc.view(np.uint32) == plo[-1].view(np.uint32)  # attained: the bound is tight


def test_nan_possible_operand_and_infinite_domains():
    """An input that may be NaN makes relu's output NaN-possible; a claim without NaN is refuted."""
    anything = Dom.interval(F32(-np.inf), F32(np.inf), True)
    ok = transfer("relu", {}, [anything], Dom.interval(F32(0), F32(np.inf), True), "r/ok", {})
    assert Z3Solver().check(ok.violation, 10).status == "unsat"
    bad = transfer("relu", {}, [anything], Dom.interval(F32(0), F32(np.inf), False), "r/bad", {})
    out = Z3Solver().check(bad.violation, 10)
    assert out.status == "sat" and replay(bad.replay, out.model)[0]


def test_node_without_a_generator_is_a_gap_named():
    """A fold whose weight is computed (not a parameter) and a transcendental of a constant have no
    generator: each is a gap naming its node and op."""
    b = Builder()
    x = b.input((1, 3), "x")
    w = b.input((3, 2), "w")
    c = b.param(np.array([0.5, 2.0], F32))
    y = b.eqn("matmul", [x, w], name="mm")
    t = b.eqn("tanh", [c], name="t")
    g = b.build([b.eqn("add", [y, t], name="sum")])
    items = list(generate(g, ibp(g, [np.zeros((1, 3), F32), np.zeros((3, 2), F32)],
                                 [np.ones((1, 3), F32), np.ones((3, 2), F32)]), "m"))
    gaps = [i for i in items if isinstance(i, Gap)]
    assert {(x.node, x.op) for x in gaps} == {("mm", "matmul"), ("t", "tanh")}


@pytest.fixture()
def small_dir(tmp_path, small_net):
    g = small_net
    lo, hi = np.array([[-0.5, 0.25, 1.0]], F32), np.array([[0.5, 0.5, 1.25]], F32)
    trailer = generate_dir(g, lo, hi, tmp_path / "obl", model="small")
    return tmp_path / "obl", trailer


def test_manifest_is_json_and_streams(small_dir):
    d, trailer = small_dir
    whole = json.loads((d / "manifest.json").read_text())
    streamed = list(manifest.iter_entries(d))
    assert whole["obligations"] == streamed
    assert trailer["counts"]["obligations"] == len(streamed)
    header = manifest.read_header(d)
    assert "obligations" not in header and header["counts"] == trailer["counts"]
    for e in streamed:
        text = (d / e["file"]).read_text()
        assert "(check-sat)" in text and e["id"].startswith("small/")
    # a truncated manifest is an error, not a shorter list
    lines = (d / "manifest.json").read_text().splitlines(keepends=True)
    (d / "manifest.json").write_text("".join(lines[:-6]))
    from nnlemma.errors import InputError
    with pytest.raises(InputError, match="truncated"):
        list(manifest.iter_entries(d))


def test_discharge_proves_and_cached_rerun_solves_nothing(small_dir):
    d, trailer = small_dir
    first = discharge(d, DischargeOptions(jobs=1, timeout_s=30, progress=False))
    assert first["verdict"] == "proved" and first["counts"] == {"proved": trailer["counts"]["obligations"]}
    second = discharge(d, DischargeOptions(jobs=1, timeout_s=30, progress=False))
    assert second["verdict"] == "proved"
    rows = json.loads((d / "results.json").read_text())["obligations"]
    assert rows and all(r["cached"] for r in rows)


def test_timeout_is_unknown_never_proved(small_dir):
    d, _ = small_dir
    s = discharge(d, DischargeOptions(jobs=1, timeout_s=1e-6, cache="", progress=False))
    assert s["verdict"] == "unknown" or s["counts"].get("proved", 0) == s["obligations"]
    assert "refuted" not in s["counts"]


def test_model_that_does_not_replay_is_an_encoder_disagreement(small_dir, monkeypatch):
    """A solver (here a fake) answering sat with a model that is not a violation on the kernel
    must be reported as an encoder disagreement, and the claim is not proved."""
    from solvers import discharge as D
    from solvers.outcome import Outcome

    class Liar:
        name, version = "liar", "liar-1"

        def check_text(self, text, timeout_s):
            return Outcome("sat", 0.0, "liar", {"x0": f(0.0), "x1": f(0.0), "x2": f(0.0)})

    monkeypatch.setattr(D, "get_solver", lambda name: Liar())
    d, _ = small_dir
    s = discharge(d, DischargeOptions(solver="liar", jobs=1, cache="", progress=False))
    assert s["verdict"] == "unknown"
    assert s["counts"].get("encoder-disagreement", 0) > 0 and "proved" not in s["counts"]


def test_monotone_transcendentals_get_endpoint_obligations():
    """exp/tanh/sigmoid nodes: IBP's claim is proved from the kernel's endpoint values; a claim
    narrowed by one ulp at an attained end is refuted (and replays). (sin/cos: tests/obligations/test_trig.py)"""
    from obligations.fp_transfer import transcendental_transfer
    for op in ("exp", "tanh", "sigmoid"):
        b = Builder()
        x = b.input((1, 4), "x")
        g = b.build([b.eqn(op, [x], name=op)])
        lo, hi = np.array([[-3, -0.5, 0, 2]], F32), np.array([[-1, 0.25, 0, 80]], F32)
        items = list(generate(g, ibp(g, lo, hi), "t"))
        assert len(items) == 4 and all(o.kind == "transcendental-transfer" for o in items)
        for o, out in solve_all(items):
            assert out.status == "unsat", (o.id, out)
        k = KERNEL_RULES[op](np.array(hi[0, 0])).reshape(())
        bad = transcendental_transfer(op, Dom.interval(lo[0, 0], hi[0, 0]),
                                      Dom.interval(F32(-np.inf), np.nextafter(F32(k), F32(-np.inf))), "b", {})
        out = Z3Solver().check(bad.violation, 10)
        assert out.status == "sat" and replay(bad.replay, out.model)[0]
        nan_in = transcendental_transfer(op, Dom.interval(lo[0, 0], hi[0, 0], True),
                                         Dom.interval(F32(-np.inf), F32(np.inf)), "n", {})
        assert Z3Solver().check(nan_in.violation, 10).status == "sat"  # NaN propagates


def test_conv2d_folds_are_decomposed_and_proved():
    """conv2d with padding, stride and dilation: one lemma per multiply-add of the window in
    (c_in, kh, kw) order (padded zeros included) plus the bias; all proved; a degenerate box's
    attained output narrowed by one ulp is refuted and replays."""
    rng = np.random.default_rng(7)
    b = Builder()
    x = b.input((1, 2, 4, 4), "x")
    w = b.param(rng.standard_normal((2, 2, 2, 2)).astype(F32))
    bias = b.param(rng.standard_normal(2).astype(F32))
    g = b.build([b.eqn("conv2d", [x, w, bias], {"stride": (2, 1), "pads": (1, 0, 0, 1), "dilation": (1, 2)},
                       name="conv")])
    lo = rng.standard_normal((1, 2, 4, 4)).astype(F32)
    hi = (lo + F32(0.125)).astype(F32)
    items = list(generate(g, ibp(g, lo, hi), "c"))
    assert not [i for i in items if isinstance(i, Gap)]
    n_out = int(np.prod(g.output_values[0].shape))
    assert sum("/mac" in o.id for o in items) == n_out * 8 and sum(o.id.endswith("/bias") for o in items) == n_out
    from solvers import get_solver
    bw = get_solver("bitwuzla")  # 4x faster than Z3 on these; Z3 covers the same formulas above
    for o in items:
        assert bw.check(o.violation, 30).status == "unsat", o.id
    # degenerate box: the claim is the kernel value; one ulp less is refuted by a replaying model
    pt = lo
    (y,) = [interpret(g, KERNEL_RULES, [pt])[i] for i in g.outputs]
    bias_obls = [o for o in generate(g, ibp(g, pt, pt), "c") if o.id.endswith("/bias")]
    o = bias_obls[3]
    claim = Dom.from_json(o.replay["claim"])
    assert claim.lo == claim.hi == f(y.reshape(-1)[3])
    v = np.nextafter(y.reshape(-1)[3], F32(-np.inf))
    bad = transfer(o.op, {}, [Dom.from_json(d) for d in o.replay["operands"]], Dom.interval(v, v),
                   "m", {}, step="add")
    out = Z3Solver().check(bad.violation, 30)
    assert out.status == "sat" and replay(bad.replay, out.model)[0]


def test_sum_and_mean_folds():
    """sum/mean over two axes: one lemma per addition in the kernel's row-major order, then the
    claim (sum) or the division by the count (mean); all proved; a one-ulp narrowing of an
    attained mean is refuted and replays."""
    rng = np.random.default_rng(9)
    for op in ("sum", "mean"):
        b = Builder()
        x = b.input((2, 3, 2), "x")
        g = b.build([b.eqn(op, [x], {"axes": (0, 2)}, name=op)])
        lo = rng.standard_normal((2, 3, 2)).astype(F32)
        hi = (lo + F32(0.5)).astype(F32)
        items = list(generate(g, ibp(g, lo, hi), "r"))
        assert not [i for i in items if isinstance(i, Gap)]
        assert sum("/add" in o.id for o in items) == 3 * 4
        for o, out in solve_all(items):
            assert out.status == "unsat", o.id
        (y,) = [interpret(g, KERNEL_RULES, [lo])[i] for i in g.outputs]
        last = [o for o in generate(g, ibp(g, lo, lo), "r") if not o.id.split("/")[-1].startswith("add")][1]
        v = np.nextafter(y.reshape(-1)[1], F32(np.inf))
        bad = transfer(last.replay["op"], {}, [Dom.from_json(d) for d in last.replay["operands"]],
                       Dom.interval(v, v), "m", {}, step=last.replay["step"])
        out = Z3Solver().check(bad.violation, 30)
        assert out.status == "sat" and replay(bad.replay, out.model)[0]
