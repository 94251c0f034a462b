"""The corner route decides multiply-add lemmas exactly as the solver does (Z3 as the oracle),
including claims one ulp too tight, zero and negative weights, subnormal and huge magnitudes."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from obligations.corners import decide
from obligations.fp_transfer import Dom, transfer
from obligations.replay import replay
from solvers.z3_backend import Z3Solver

F32 = np.float32
ALL = {"mul-monotone", "add-monotone"}
_Z3 = Z3Solver()

finite32 = st.floats(width=32, allow_nan=False, allow_infinity=False).map(F32)
scaled = st.sampled_from([1.0, 1e-3, 1e-38, 1e30]).flatmap(
    lambda s: st.floats(-4, 4, allow_nan=False).map(lambda v: F32(v * s)))
value = st.one_of(finite32, scaled)


def interval(a, b) -> Dom:
    return Dom.interval(min(a, b), max(a, b))


def tight(acc: Dom, x: Dom, w) -> tuple:
    f = lambda b: np.array(b, np.uint32).view(F32)[()]  # noqa: E731
    with np.errstate(all="ignore"):
        ps = sorted(np.multiply(f(b), w, dtype=F32) for b in (x.lo, x.hi))
        return np.add(f(acc.lo), ps[0], dtype=F32), np.add(f(acc.hi), ps[1], dtype=F32)


@settings(max_examples=60, deadline=None)
@given(a1=value, a2=value, x1=value, x2=value, w=st.one_of(value, st.sampled_from([F32(0), F32(-0.0)])),
       nudge_lo=st.sampled_from([-1, 0, 1]), nudge_hi=st.sampled_from([-1, 0, 1]))
def test_corners_agree_with_z3(a1, a2, x1, x2, w, nudge_lo, nudge_hi):
    acc, x = interval(a1, a2), interval(x1, x2)
    lo, hi = tight(acc, x, w)
    if not (np.isfinite(lo) and np.isfinite(hi)):
        lo, hi = min(lo, hi), max(lo, hi)
    step = lambda v, n: v if n == 0 else np.nextafter(v, F32(np.inf) if n > 0 else F32(-np.inf))  # noqa: E731
    lo, hi = step(lo, nudge_lo), step(hi, nudge_hi)
    if lo > hi:
        return
    ob = transfer("linear", {}, [acc, x, Dom.point(w)], Dom.interval(lo, hi), "t", {}, step="mac")
    got = decide(ob.replay, ALL)
    assert got is not None
    want = _Z3.check(ob.violation, 60)
    assert want.status in ("sat", "unsat"), want
    assert got[0] == want.status, (acc, x, w, lo, hi, got, want)
    if got[0] == "sat":
        assert replay(ob.replay, got[1])[0]


def test_route_needs_the_library_lemmas_and_finite_domains():
    acc, x, w = Dom.interval(F32(0), F32(1)), Dom.interval(F32(-1), F32(1)), Dom.point(F32(0.5))
    ob = transfer("linear", {}, [acc, x, w], Dom.interval(F32(-0.5), F32(1.5)), "t", {}, step="mac")
    assert decide(ob.replay, ALL) == ("unsat", {})
    assert decide(ob.replay, {"add-monotone"}) is None  # a cited lemma unproved: not this route
    inf = transfer("linear", {}, [Dom.interval(F32(0), F32(np.inf)), x, w],
                   Dom.interval(F32(-0.5), F32(np.inf)), "t", {}, step="mac")
    assert decide(inf.replay, ALL) is None
    relu = transfer("relu", {}, [x], Dom.interval(F32(0), F32(1)), "t", {})
    assert decide(relu.replay, ALL) is None


def test_proof_store_is_checked_against_the_current_library(tmp_path):
    """The shipped store proves the route lemmas; a store whose hashes are stale, or that lacks
    one cited query, or that records one as unknown, proves nothing."""
    import json
    from obligations.corners import STORE, proved_route_lemmas, route_requirements
    assert proved_route_lemmas(STORE) == {"mul-monotone", "add-monotone"}
    rows = json.loads(STORE.read_text())["rows"]
    need = route_requirements()
    assert {r["id"] for r in rows if r["status"] == "proved"} >= set(need)
    stale = [dict(r, hash="0" * 64) if r["id"] == "library/add/monotone-b/x1+x2+y+" else r for r in rows]
    (tmp_path / "stale.json").write_text(json.dumps({"rows": stale}))
    assert proved_route_lemmas(tmp_path / "stale.json") == {"mul-monotone"}
    missing = [r for r in rows if r["id"] != "library/mul/via-float64/all/exact-0"]
    (tmp_path / "missing.json").write_text(json.dumps({"rows": missing}))
    assert proved_route_lemmas(tmp_path / "missing.json") == {"add-monotone"}
    unknown = [dict(r, status="unknown") if r["id"].endswith("monotone-a/coverage") else r for r in rows]
    (tmp_path / "unknown.json").write_text(json.dumps({"rows": unknown}))
    assert proved_route_lemmas(tmp_path / "unknown.json") == {"mul-monotone"}
    assert proved_route_lemmas(tmp_path / "nothing.json") == set()


def test_add_step_with_two_variable_operands_and_mac_with_variable_weight():
    """The bias step's argument holds for a variable second operand too (both ends move); a
    multiply-add whose weight is not a constant is left to the solver."""
    a, b = Dom.interval(F32(0), F32(1)), Dom.interval(F32(-1), F32(2))
    ok = transfer("add", {}, [a, b], Dom.interval(F32(-1), F32(3)), "t", {}, step="add")
    assert decide(ok.replay, ALL) == ("unsat", {}) == (_Z3.check(ok.violation, 10).status, {})
    tight = transfer("add", {}, [a, b], Dom.interval(F32(-1), np.nextafter(F32(3), F32(0))), "t", {}, step="add")
    got = decide(tight.replay, ALL)
    assert got[0] == "sat" == _Z3.check(tight.violation, 10).status and replay(tight.replay, got[1])[0]
    mac = transfer("linear", {}, [a, b, Dom.interval(F32(-1), F32(1))], Dom.interval(F32(-9), F32(9)), "t", {},
                   step="mac")
    assert decide(mac.replay, ALL) is None
