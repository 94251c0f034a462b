"""ONNX ``TensorProto`` -> numpy, decoded by hand (onnx's ``to_array`` would follow external-data
paths), plus the float32 conversion of constants.

Supported element types: float32, float64, float16 (floating constants, rounded to float32
explicitly with round-to-nearest-even) and int64, int32 (only where an op needs integers: shapes,
axes). Every byte count is checked against the declared dims before anything is reshaped.
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto

from ..errors import ModelLoadError
from .reader import ExternalData, quote

# ONNX element type -> (little-endian numpy dtype, typed field holding the values)
_DTYPES: dict[int, tuple[str, str]] = {
    TensorProto.FLOAT: ("<f4", "float_data"),
    TensorProto.DOUBLE: ("<f8", "double_data"),
    TensorProto.FLOAT16: ("<f2", "int32_data"),  # int32_data holds the 16-bit patterns
    TensorProto.INT64: ("<i8", "int64_data"),
    TensorProto.INT32: ("<i4", "int32_data"),
}
FLOAT_TYPES = (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16)


def dtype_name(elem_type: int) -> str:
    try:
        return TensorProto.DataType.Name(elem_type).lower()
    except ValueError:
        return f"type#{elem_type}"


def _typed_values(tensor: TensorProto, dtype: str, field: str) -> np.ndarray:
    values = getattr(tensor, field)
    if tensor.data_type == TensorProto.FLOAT16:
        bits = np.array(values, dtype=np.int64)
        if bits.size and (bits.min() < 0 or bits.max() > 0xFFFF):
            raise ValueError("float16 bit patterns must be in 0..65535")
        return bits.astype(np.uint16).view(np.float16)
    return np.array(values, dtype=dtype)


def tensor_to_array(tensor: TensorProto, where: str, external: ExternalData) -> np.ndarray:
    """Decode ``tensor`` (``where`` = "<file>: tensor 'name'" for messages) into a numpy array."""
    if tensor.data_type not in _DTYPES:
        raise ModelLoadError(f"{where}: element type {dtype_name(tensor.data_type)} is not supported")
    if tensor.HasField("segment"):
        raise ModelLoadError(f"{where}: segmented tensors are not supported")
    dims = [int(d) for d in tensor.dims]
    if any(d < 0 for d in dims):
        raise ModelLoadError(f"{where}: negative dimension in {dims}")
    dtype, field = _DTYPES[tensor.data_type]
    count = math.prod(dims)
    nbytes = count * np.dtype(dtype).itemsize
    if tensor.data_location == TensorProto.EXTERNAL:
        arr = np.frombuffer(external.read(tensor, nbytes, where), dtype=dtype)
    elif tensor.HasField("raw_data"):
        if len(tensor.raw_data) != nbytes:
            raise ModelLoadError(f"{where}: raw_data has {len(tensor.raw_data)} bytes, dims {dims} need {nbytes}")
        arr = np.frombuffer(tensor.raw_data, dtype=dtype)
    else:
        if len(getattr(tensor, field)) != count:
            raise ModelLoadError(f"{where}: {field} has {len(getattr(tensor, field))} values, dims {dims} need {count}")
        try:
            arr = _typed_values(tensor, dtype, field)
        except ValueError as exc:
            raise ModelLoadError(f"{where}: {exc}") from None
    return np.array(arr.reshape(dims), dtype=arr.dtype.newbyteorder("="), copy=True)


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def to_float32(arr: np.ndarray, where: str, allow_nonfinite: bool) -> np.ndarray:
    """A float32 copy of a floating constant, rounded to nearest even when it is float64/float16.

    A finite value that overflows float32 is always an error; NaN/inf are errors unless
    ``allow_nonfinite``. The message names the first offending index."""
    with np.errstate(over="ignore"):
        f32 = arr.astype(np.float32)
    overflow = np.isinf(f32) & np.isfinite(arr)
    if overflow.any():
        idx = _first_bad(overflow)
        raise ModelLoadError(f"{where}: value {float(arr[idx])!r} at index {idx} overflows float32")
    bad = ~np.isfinite(f32)
    if not allow_nonfinite and bad.any():
        idx = _first_bad(bad)
        raise ModelLoadError(f"{where}: non-finite value {float(f32[idx])} at index {idx} "
                             "(pass allow_nonfinite=True to accept it)")
    return f32


def decode_constant(tensor: TensorProto, name: str, what: str, where: str, external: ExternalData,
                    allow_nonfinite: bool) -> np.ndarray:
    """Decode an initializer or Constant value: floats become float32, integers int64."""
    label = f"{where}: {what} {quote(name)}"
    arr = tensor_to_array(tensor, label, external)
    if tensor.data_type in FLOAT_TYPES:
        return to_float32(arr, label, allow_nonfinite)
    return arr.astype(np.int64)


def attribute_constant(attr: onnx.AttributeProto) -> tuple[np.ndarray, int] | None:
    """The value of a Constant node's ``value_float(s)``/``value_int(s)`` attribute with its ONNX
    element type, or ``None`` for the ``value`` tensor attribute (decoded separately)."""
    A = onnx.AttributeProto
    if attr.type == A.FLOAT:
        return np.array(attr.f, dtype=np.float32), TensorProto.FLOAT
    if attr.type == A.FLOATS:
        return np.array(list(attr.floats), dtype=np.float32), TensorProto.FLOAT
    if attr.type == A.INT:
        return np.array(attr.i, dtype=np.int64), TensorProto.INT64
    if attr.type == A.INTS:
        return np.array(list(attr.ints), dtype=np.int64), TensorProto.INT64
    return None
