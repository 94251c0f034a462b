"""JSON save/load of graphs, bit-exact.

Parameters are stored as base64 of their little-endian float32 bytes, so every bit (−0, NaN
payloads, subnormals) survives; float attributes are float32 values, which ``repr`` round-trips
exactly (``inf`` is written as the strings ``"inf"``/``"-inf"`` to keep the JSON standard).
Loading goes through the :class:`Builder`, so a hand-edited or corrupted file gets the same
checks as a freshly built graph.
"""

from __future__ import annotations

import base64
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import IRError, ModelLoadError
from .builder import Builder
from .graph import Graph

FORMAT = "nnlemma-ir"
VERSION = 1


def _enc_attr(v: Any) -> Any:
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if isinstance(v, tuple):
        return [_enc_attr(x) for x in v]
    return v


def _dec_attr(v: Any) -> Any:
    if v == "inf":
        return math.inf
    if v == "-inf":
        return -math.inf
    if isinstance(v, list):
        return tuple(_dec_attr(x) for x in v)
    return v


def to_dict(graph: Graph) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "inputs": [{"id": v.id, "shape": list(v.shape), "name": v.name} for v in graph.inputs],
        "params": [{"id": p.value.id, "shape": list(p.value.shape), "name": p.value.name,
                    "f32le": base64.b64encode(p.data.astype("<f4").tobytes()).decode("ascii")}
                   for p in graph.params],
        "equations": [{"id": e.out.id, "op": e.op, "inputs": list(e.inputs),
                       "attrs": {k: _enc_attr(v) for k, v in e.attrs},
                       "name": e.name, "out_name": e.out.name, "source": e.source}
                      for e in graph.equations],
        "outputs": list(graph.outputs),
    }


def from_dict(d: dict, where: str = "<dict>") -> Graph:
    try:
        if d.get("format") != FORMAT or d.get("version") != VERSION:
            raise ModelLoadError(f"{where}: not an {FORMAT} v{VERSION} file")
        b = Builder()
        for v in d["inputs"]:
            b.input(v["shape"], v.get("name"), vid=v["id"])
        for p in d["params"]:
            raw = base64.b64decode(p["f32le"], validate=True)
            arr = np.frombuffer(raw, dtype="<f4")
            n = int(np.prod(p["shape"], dtype=np.int64))
            if arr.size != n:
                raise ModelLoadError(f"{where}: parameter %{p['id']} has {arr.size} values, shape needs {n}")
            b.param(arr.reshape(p["shape"]).astype(np.float32), p.get("name"), vid=p["id"])
        for e in d["equations"]:
            b.eqn(e["op"], e["inputs"], {k: _dec_attr(v) for k, v in e["attrs"].items()},
                  name=e.get("name"), source=e.get("source"), vid=e["id"], out_name=e.get("out_name"))
        return b.build(d["outputs"])
    except IRError as exc:
        raise ModelLoadError(f"{where}: {exc}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{where}: malformed IR JSON ({type(exc).__name__}: {exc})") from None


def dumps(graph: Graph) -> str:
    return json.dumps(to_dict(graph), indent=1, sort_keys=True)


def loads(text: str, where: str = "<string>") -> Graph:
    try:
        d = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(d, dict):
        raise ModelLoadError(f"{where}: not an {FORMAT} file")
    return from_dict(d, where)


def save(graph: Graph, path: str | os.PathLike) -> None:
    """Write atomically: a temporary file in the same folder, then rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(graph))
    os.replace(tmp, path)


def load(path: str | os.PathLike) -> Graph:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot read ({exc.strerror})") from None
    return loads(text, str(path))
