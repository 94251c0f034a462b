"""Discharge on a real Dask cluster (two worker processes on loopback) gives exactly the statuses
of the local process pool: the small net is proved, one-ulp mutants are refuted with models that
replay on the client; an unreachable scheduler is a quick one-line error."""

from __future__ import annotations

import json
import logging
import socket
import time

import numpy as np
import pytest

from nnlemma.bounds import ibp
from nnlemma.errors import NnlemmaError, SchedulerError
from obligations import manifest
from obligations.fp_transfer import Dom, generate, transfer
from obligations.generate import generate_dir
from solvers.dask_pool import DaskPool, solve_text
from solvers.discharge import DischargeOptions, _solve, discharge

try:
    import distributed
except ImportError:  # the dev extra installs it; CI never skips
    distributed = None

pytestmark = pytest.mark.skipif(distributed is None, reason="dask[distributed] is not installed")

F32 = np.float32


@pytest.fixture(scope="module")
def cluster():
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 host="127.0.0.1", dashboard_address=None,
                                 silence_logs=logging.ERROR)  # no heartbeat noise at teardown
    try:
        yield c
    finally:
        c.close()


def _run(d, **kw) -> tuple[dict, dict]:
    t0 = time.perf_counter()
    summary = discharge(d, DischargeOptions(cache="", progress=False, timeout_s=30, **kw))
    summary["_elapsed"] = time.perf_counter() - t0
    rows = json.loads((d / "results.json").read_text())["obligations"]  # overwritten by each run
    statuses = {r["id"]: r["status"] for r in rows}
    assert len(statuses) == len(rows) == summary["obligations"]
    return summary, statuses


def test_dask_statuses_equal_local_pool_and_proved(cluster, tmp_path, small_net):
    d = tmp_path / "obl"
    lo, hi = np.array([[-0.5, 0.25, 1.0]], F32), np.array([[0.5, 0.5, 1.25]], F32)
    trailer = generate_dir(small_net, lo, hi, d, model="small")
    local, local_st = _run(d, jobs=2)
    dask, dask_st = _run(d, jobs=1, scheduler=cluster.scheduler_address)
    print(f"local pool: {local['_elapsed']:.2f} s, dask: {dask['_elapsed']:.2f} s "
          f"({trailer['counts']['obligations']} obligations)")
    assert dask["jobs"] == 2  # the cluster's worker threads, not --jobs
    assert dask_st == local_st
    assert local["verdict"] == dask["verdict"] == "proved"
    assert set(dask_st.values()) == {"proved"} and len(dask_st) == trailer["counts"]["obligations"]


def _mutant_dir(d, g):
    """Degenerate box: every claim is the kernel's value; each single-value claim narrowed by one
    ulp is a mutant (sat, and its model replays on the kernel)."""
    x = np.array([[0.3, -0.7, 1.1]], F32)
    items, mutants = [], set()
    for o in generate(g, ibp(g, x, x), "small"):
        items.append(o)
        claim = Dom.from_json(o.replay["claim"])
        if claim.lo != claim.hi or "/mac" in o.id:
            continue
        v = np.array(claim.hi, np.uint32).view(F32)
        b = int(np.nextafter(v, F32(-np.inf)).view(np.uint32))
        ops = [Dom.from_json(x) for x in o.replay["operands"]]
        bad = transfer(o.op, o.replay["attrs"], ops, Dom(b, b), o.id + "/mutant", o.provenance,
                       step=o.replay["step"])
        items.append(bad)
        mutants.add(bad.id)
    manifest.write(d, {"model": "small-mutants"}, items)
    return mutants


def test_mutants_refuted_the_same_way(cluster, tmp_path, small_net):
    d = tmp_path / "mut"
    mutants = _mutant_dir(d, small_net)
    local, local_st = _run(d, jobs=2)
    local_rows = json.loads((d / "results.json").read_text())["obligations"]
    dask, dask_st = _run(d, jobs=1, scheduler=cluster.scheduler_address)
    dask_rows = json.loads((d / "results.json").read_text())["obligations"]
    assert dask_st == local_st
    assert local["verdict"] == dask["verdict"] == "refuted"
    assert {i for i, s in dask_st.items() if s == "refuted"} == mutants and len(mutants) >= 7
    assert {s for i, s in dask_st.items() if i not in mutants} == {"proved"}
    # the counterexamples came back from the workers and replayed on the client
    assert all("counterexample" in r and r.get("detail") for r in dask_rows if r["id"] in mutants)
    assert {r["id"] for r in local_rows if "counterexample" in r} == mutants


def test_pool_interface_text_not_path(cluster, tmp_path):
    """The file is read on the client; a bad script and a missing file are unknown, never a proof."""
    from concurrent.futures import FIRST_COMPLETED, wait
    good = tmp_path / "sat.smt2"
    good.write_text("(declare-const a Bool)(assert a)(check-sat)\n")
    junk = tmp_path / "junk.smt2"
    junk.write_text("(assert (this is not smt\n")
    pool = DaskPool(cluster.scheduler_address, "z3")
    try:
        assert pool.workers == 2
        futs = [pool.submit(_solve, str(p), 10.0) for p in (good, junk, tmp_path / "missing.smt2")]
        done, _ = wait(futs, timeout=30, return_when=FIRST_COMPLETED)
        assert done
        sat, bad, missing = (f.result(timeout=30) for f in futs)
        assert sat.status == "sat" and sat.model == {"a": True}
        assert bad.status == "unknown" and bad.reason
        assert missing.status == "unknown" and "cannot read" in missing.reason
    finally:
        pool.shutdown(cancel_futures=True)
    # a worker-side failure to create the solver is unknown with the reason
    version, out = solve_text("(check-sat)", 1.0, "no-such-solver")
    assert out.status == "unknown" and "no-such-solver" in out.reason


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_a_quick_one_line_error(tmp_path, small_net):
    d = tmp_path / "obl"
    lo, hi = np.array([[-0.5, 0.25, 1.0]], F32), np.array([[0.5, 0.5, 1.25]], F32)
    generate_dir(small_net, lo, hi, d, model="small")
    addr = f"tcp://127.0.0.1:{_free_port()}"
    t0 = time.monotonic()
    with pytest.raises(NnlemmaError) as err:
        discharge(d, DischargeOptions(scheduler=addr, cache="", progress=False))
    assert time.monotonic() - t0 < 15
    assert isinstance(err.value, SchedulerError)
    msg = str(err.value)
    assert addr in msg and "\n" not in msg
    assert not (d / "results.json").exists()
