"""Result files: the VNN-COMP result format, JSON, and instance CSVs — all written atomically."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

from ..errors import InputError
from .api import VerifyResult


def atomic_write(path: str | os.PathLike, text: str) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def atomic_save(path: str | os.PathLike, write) -> None:
    """``write(tmp_path)`` into a temporary file beside ``path``, then rename it over ``path`` (for
    writers that take a path, e.g. matplotlib's savefig)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix + ".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def vnncomp_text(result: VerifyResult) -> str:
    """VNN-COMP (2022+) result file: the verdict, and for ``sat`` the counterexample as
    ``((X_0 v) ... (Y_0 v))``. Values are the float32 numbers written exactly (shortest float64
    repr of the float32 value, which reads back as the same number)."""
    if result.status != "sat":
        return result.status + "\n"
    pairs = [f"(X_{i} {float(v)!r})" for i, v in enumerate(result.x)]
    pairs += [f"(Y_{j} {float(v)!r})" for j, v in enumerate(result.y)]
    return "sat\n(" + "\n ".join(pairs) + ")\n"


def write_json(path, payload: dict) -> None:
    atomic_write(path, json.dumps(payload, indent=1) + "\n")


def read_instances(path: str | os.PathLike) -> list[tuple[Path, Path, float]]:
    """VNN-COMP instance CSV rows ``onnx,vnnlib,timeout`` with paths relative to the CSV."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None
    rows = []
    for k, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or not "".join(row).strip():
            continue
        if len(row) != 3:
            raise InputError(f"{path}:{k}: expected 'onnx,vnnlib,timeout', got {len(row)} fields")
        try:
            timeout = float(row[2])
        except ValueError:
            raise InputError(f"{path}:{k}: timeout {row[2]!r} is not a number") from None
        rows.append((path.parent / row[0].strip(), path.parent / row[1].strip(), timeout))
    if not rows:
        raise InputError(f"{path}: no instances")
    return rows
