"""Writing a benchmark result file atomically (temporary file, then rename), so an interrupted
run never leaves a truncated JSON behind."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path


def write_result(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(payload, f, indent=1)
    os.replace(tmp, path)
