"""The obligations directory: ``manifest.json`` plus one SMT-LIB2 file per distinct formula.

``DIR/smt2/<hash>.smt2`` is self-contained (declarations, the lemma's negation, ``check-sat``):
``unsat`` from any FP solver means the lemma holds. Equal formulas (same hash) share one file.

``manifest.json`` is one JSON object, written so it can also be *streamed*: the header keys come
first, then ``"obligations": [`` on its own line, then exactly one obligation entry per line, then
``],`` and the trailer (gaps, counts). :func:`iter_entries` reads one line at a time, so a manifest
with 10^5 obligations is never held whole in memory; ``json.load`` reads the same file whole.
Files are written to a temporary name and renamed, so a killed run leaves no half-written file
under the final name.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from nnlemma.errors import InputError

from .fp_transfer import Gap
from .model import Obligation

FORMAT = "nnlemma-obligations/1"
_START = '"obligations": ['


def _atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def entry(ob: Obligation, file: str) -> dict:
    return {"id": ob.id, "kind": ob.kind, "op": ob.op, "logic": ob.logic, "hash": ob.formula_hash,
            "file": file, "statement": ob.statement, "provenance": ob.provenance, "replay": ob.replay}


def write(out_dir: str | os.PathLike, header: dict, items: Iterable[Obligation | Gap],
          progress=None) -> dict:
    """Stream ``items`` into ``out_dir``; returns the trailer (counts and gaps)."""
    out = Path(out_dir)
    (out / "smt2").mkdir(parents=True, exist_ok=True)
    final = out / "manifest.json"
    tmp = out / f".manifest.json.{os.getpid()}.tmp"
    gaps: list[dict] = []
    by_kind: Counter = Counter()
    written: set[str] = set()
    n = 0
    with open(tmp, "w") as f:
        f.write("{\n")
        for k, v in dict(header, format=FORMAT).items():
            f.write(f"{json.dumps(k)}: {json.dumps(v)},\n")
        f.write(_START + "\n")
        for item in items:
            if isinstance(item, Gap):
                gaps.append({"node": item.node, "op": item.op, "reason": item.reason})
                continue
            h = item.formula_hash
            rel = f"smt2/{h[:24]}.smt2"
            if h not in written:
                written.add(h)
                if not (out / rel).exists():
                    _atomic(out / rel, item.smt2)
            f.write(("," if n else "") + json.dumps(entry(item, rel)) + "\n")
            n += 1
            by_kind[item.kind] += 1
            if progress is not None:
                progress(1)
        trailer = {"counts": {"obligations": n, "distinct_formulas": len(written), **by_kind},
                   "gaps": gaps}
        f.write("],\n")
        f.write(",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in trailer.items()))
        f.write("\n}\n")
    os.replace(tmp, final)
    return trailer


def _open(path: Path):
    manifest = path / "manifest.json" if path.is_dir() else path
    try:
        return open(manifest, encoding="utf-8", errors="strict")
    except OSError as exc:
        raise InputError(f"{manifest}: cannot read the obligations manifest ({exc.strerror})") from None


def read_header(path: str | os.PathLike) -> dict:
    """The header and trailer keys (everything but the obligation entries), streaming."""
    part = []
    try:
        with _open(Path(path)) as f:
            for line in f:
                if line.strip() == _START:
                    for line in f:
                        if line.startswith("],"):
                            break
                    continue
                part.append(line)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not an nnlemma obligations manifest (not UTF-8 text)") from None
    text = "".join(part)
    try:
        out = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not an nnlemma obligations manifest ({exc.msg})") from None
    found = out.get("format") if isinstance(out, dict) else type(out).__name__
    if found != FORMAT:
        raise InputError(f"{path}: unknown manifest format {found!r} (want {FORMAT})")
    return out


def _lines(f, path) -> Iterator[str]:
    try:
        yield from f
    except UnicodeDecodeError:
        raise InputError(f"{path}: not an nnlemma obligations manifest (not UTF-8 text)") from None


def iter_entries(path: str | os.PathLike) -> Iterator[dict]:
    """The obligation entries one at a time (one line each; never the whole list)."""
    with _open(Path(path)) as f:
        lines = _lines(f, path)
        for line in lines:
            if line.strip() == _START:
                break
        else:
            raise InputError(f"{path}: no obligation list in the manifest")
        for k, line in enumerate(lines):
            if line.startswith("],"):
                return
            try:
                yield json.loads(line[1:] if line.startswith(",") else line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}: obligation entry {k} is malformed ({exc.msg})") from None
        raise InputError(f"{path}: the manifest is truncated (no end of the obligation list)")
