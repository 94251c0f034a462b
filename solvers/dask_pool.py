"""Discharge on a Dask cluster: ``nnlemma obligations discharge DIR --scheduler tcp://HOST:PORT``.

What runs where
    The *client* (the ``discharge`` process) streams the manifest, consults the proof cache, reads
    each obligation's SMT-LIB file from ``DIR`` and submits its **text** to the scheduler. The
    Dask *workers* only run :func:`solve_text`: create a solver with :func:`solvers.get_solver`
    and call ``check_text(text, timeout_s)``. Replay of counterexamples, the cache, the statuses
    and ``results.json`` all stay on the client, exactly as with the local process pool.

What goes over the wire
    To the workers: the SMT-LIB text of the obligation, the solver name and the time limit —
    never a file path (workers may be other machines without access to ``DIR``). Back: the
    worker's solver version and an :class:`~solvers.outcome.Outcome` (status, seconds, model as
    bit patterns / Fractions / bools, reason). Texts travel inside the task message through the
    scheduler, which is fine for obligation-sized scripts (kilobytes).

Which solver
    The one named by the client: the discharge's solver, or Z3 for an obligation with real
    arithmetic when that solver has none (the rule of ``discharge._solve``, decided on the client
    from the manifest's ``logic``, so the worker just runs the solver it is told to).

What is trusted
    Only the solver's *status*, and only under the stated solver version: every worker reports the
    version of the solver it ran, and an answer from a worker whose version differs from the
    client's version of that solver becomes ``unknown`` (the proof cache and ``results.json`` are
    labelled with the client's version). A ``sat`` model is not trusted at all: ``discharge`` replays it on the
    float32 kernel on the client (``refuted`` or ``encoder-disagreement``). Any failure — the
    solver not installed on a worker, an exception, a killed worker, a lost scheduler, a
    cancelled task — becomes ``unknown`` with the reason: a crash never becomes a proof.

Threads
    Solver contexts (Z3's in particular) must not be shared across threads, and a Dask worker may
    run several tasks at once in its thread pool. :func:`solve_text` therefore keeps one solver
    per worker *thread* (``threading.local``), created on the thread's first task and reused for
    the next ones (as the local pool keeps one per process). ``DaskPool.workers`` is the total
    number of worker threads, so ``discharge`` keeps about four tasks per thread in flight.

Identical texts are computed every time they are submitted (``pure=False``): ``discharge``
already solves each formula hash once per run, and a content-keyed task could be shared with an
earlier client's task submitted with a different time limit.

Remote workers need this package (``solvers`` and ``encoders``) and the chosen solver installed,
at the same solver version as the client.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from pathlib import Path
from typing import Callable

from nnlemma.errors import SchedulerError

from . import get_solver
from .outcome import Outcome

CONNECT_TIMEOUT_S = 10.0  # connecting to the scheduler, and waiting for its first worker

_LOCAL = threading.local()  # per worker thread: {solver name: (solver, version)}


def _thread_solver(name: str):
    cache = getattr(_LOCAL, "solvers", None)
    if cache is None:
        cache = _LOCAL.solvers = {}
    if name not in cache:
        s = get_solver(name)
        cache[name] = (s, s.version)
    return cache[name]


def solve_text(text: str, timeout_s: float, solver: str) -> tuple[str, Outcome]:
    """Runs on a Dask worker: ``(solver version, outcome)`` for one SMT-LIB script, solved by
    this thread's ``solver``. Never raises: any exception is an ``unknown`` outcome with the
    reason."""
    try:
        s, version = _thread_solver(solver)
    except Exception as exc:
        return "?", Outcome("unknown", 0.0, solver,
                            reason=f"worker cannot create solver {solver!r}: {type(exc).__name__}: {exc}")
    try:
        return version, s.check_text(text, timeout_s)
    except Exception as exc:  # a backend bug must not become a proof
        return version, Outcome("unknown", 0.0, s.name,
                                reason=f"solver crashed: {type(exc).__name__}: {exc}")


def _worker_version(solver: str) -> str:
    """Runs on each worker at connect time (``Client.run``): its version of ``solver``."""
    return get_solver(solver).version


def _one_line(exc: BaseException) -> str:
    msg = " ".join(str(exc).split()) or type(exc).__name__
    return msg if len(msg) <= 200 else msg[:197] + "..."


class DaskPool:
    """A ``concurrent.futures``-style pool backed by a running Dask scheduler (``tcp://HOST:PORT``).

    Only the client is created and closed here; the cluster (scheduler and workers) is started
    and stopped by whoever runs it. Raises :class:`~nnlemma.errors.SchedulerError` (one line,
    naming the address) when the scheduler cannot be reached within ``connect_timeout`` seconds,
    has no worker within that time, or its workers cannot run ``solver`` at the client's version.
    """

    def __init__(self, address: str, solver: str, connect_timeout: float = CONNECT_TIMEOUT_S):
        try:
            from distributed import Client
        except ImportError:
            raise SchedulerError(f"--scheduler {address}: Dask is not installed "
                                 "(pip install 'dask[distributed]')") from None
        from .discharge import _NO_REALS  # the local pool's fallback rule (lazy: no import cycle)
        self.address = address
        self.solver = solver
        self.version = get_solver(solver).version
        self._versions = {solver: self.version}  # the client's version of each solver used
        self._reals_solver = "z3" if solver in _NO_REALS else solver
        self._lock = threading.Lock()
        self._pending: dict = {}  # dask future -> (its concurrent.futures.Future, solver name)
        self._closed = False
        t0 = time.monotonic()
        try:
            self.client = Client(address, timeout=connect_timeout, set_as_default=False)
        except Exception as exc:
            raise SchedulerError(f"cannot connect to the Dask scheduler at {address} within "
                                 f"{connect_timeout:g} s: {_one_line(exc)}") from None
        try:
            left = max(1.0, connect_timeout - (time.monotonic() - t0))
            try:
                self.client.wait_for_workers(1, timeout=left)
            except Exception:
                raise SchedulerError(f"the Dask scheduler at {address} has no worker "
                                     f"(waited {connect_timeout:g} s)") from None
            self._check_versions()
            self.workers = max(1, sum(self.client.nthreads().values()))
        except BaseException:
            self.client.close()
            raise

    def _check_versions(self) -> None:
        got = self.client.run(_worker_version, self.solver, on_error="return")
        for worker, v in sorted(got.items()):
            if isinstance(v, BaseException):
                raise SchedulerError(f"Dask worker {worker} (scheduler {self.address}) cannot run "
                                     f"solver {self.solver!r}: {_one_line(v)}")
            if v != self.version:
                raise SchedulerError(f"Dask worker {worker} (scheduler {self.address}) has {v}, "
                                     f"the client has {self.version}: results would be mislabelled")

    def submit(self, fn: Callable, path: str, timeout_s: float, logic: str = "QF_FP") -> cf.Future:
        """Solve the SMT-LIB file at ``path`` on the cluster; a Future of its :class:`Outcome`.

        ``fn`` is the local pool's task function (``discharge._solve``, which reads ``path`` on
        the worker); it is accepted for interface compatibility and not used: the file is read
        *here* and its text is sent, and the worker runs :func:`solve_text` instead. ``logic``
        (the manifest's) picks Z3 for real arithmetic when the solver has none, as ``_solve``."""
        out: cf.Future = cf.Future()
        name = self.solver if logic == "QF_FP" else self._reals_solver
        try:
            text = Path(path).read_text()
        except OSError as exc:
            out.set_result(Outcome("unknown", 0.0, name, reason=f"cannot read {path}: {exc}"))
            return out
        if name not in self._versions:
            try:
                self._versions[name] = get_solver(name).version
            except Exception as exc:
                out.set_result(Outcome("unknown", 0.0, name, reason=_one_line(exc)))
                return out
        try:
            dfut = self.client.submit(solve_text, text, timeout_s, name, pure=False)
        except Exception as exc:
            out.set_result(Outcome("unknown", 0.0, name,
                                   reason=f"could not submit to {self.address}: {_one_line(exc)}"))
            return out
        with self._lock:
            self._pending[dfut] = (out, name)
        dfut.add_done_callback(self._done)  # runs in a client callback thread
        return out

    def _done(self, dfut) -> None:
        with self._lock:
            out, name = self._pending.pop(dfut, (None, None))
        if out is None or out.done():
            return
        try:
            version, outcome = dfut.result()  # raises the task's error, or why it was cancelled
            if version != self._versions[name] and outcome.status != "unknown":
                outcome = Outcome("unknown", outcome.seconds, outcome.solver,
                                  reason=f"worker ran {version}, not the client's {self._versions[name]}")
        except BaseException as exc:  # a killed worker, a lost scheduler: never a proof
            outcome = Outcome("unknown", 0.0, name,
                              reason=f"Dask task {dfut.status}: {type(exc).__name__}: {_one_line(exc)}")
        try:
            out.set_result(outcome)
        except cf.InvalidStateError:  # cancelled by shutdown meanwhile
            pass

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        """Close the client (never the cluster). With ``cancel_futures`` the tasks still pending
        are cancelled on the cluster and their Futures cancelled here; without it, ``wait``
        waits for them first."""
        if self._closed:
            return
        self._closed = True
        with self._lock:
            pending = {dfut: out for dfut, (out, _) in self._pending.items()}
        try:
            if cancel_futures and pending:
                for out in pending.values():
                    out.cancel()
                try:
                    self.client.cancel(list(pending))
                except Exception:
                    pass
            elif wait and pending:
                cf.wait(list(pending.values()))
        finally:
            self.client.close()
