"""Weights on disk: ``.npz`` archives keyed by PyTorch-style state-dict names.

Loading never unpickles (``allow_pickle=False``); saving is atomic (temporary file, then rename),
so an interrupted save never leaves a truncated archive behind.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelLoadError


def save_npz(state: dict[str, np.ndarray], path: str | os.PathLike) -> None:
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **{k: np.asarray(v, dtype=np.float32) for k, v in state.items()})
    os.replace(tmp, path)


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ModelLoadError(f"{path}: no such file") from None
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelLoadError(f"{path}: not a readable .npz weights file ({exc})") from None
