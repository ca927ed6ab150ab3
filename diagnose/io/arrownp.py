"""pyarrow arrays -> numpy, read from their buffers.

`Array.to_numpy()` and `ChunkedArray.to_numpy()` go through pyarrow's pandas shim, which imports pandas
on first use whenever it is installed: about half a second on a small machine, for a command that
otherwise never needs pandas (`diagnose curves` on a CSV, `gaps --predictions`). The buffers of a
primitive array are plain memory (Arrow columnar format: a validity bitmap, least significant bit
first, and a values buffer; https://arrow.apache.org/docs/format/Columnar.html), so numpy reads them
directly. Other types (strings, lists) still take pyarrow's own conversion.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_NUMPY = {
    "int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
    "uint8": np.uint8, "uint16": np.uint16, "uint32": np.uint32, "uint64": np.uint64,
    "halffloat": np.float16, "float": np.float32, "double": np.float64,
}


def _flat(arr: Any) -> Any:
    """A ChunkedArray as one Array (no copy when it has a single chunk)."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray):
        return arr.chunk(0) if arr.num_chunks == 1 else arr.combine_chunks()
    return arr


def _bits(buf: Any, offset: int, n: int) -> np.ndarray:
    bits = np.unpackbits(np.frombuffer(buf, dtype=np.uint8), bitorder="little")
    return bits[offset : offset + n].astype(bool)


def valid(arr: Any) -> np.ndarray:
    """(N,) bool: True where the array holds a value, False where it is null. With no null (the usual
    case) a read-only all-True view: no array to fill, no chunks to join."""
    if arr.null_count == 0:
        return np.broadcast_to(True, (len(arr),))
    a = _flat(arr)
    n = len(a)
    validity = a.buffers()[0] if len(a.buffers()) else None
    if a.null_count == 0 or validity is None:
        return np.ones(n, dtype=bool) if a.null_count == 0 else np.zeros(n, dtype=bool)
    return _bits(validity, a.offset, n)


def to_numpy(arr: Any) -> np.ndarray:
    """What `arr.to_numpy(zero_copy_only=False)` gives for numbers and booleans (nulls as NaN, integers
    with nulls as float64), without importing pandas. One difference: booleans with nulls come back as
    float64 (1.0, 0.0, NaN), not pyarrow's object array. Any other type is handed to pyarrow."""
    import pyarrow as pa

    a = _flat(arr)
    t = a.type
    n = len(a)
    if pa.types.is_null(t):
        return np.full(n, np.nan)
    name = str(t)
    if pa.types.is_boolean(t):
        out: np.ndarray = _bits(a.buffers()[1], a.offset, n) if n else np.zeros(0, dtype=bool)
        if a.null_count:
            return np.where(valid(a), out.astype(np.float64), np.nan)
        return out
    if name not in _NUMPY:
        return np.asarray(a.to_numpy(zero_copy_only=False))
    dtype = np.dtype(_NUMPY[name])
    values = np.frombuffer(a.buffers()[1], dtype=dtype, count=n, offset=a.offset * dtype.itemsize) if n else np.zeros(0, dtype)
    if a.null_count:
        as_float = values if dtype.kind == "f" else values.astype(np.float64)
        return np.where(valid(a), as_float, np.nan).astype(as_float.dtype, copy=False)
    return values


def floats(arr: Any) -> np.ndarray:
    """(N,) float64, NaN at nulls."""
    import pyarrow as pa

    if isinstance(arr, pa.ChunkedArray) and arr.num_chunks > 1 and arr.null_count == 0 and str(arr.type) in _NUMPY:
        # The chunks straight into one float64 array: one pass, where joining the chunks and then
        # converting integers would copy twice.
        out = np.empty(len(arr), dtype=np.float64)
        at = 0
        for chunk in arr.chunks:
            out[at : at + len(chunk)] = to_numpy(chunk)
            at += len(chunk)
        return out
    return to_numpy(arr).astype(np.float64, copy=False)


def from_numpy(values: np.ndarray) -> Any:
    """A pyarrow Array over a 1-D numpy array of numbers or booleans (what `pa.array(values)` gives,
    without the pandas shim); the numbers are not copied."""
    import pyarrow as pa

    v = np.ascontiguousarray(values)
    if v.dtype == np.bool_:
        return pa.Array.from_buffers(pa.bool_(), len(v), [None, pa.py_buffer(np.packbits(v, bitorder="little"))])
    return pa.Array.from_buffers(pa.from_numpy_dtype(v.dtype), len(v), [None, pa.py_buffer(v)])


def column(values: np.ndarray | list[Any], type_: Any) -> Any:
    """A pyarrow Array of `type_` (a number type, or string) over numpy numbers or a list of str/None."""
    import pyarrow as pa

    if pa.types.is_string(type_):
        return strings(list(values))
    return from_numpy(np.asarray(values).astype(type_.to_pandas_dtype(), copy=False))


def strings(values: list[str | None]) -> Any:
    """A pyarrow string Array over Python strings (None: null), built from its buffers."""
    import pyarrow as pa

    encoded = [b"" if v is None else str(v).encode("utf-8", "replace") for v in values]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)), out=offsets[1:])
    missing = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    validity = pa.py_buffer(np.packbits(~missing, bitorder="little")) if missing.any() else None
    type_ = pa.string() if offsets[-1] < 2**31 else pa.large_string()
    offsets_buf = pa.py_buffer(offsets.astype(np.int32) if type_ == pa.string() else offsets)
    return pa.Array.from_buffers(type_, len(values), [validity, offsets_buf, pa.py_buffer(b"".join(encoded))],
                                 null_count=int(missing.sum()))
