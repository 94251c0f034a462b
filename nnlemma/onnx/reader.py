"""Reading untrusted ONNX files safely.

* The file is opened once (non-blocking, so a FIFO cannot hang us), must be a regular file
  (``fstat`` on the open descriptor) of at most ``max_bytes`` bytes, is read capped at
  ``max_bytes + 1`` bytes (a file growing after the check cannot slip through) and is parsed from
  memory with ``onnx.load(..., load_external_data=False)``: onnx never opens another path.
* Any parse failure (``DecodeError`` or anything else protobuf raises) becomes a one-line
  :class:`ModelLoadError` naming the file.
* External tensor data is read by :class:`ExternalData`, never by onnx: ``location`` must be a
  relative path without ``..`` that resolves (after symlinks) to a regular file inside the model's
  folder; ``offset``/``length`` must lie within that file and match the tensor's byte size; the
  total of the model file and all external bytes is capped by ``max_bytes``.
"""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path, PurePosixPath, PureWindowsPath

import onnx

from ..errors import ModelLoadError


def one_line(text: object, limit: int = 300) -> str:
    """``text`` as a single line of at most ``limit`` characters (for error messages)."""
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[:limit] + "..."


def quote(name: str) -> str:
    """A name quoted for a one-line message (``repr`` escapes newlines and control characters)."""
    return repr(name if len(name) <= 200 else name[:200] + "...")


def open_regular(path: str | Path, where: str, what: str = "", nofollow: bool = False) -> int:
    """Open ``path`` read-only and return the descriptor, refusing anything but a regular file.

    ``O_NONBLOCK`` keeps a FIFO from blocking the open; the type check is on the opened file
    (``fstat``), so the file cannot be swapped between the check and the read."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | (getattr(os, "O_NOFOLLOW", 0) if nofollow else 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise ModelLoadError(f"{where}: no such {what or 'file'}") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"{where}: cannot open {what or 'file'} "
                             f"({one_line(getattr(exc, 'strerror', None) or exc)})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ModelLoadError(f"{where}: {what or 'path'} is not a regular file")
    return fd


def read_model(path: Path, max_bytes: int) -> tuple[onnx.ModelProto, int]:
    """Parse the model file; returns the model and its size in bytes."""
    where = str(path)
    with os.fdopen(open_regular(path, where), "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > max_bytes:
            raise ModelLoadError(f"{where}: file is {size} bytes, more than max_bytes={max_bytes}")
        try:
            data = f.read(max_bytes + 1)
        except OSError as exc:
            raise ModelLoadError(f"{where}: cannot read ({one_line(exc.strerror or exc)})") from None
    if len(data) > max_bytes:
        raise ModelLoadError(f"{where}: file is more than max_bytes={max_bytes} bytes")
    try:
        model = onnx.load(io.BytesIO(data), load_external_data=False)
    except Exception as exc:  # DecodeError, RuntimeError from the C++ parser, ...
        raise ModelLoadError(f"{where}: not a valid ONNX model ({type(exc).__name__}: {one_line(exc)})") from None
    if not model.HasField("graph") or not model.graph.output:
        raise ModelLoadError(f"{where}: not a valid ONNX model (no graph or no graph outputs)")
    _check_strings(model, where)
    return model, len(data)


def _is_repeated(fd) -> bool:
    rep = getattr(fd, "is_repeated", None)  # protobuf >= 5.x; older versions only have ``label``
    return bool(rep) if rep is not None else fd.label == fd.LABEL_REPEATED


def _check_strings(model: onnx.ModelProto, where: str) -> None:
    """Every string field must be text: protobuf (proto2) hands out invalid UTF-8 as ``bytes``,
    which would otherwise surface as a TypeError deep inside the importer."""
    stack = [model]
    while stack:
        msg = stack.pop()
        for fd, value in msg.ListFields():
            items = value if _is_repeated(fd) else [value]
            if fd.type == fd.TYPE_MESSAGE:
                stack.extend(items)
            elif fd.type == fd.TYPE_STRING and any(not isinstance(v, str) for v in items):
                raise ModelLoadError(f"{where}: not a valid ONNX model (invalid UTF-8 in a "
                                     f"{msg.DESCRIPTOR.name}.{fd.name} field)")


def _check_location(location: str, where: str) -> None:
    bad = None
    if not location:
        bad = "is empty"
    elif "\x00" in location or "\\" in location:
        bad = "contains a NUL or backslash"
    elif PurePosixPath(location).is_absolute() or PureWindowsPath(location).drive or location.startswith("~"):
        bad = "is an absolute path"
    elif ".." in PurePosixPath(location).parts:
        bad = "contains '..'"
    if bad:
        raise ModelLoadError(f"{where}: external data location {quote(location)} {bad}; "
                             "only paths inside the model's folder are allowed")


def _parse_int(entries: dict[str, str], key: str, where: str) -> int | None:
    if key not in entries:
        return None
    text = entries[key]
    if not (text.isascii() and text.isdigit()) or len(text) > 19:
        raise ModelLoadError(f"{where}: external data {key}={quote(text)} is not a non-negative integer")
    return int(text)


class ExternalData:
    """Reads external tensor bytes confined to the model's folder, within a byte budget."""

    def __init__(self, model_path: Path, budget: int) -> None:
        self.folder = os.path.realpath(model_path.absolute().parent)
        self.model_where = str(model_path)
        self.budget = budget

    def _resolve(self, location: str, where: str) -> str:
        _check_location(location, where)
        real = os.path.realpath(os.path.join(self.folder, location))
        if os.path.commonpath([real, self.folder]) != self.folder or real == self.folder:
            raise ModelLoadError(f"{where}: external data location {quote(location)} resolves outside "
                                 "the model's folder (symlink?)")
        return real

    def read(self, tensor: onnx.TensorProto, nbytes: int, where: str) -> bytes:
        """The ``nbytes`` bytes of ``tensor``'s external data; ``where`` names file and tensor."""
        entries = {e.key: e.value for e in tensor.external_data}
        real = self._resolve(entries.get("location", ""), where)
        offset = _parse_int(entries, "offset", where) or 0
        length = _parse_int(entries, "length", where)
        if length is not None and length != nbytes:
            raise ModelLoadError(f"{where}: external data length {length} does not match the tensor "
                                 f"size of {nbytes} bytes")
        if nbytes > self.budget:
            raise ModelLoadError(f"{where}: external data of {nbytes} bytes exceeds the remaining "
                                 f"max_bytes budget of {self.budget} bytes")
        data = self._read_range(real, offset, nbytes, length is None, where)
        self.budget -= nbytes
        return data

    @staticmethod
    def _read_range(real: str, offset: int, nbytes: int, to_eof: bool, where: str) -> bytes:
        with os.fdopen(open_regular(real, where, "external data file", nofollow=True), "rb") as f:
            size = os.fstat(f.fileno()).st_size
            # with a length: the range must fit; without: the data runs to the end of the file
            if offset + nbytes > size or (to_eof and size - offset != nbytes):
                raise ModelLoadError(f"{where}: external data range offset={offset} length={nbytes} does not "
                                     f"fit the file of {size} bytes" + (" exactly" if to_eof else ""))
            f.seek(offset)
            data = f.read(nbytes)
        if len(data) != nbytes:
            raise ModelLoadError(f"{where}: external data is truncated ({len(data)} of {nbytes} bytes)")
        return data
