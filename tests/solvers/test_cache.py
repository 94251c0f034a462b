"""The proof cache: exact round trips, only definitive results, concurrent writers, SIGKILL.

The SIGKILL test runs a writer in a separate interpreter, kills it mid-loop and checks that every
put it reported as returned is in the reopened file and that the file passes an integrity check.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import queue
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest

from nnlemma.errors import CacheError, NnlemmaError
from solvers.cache import ProofCache
from solvers.outcome import Outcome

ROOT = Path(__file__).resolve().parents[2]
Z3 = "z3-4.15.4"


def rows(path: Path) -> list[tuple]:
    """Every stored row, read with plain sqlite3 (not through the class under test)."""
    con = sqlite3.connect(path)
    try:
        return con.execute("SELECT formula_hash, solver, status FROM proofs ORDER BY 1, 2").fetchall()
    finally:
        con.close()


# -- round trips and what is (not) cached ----------------------------------------------------

def test_round_trip_unsat_and_sat_with_exact_model_values(tmp_path):
    path = tmp_path / "sub" / "dir" / "cache.db"  # parent directories are created
    model = {"neg_zero": 0x80000000, "nan": 0x7FC00000, "pos_zero": 0, "inf": 0x7F800000,
             "r": Fraction(-7, 3), "r_int": Fraction(5), "b": True, "c": False}
    with ProofCache(path) as cache:
        assert cache.put("hash-unsat", Z3, Outcome("unsat", 1.25, "z3")) is True
        assert cache.put("hash-sat", Z3, Outcome("sat", 0.5, "z3", dict(model))) is True
    with ProofCache(path) as cache:  # a fresh connection: the values come from the file
        unsat = cache.get("hash-unsat", Z3)
        sat = cache.get("hash-sat", Z3)
        assert cache.stats() == {"unsat": 1, "sat": 1}
        assert len(cache) == 2
    assert unsat == Outcome("unsat", 1.25, Z3, {}, "")
    assert (sat.status, sat.seconds, sat.solver, sat.reason) == ("sat", 0.5, Z3, "")
    assert sat.model == model
    # exact types: a bit pattern stays an int (not a bool or float), a real a Fraction
    assert {k: type(v) for k, v in sat.model.items()} == {
        "neg_zero": int, "nan": int, "pos_zero": int, "inf": int,
        "r": Fraction, "r_int": Fraction, "b": bool, "c": bool}
    assert sat.model["neg_zero"] == 2147483648 and sat.model["nan"] == 2143289344


def test_unknown_is_never_cached(tmp_path):
    path = tmp_path / "cache.db"
    with ProofCache(path) as cache:
        assert cache.put("h", Z3, Outcome("unknown", 10.0, "z3", reason="timeout")) is False
        assert cache.get("h", Z3) is None
        assert cache.stats() == {"unsat": 0, "sat": 0}
    assert rows(path) == []


def test_schema_refuses_non_definitive_rows(tmp_path):
    path = tmp_path / "cache.db"
    ProofCache(path).close()
    con = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError):  # the schema itself refuses non-definitive rows
        con.execute("INSERT INTO proofs VALUES ('h', ?, 'unknown', 1.0, '{}', 'timeout', 0.0)", (Z3,))
    con.close()


def test_other_solver_version_or_formula_is_a_miss(tmp_path):
    with ProofCache(tmp_path / "cache.db") as cache:
        cache.put("h", Z3, Outcome("unsat", 0.1, "z3"))
        assert cache.get("h", Z3) is not None
        assert cache.get("h", "z3-4.15.3") is None
        assert cache.get("h", "bitwuzla-0.7.0") is None
        assert cache.get("h2", Z3) is None


def test_repeated_put_keeps_first_and_contradiction_raises(tmp_path):
    path = tmp_path / "cache.db"
    with ProofCache(path) as cache:
        cache.put("h", Z3, Outcome("unsat", 1.0, "z3"))
        assert cache.put("h", Z3, Outcome("unsat", 2.0, "z3")) is True
        assert cache.get("h", Z3).seconds == 1.0
        with pytest.raises(CacheError, match="holds unsat"):
            cache.put("h", Z3, Outcome("sat", 0.1, "z3", {"x": 1}))
        assert cache.get("h", Z3).status == "unsat"


# -- concurrent writers -----------------------------------------------------------------------

def _writer(path: str, worker: int, count: int, barrier) -> None:
    barrier.wait(timeout=30)  # both processes open the (not yet existing) file at the same time
    with ProofCache(path) as cache:
        for i in range(count):
            status = "unsat" if i % 2 else "sat"
            cache.put(f"w{worker}-{i}", Z3, Outcome(status, 0.01, "z3", {"x": i} if i % 2 == 0 else {}))


def test_two_processes_write_concurrently(tmp_path):
    path = tmp_path / "shared.db"
    # fork is ~50x faster to start here; each child still opens its own connection
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    barrier = ctx.Barrier(2)
    procs = [ctx.Process(target=_writer, args=(str(path), w, 200, barrier)) for w in range(2)]
    for p in procs:
        p.start()
    try:
        for p in procs:
            p.join(timeout=60)
        assert [p.exitcode for p in procs] == [0, 0]
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join(5)
    stored = rows(path)
    assert len(stored) == 400
    assert {h for h, _, _ in stored} == {f"w{w}-{i}" for w in range(2) for i in range(200)}
    with ProofCache(path) as cache:
        assert cache.stats() == {"unsat": 200, "sat": 200}
        assert cache.get("w1-198", Z3).model == {"x": 198}


def _opener(path: str, worker: int, barrier) -> None:
    barrier.wait(timeout=30)
    with ProofCache(path) as cache:
        cache.put(f"o{worker}", Z3, Outcome("unsat", 0.01, "z3"))


def test_many_processes_open_a_new_file_at_once(tmp_path):
    # the first open switches the file to WAL, which needs exclusive access; when two openers
    # race for it SQLite fails one at once (deadlock avoidance, no busy handler) and the loser
    # must retry, not fail. The race is timing-dependent: 30 fresh files make a regression show
    # in most runs (7 of 8 runs failed without the retry, each trial ~0.05 s).
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    for trial in range(30):
        path = tmp_path / f"fresh{trial}.db"
        barrier = ctx.Barrier(8)
        procs = [ctx.Process(target=_opener, args=(str(path), w, barrier)) for w in range(8)]
        for p in procs:
            p.start()
        try:
            for p in procs:
                p.join(timeout=60)
            assert [p.exitcode for p in procs] == [0] * 8, f"trial {trial}"
        finally:
            for p in procs:
                if p.is_alive():
                    p.kill()
                    p.join(5)
        assert len(rows(path)) == 8


def test_cache_carried_across_fork_refuses_to_be_used(tmp_path):
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    with ProofCache(tmp_path / "cache.db") as cache:
        cache.put("h", Z3, Outcome("unsat", 0.1, "z3"))
        p = mp.get_context("fork").Process(target=_use_inherited, args=(cache,))
        p.start()
        p.join(timeout=30)
        assert p.exitcode == 0
        assert cache.get("h", Z3) is not None  # the parent's connection still works


def _use_inherited(cache: ProofCache) -> None:
    try:
        cache.get("h", Z3)
    except CacheError as exc:
        if "open one ProofCache per process" in str(exc):
            os._exit(0)
    os._exit(1)


# -- SIGKILL mid-run ------------------------------------------------------------------------

CHILD = textwrap.dedent("""
    import sys, time
    from fractions import Fraction
    from solvers.cache import ProofCache
    from solvers.outcome import Outcome
    cache = ProofCache(sys.argv[1])
    i = 0
    while True:
        cache.put(f"h{i}", "z3-test", Outcome("sat", 0.01, "z3", {"x": i, "r": Fraction(i, 7)}))
        i += 1
        print(i, flush=True)
        time.sleep(0.0002)
