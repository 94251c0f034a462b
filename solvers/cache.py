"""Embedded proof cache: definitive solver results keyed by formula hash and solver version.

A rerun on an unchanged model looks every obligation up here first, so nothing is proved twice,
and a run killed mid-way (SIGKILL included) resumes from what it had already committed.

**What is stored.** One row per ``(formula_hash, solver)``, where ``solver`` names the solver *and
its version* (``"z3-4.15.4"``), so an upgrade is a cache miss rather than a silently trusted old
answer. Only definitive results are stored: ``unsat`` (the lemma holds) and ``sat`` (with its
model). ``unknown`` (timeout, solver ``unknown``, crash) is never stored: a longer time limit or
another machine may decide it next time. ``get`` returns ``None`` for a miss.

**Durability under SIGKILL.** The file is SQLite in WAL mode and every :meth:`ProofCache.put` is
one autocommit statement, i.e. its own transaction. When ``put`` returns, the transaction's pages
and its commit frame have been handed to the kernel with ``write(2)``; killing the process does not
take the kernel's page cache with it, so the transaction is on its way to the disk. On the next
open SQLite replays the WAL up to the last *valid* commit frame (frames carry checksums): a
transaction cut off half-written by the kill has no valid commit frame and is dropped as a whole.
So after a kill every ``put`` that returned is present and the database is consistent.

``synchronous=NORMAL`` is chosen over ``FULL``: with WAL, ``NORMAL`` syncs the WAL only at
checkpoints instead of at every commit. It is exactly as safe against a process kill (the argument
above needs no ``fsync``); only an operating-system crash or power loss can lose the last few
commits, and even then the database rolls back to an earlier consistent state, never corrupts.
For a cache that loss is harmless (the lemmas are proved again, never reported proved wrongly),
and ``FULL`` would cost one ``fsync`` per put. WAL needs a local file system (not NFS/SMB).

**Concurrency.** Several worker processes may write the same file at once: each opens its own
:class:`ProofCache` (one connection per process; a cache object carried across ``fork`` refuses to
be used), and ``busy_timeout`` makes a writer wait for the lock instead of failing. WAL readers
never block the writer. The one step SQLite does not wait for by itself, the first opener's switch
of a new file to WAL (racing openers fail at once), is retried within the same timeout.

**Format.** ``PRAGMA application_id`` marks the file as an nnlemma cache and ``PRAGMA
user_version`` holds the schema version: a foreign SQLite file, a newer schema or a file that is
not SQLite at all raises :class:`~nnlemma.errors.CacheError` naming the file. Model values are JSON:
FP values as their IEEE bit-pattern ints, reals as ``"p/q"`` strings, Booleans as ``true``/``false``.
"""

from __future__ import annotations

import json
import numbers
import os
import sqlite3
import time
from fractions import Fraction
from pathlib import Path

from nnlemma.errors import CacheError

from .outcome import Outcome

SCHEMA_VERSION = 1
APPLICATION_ID = 0x6E6E6C6D  # "nnlm"
DEFINITIVE = ("unsat", "sat")

_SCHEMA = """
CREATE TABLE proofs (
    formula_hash TEXT NOT NULL,
    solver       TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('unsat', 'sat')),
    seconds      REAL NOT NULL,
    model        TEXT NOT NULL DEFAULT '{}',
    reason       TEXT NOT NULL DEFAULT '',
    created      REAL NOT NULL,
    PRIMARY KEY (formula_hash, solver)
) WITHOUT ROWID
"""

# First writer wins: a repeated put of the same status keeps the stored row (a no-op update, so
# the row count says "matched"); a put contradicting the stored status matches nothing.
_UPSERT = """
INSERT INTO proofs (formula_hash, solver, status, seconds, model, reason, created)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (formula_hash, solver) DO UPDATE SET created = proofs.created
WHERE proofs.status = excluded.status
"""


