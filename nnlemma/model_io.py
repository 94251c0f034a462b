"""Load a model file by extension: ``.onnx`` (ONNX importer) or ``.json`` (nnlemma IR)."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelLoadError
from .ir.graph import Graph


def load_model(path: str | os.PathLike, *, allow_nonfinite: bool = False) -> Graph:
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"{path}: no such model file")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from .onnx_import import load_onnx

        return load_onnx(path, allow_nonfinite=allow_nonfinite)
    if suffix == ".json":
        from .ir.serialize import load

        return load(path)
    raise ModelLoadError(f"{path}: unknown model format {suffix!r} (expected .onnx or .json)")