""")


def test_sigkill_loses_nothing_committed_and_leaves_no_corruption(tmp_path):
    path = tmp_path / "killed.db"
    target = 300
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(path)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue = queue.Queue()

    def pump():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    reported = 0
    try:
        deadline = time.monotonic() + 30
        while reported < target:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"writer reported only {reported} commits within 30 s")
            if line is None:
                proc.wait(5)
                pytest.fail(f"writer exited early ({proc.returncode}): {proc.stderr.read()[-2000:]}")
            reported = int(line)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=10) == -signal.SIGKILL
        # the writer may have printed more commits before the kill landed (a loaded machine):
        # everything it printed counts as reported
        while (line := lines.get(timeout=10)) is not None:
            reported = int(line)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()

    # killed, not closed: the write-ahead log is still there and must be recovered on open
    assert Path(f"{path}-wal").exists()
    con = sqlite3.connect(path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        con.close()
    with ProofCache(path) as cache:
        stored = len(cache)
        # every reported put is there; at most the put after the last report was also committed
        assert reported <= stored <= reported + 1
        for i in range(stored):
            got = cache.get(f"h{i}", "z3-test")
            assert got is not None, f"committed entry h{i} lost (reported {reported})"
            assert got.model == {"x": i, "r": Fraction(i, 7)}
        # resume: the run goes on from where it stopped
        assert cache.put(f"h{stored}", "z3-test", Outcome("unsat", 0.01, "z3"))
        assert len(cache) == stored + 1


# -- files that are not (our) caches --------------------------------------------------------

def test_corrupt_file_raises_cache_error_naming_it(tmp_path):
    path = tmp_path / "corrupt.db"
    junk = random.Random(1234).randbytes(16384)
    path.write_bytes(junk)
    with pytest.raises(CacheError) as info:
        ProofCache(path)
    assert isinstance(info.value, NnlemmaError)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    assert path.read_bytes() == junk  # left untouched


def test_newer_schema_or_foreign_database_raises(tmp_path):
    path = tmp_path / "cache.db"
    ProofCache(path).close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA user_version = 2")
    con.close()
    with pytest.raises(CacheError, match="schema version 2") as info:
        ProofCache(path)
    assert str(path) in str(info.value)

    foreign = tmp_path / "other.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE t (x)")
    con.commit()
    con.close()
    with pytest.raises(CacheError, match="not an nnlemma proof cache") as info:
        ProofCache(foreign)
    assert str(foreign) in str(info.value)
    con = sqlite3.connect(foreign)  # refused before anything was changed
    assert con.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    con.close()