class ProofCache:
    """A proof cache file, opened (and created with its parent directory) at ``path``.

    Use as a context manager or call :meth:`close`. ``timeout`` is how long (seconds) an open or
    a write waits for another process's lock before raising :class:`~nnlemma.errors.CacheError`.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 30.0):
        self.path = Path(path)
        self._pid = os.getpid()
        self._con: sqlite3.Connection | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CacheError(f"{self.path}: cannot create the cache directory: {exc}") from exc
        con = None
        try:
            # isolation_level=None: autocommit, so each statement is its own transaction
            con = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
            con.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._setup(con, deadline=time.monotonic() + timeout)
        except sqlite3.Error as exc:
            if con is not None:
                con.close()
            raise CacheError(f"{self.path}: not a usable proof cache: {_one_line(exc)}") from exc
        except BaseException:
            if con is not None:
                con.close()
            raise
        self._con = con

    # -- opening ------------------------------------------------------------------------------

    def _setup(self, con: sqlite3.Connection, deadline: float) -> None:
        """Check the format, switch to WAL, create the schema if new. Every step is idempotent, so
        a step that meets a concurrent opener's lock is retried until ``deadline``: SQLite does not
        run the busy handler for ``PRAGMA journal_mode = WAL``, which needs exclusive access."""
        delay = 0.001
        while True:
            try:
                # first read: fails on a non-SQLite file; refuses a foreign one before touching it
                self._check_format(*self._inspect(con))
                mode = con.execute("PRAGMA journal_mode").fetchone()[0]
                if mode.lower() != "wal":  # WAL is a property of the file: only the first opener
                    mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise CacheError(f"{self.path}: cannot switch the proof cache to WAL mode "
                                     f"(journal mode stays {mode!r})")
                con.execute("PRAGMA synchronous = NORMAL")
                if self._inspect(con)[1] == 0:
                    self._create(con)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(2 * delay, 0.05)

    @staticmethod
    def _inspect(con: sqlite3.Connection) -> tuple[int, int, int]:
        """``(application_id, user_version, schema objects)`` read in one snapshot."""
        own = not con.in_transaction
        if own:
            con.execute("BEGIN")
        try:
            app = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            objects = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        finally:
            if own and con.in_transaction:
                con.execute("COMMIT")
        return app, version, objects

    def _check_format(self, app: int, version: int, objects: int) -> None:
        if (app, version, objects) == (0, 0, 0):
            return  # a new (empty) file: _create makes the schema
        if app != APPLICATION_ID:
            raise CacheError(f"{self.path}: SQLite file is not an nnlemma proof cache "
                             f"(application_id {app:#x}, {objects} schema objects)")
        if version != SCHEMA_VERSION:
            raise CacheError(f"{self.path}: proof cache schema version {version} is not supported "
                             f"(this nnlemma reads version {SCHEMA_VERSION}); use a newer nnlemma "
                             f"or another cache file")

    def _create(self, con: sqlite3.Connection) -> None:
        """Create the schema unless a concurrent opener has just done so (write lock first)."""
        con.execute("BEGIN IMMEDIATE")
        try:
            app, version, objects = self._inspect(con)
            self._check_format(app, version, objects)
            if version == 0:
                con.execute(_SCHEMA)
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise

    # -- use ----------------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._con is None:
            raise CacheError(f"{self.path}: proof cache is closed")
        if os.getpid() != self._pid:
            raise CacheError(f"{self.path}: proof cache opened in process {self._pid} used in "
                             f"process {os.getpid()}; open one ProofCache per process")
        return self._con

    def get(self, formula_hash: str, solver: str) -> Outcome | None:
        """The cached definitive outcome of ``formula_hash`` under ``solver`` (name and version),
        or ``None``. The returned outcome's ``solver`` is that key."""
        try:
            row = self._connection().execute(
                "SELECT status, seconds, model, reason FROM proofs "
                "WHERE formula_hash = ? AND solver = ?", (formula_hash, solver)).fetchone()
        except sqlite3.Error as exc:
            raise CacheError(f"{self.path}: proof cache read failed: {_one_line(exc)}") from exc
        if row is None or row[0] not in DEFINITIVE:
            return None
        status, seconds, model, reason = row
        return Outcome(status, seconds, solver, self._decode_model(model, formula_hash), reason)

    def put(self, formula_hash: str, solver: str, outcome: Outcome) -> bool:
        """Store a definitive outcome in its own committed transaction; ``True`` if it is now
        cached. ``unknown`` is not stored (returns ``False``). A cached entry with the same status
        is kept as it is; one with the *other* status means the solver contradicts itself (or the
        hash collides) and raises :class:`~nnlemma.errors.CacheError`."""
        if outcome.status == "unknown":
            return False
        if outcome.status not in DEFINITIVE:
            raise ValueError(f"outcome status {outcome.status!r} is not unsat, sat or unknown")
        row = (formula_hash, solver, outcome.status, float(outcome.seconds),
               _encode_model(outcome.model), outcome.reason or "", time.time())
        con = self._connection()
        try:
            changed = con.execute(_UPSERT, row).rowcount
            if changed == 0:
                held = con.execute("SELECT status FROM proofs WHERE formula_hash = ? AND solver = ?",
                                   (formula_hash, solver)).fetchone()
        except sqlite3.Error as exc:
            raise CacheError(f"{self.path}: proof cache write failed: {_one_line(exc)}") from exc
        if changed == 0:
            raise CacheError(f"{self.path}: {solver} answered {outcome.status} for formula "
                             f"{formula_hash} but the cache holds {held[0] if held else '?'}; "
                             f"refusing to overwrite a definitive result")
        return True

    def stats(self) -> dict[str, int]:
        """Number of cached entries by status (``unsat`` and ``sat`` always present)."""
        counts = dict.fromkeys(DEFINITIVE, 0)
        try:
            rows = self._connection().execute(
                "SELECT status, count(*) FROM proofs GROUP BY status").fetchall()
        except sqlite3.Error as exc:
            raise CacheError(f"{self.path}: proof cache read failed: {_one_line(exc)}") from exc
        counts.update(rows)
        return counts

    def __len__(self) -> int:
        return sum(self.stats().values())

    def _decode_model(self, text: str, formula_hash: str) -> dict[str, int | Fraction | bool]:
        try:
            raw = json.loads(text)
            if not isinstance(raw, dict):
                raise ValueError("not a JSON object")
            return {name: _decode_value(v) for name, v in raw.items()}
        except (ValueError, TypeError, ZeroDivisionError) as exc:
            raise CacheError(f"{self.path}: corrupt model for formula {formula_hash}: "
                             f"{_one_line(exc)}") from exc

    # -- lifetime -----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent). In a forked child the inherited connection is only
        dropped, never closed: closing it there could checkpoint under the parent's feet."""
        con, self._con = self._con, None
        if con is not None and os.getpid() == self._pid:
            con.close()

    def __enter__(self) -> ProofCache:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProofCache({str(self.path)!r}{'' if self._con else ', closed'})"


def _encode_model(model: dict) -> str:
    out = {}
    for name, v in model.items():
        if isinstance(v, bool):
            out[name] = v
        elif isinstance(v, Fraction):
            out[name] = f"{v.numerator}/{v.denominator}"
        elif isinstance(v, numbers.Integral):
            out[name] = int(v)
        else:
            raise TypeError(f"model value of {name!r} is a {type(v).__name__}; expected an FP bit "
                            f"pattern (int), a Fraction or a bool")
    return json.dumps(out, sort_keys=True, separators=(",", ":"))


def _decode_value(v):
    if isinstance(v, (bool, int)):
        return v
    if isinstance(v, str) and v.count("/") == 1:
        return Fraction(v)
    raise ValueError(f"unexpected model value {v!r}")


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python >= 3.11
    if code is not None:
        return code & 0xFF in (5, 6)  # SQLITE_BUSY, SQLITE_LOCKED (and their extended codes)
    return "locked" in str(exc) or "busy" in str(exc)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
