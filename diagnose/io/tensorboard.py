"""TensorBoard event files without tensorflow: the TFRecord framing and the Event protobuf, decoded by hand.

A record is `uint64 length | uint32 masked crc32c(length) | data | uint32 masked crc32c(data)`, all
little-endian. `data` is an `Event` message (tensorflow/core/util/event.proto); scalars live in
`Event.summary.value[]` either as `simple_value` (torch's SummaryWriter, Lightning) or as a one-element
`tensor` (TF2's `tf.summary.scalar`). Only the fields needed for scalars are decoded.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

# --- crc32c (Castagnoli), table driven; used on the first record and by the writer ---------------

_CRC_TABLE: list[int] = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# --- protobuf wire format ---------------------------------------------------------------------------

_DOUBLE = struct.Struct("<d")
_FLOAT = struct.Struct("<f")
_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")

# TensorProto dtype enum values (tensorflow/core/framework/types.proto) -> struct format of one element.
_DTYPES = {1: "f", 2: "d", 3: "i", 9: "q", 19: "e", 4: "B", 5: "h", 6: "b", 10: "?"}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    b = buf[pos]
    if b < 0x80:
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]
        result |= (b & 0x7F) << shift
        pos += 1
        if b < 0x80:
            return result, pos
        shift += 7


def _skip(buf: bytes, pos: int, wire: int) -> int:
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        n, pos = _varint(buf, pos)
        return pos + n
    if wire == 5:
        return pos + 4
    raise ValueError(f"unsupported protobuf wire type {wire}")


def _tensor_value(buf: bytes, pos: int, end: int) -> float | None:
    """The single number in a TensorProto, or None when it holds none or more than one."""
    dtype = 1
    values: list[float] = []
    content = None
    while pos < end:
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if field == 1 and wire == 0:
            dtype, pos = _varint(buf, pos)
        elif field == 4 and wire == 2:
            n, pos = _varint(buf, pos)
            content = buf[pos : pos + n]
            pos += n
        elif field in (5, 6):  # float_val, double_val; packed or not
            fixed = _FLOAT if field == 5 else _DOUBLE
            if wire == 2:
                n, pos = _varint(buf, pos)
                values.extend(v[0] for v in fixed.iter_unpack(buf[pos : pos + n]))
                pos += n
            else:
                values.append(fixed.unpack_from(buf, pos)[0])
                pos += fixed.size
        elif field in (7, 10) and wire in (0, 2):  # int_val, int64_val
            if wire == 2:
                n, pos = _varint(buf, pos)
                stop = pos + n
                while pos < stop:
                    v, pos = _varint(buf, pos)
                    values.append(float(v - (1 << 64) if v >= 1 << 63 else v))
            else:
                v, pos = _varint(buf, pos)
                values.append(float(v - (1 << 64) if v >= 1 << 63 else v))
        else:
            pos = _skip(buf, pos, wire)
    if content is not None and not values:
        fmt = _DTYPES.get(dtype)
        if fmt is None:
            return None
        size = struct.calcsize(fmt)
        if len(content) != size:
            return None
        return float(struct.unpack("<" + fmt, content)[0])
    return values[0] if len(values) == 1 else None


def _summary_values(buf: bytes, pos: int, end: int) -> Iterator[tuple[str, float]]:
    """(tag, value) for each scalar in a Summary message."""
    while pos < end:
        key, pos = _varint(buf, pos)
        if key != 0x0A:  # Summary.value is field 1, length-delimited
            pos = _skip(buf, pos, key & 7)
            continue
        n, pos = _varint(buf, pos)
        vend = pos + n
        tag = None
        value = None
        while pos < vend:
            k, pos = _varint(buf, pos)
            if k == 0x0A:  # tag
                m, pos = _varint(buf, pos)
                tag = buf[pos : pos + m].decode("utf-8", "replace")
                pos += m
            elif k == 0x15:  # simple_value, fixed32 float
                value = _FLOAT.unpack_from(buf, pos)[0]
                pos += 4
            elif k == 0x42:  # tensor
                m, pos = _varint(buf, pos)
                value = _tensor_value(buf, pos, pos + m)
                pos += m
            else:
                pos = _skip(buf, pos, k & 7)
        if tag is not None and value is not None:
            yield tag, value


class EventFileError(ValueError):
    """Bytes that are not TFRecord-framed events."""


def read_scalars(path: str | os.PathLike[str]) -> tuple[list[str], list[int], list[float], list[float], bool]:
    """Every scalar in one event file, in file order: (tags, steps, wall_times, values, truncated).

    A record damaged in the middle of the file (a length whose checksum does not match, or bytes
    that are not an event) raises EventFileError: silently stopping there would drop the rest of the
    run and call what is left healthy.
    """
    try:
        return _read_scalars(path)
    except EventFileError:
        raise
    except (ValueError, IndexError, struct.error) as exc:
        raise EventFileError(f"a damaged record ({exc}); the points after it cannot be read") from None


def _read_scalars(path: str | os.PathLike[str]) -> tuple[list[str], list[int], list[float], list[float], bool]:
    """read_scalars without the translation of decoding errors.

    `truncated` is True when the last record is cut short (a run still writing); the complete
    records before it are returned. Raises EventFileError when the first record's checksum is wrong.
    """
    buf = Path(path).read_bytes()
    n = len(buf)
    tags: list[str] = []
    steps: list[int] = []
    walls: list[float] = []
    values: list[float] = []
    if n == 0:
        return tags, steps, walls, values, False
    if not is_event_file(buf):
        raise EventFileError("not a TFRecord file (the first length checksum does not match)")
    pos = 0
    truncated = False
    unpack_u64 = _U64.unpack_from
    unpack_d = _DOUBLE.unpack_from
    while pos < n:
        if pos + 12 > n:
            truncated = True
            break
        length = unpack_u64(buf, pos)[0]
        start = pos + 12
        end = start + length
        if end + 4 > n:
            if _U32.unpack_from(buf, pos + 8)[0] != masked_crc32c(buf[pos : pos + 8]):
                # Not the tail of a run still writing: a length field damaged in the middle.
                raise EventFileError(
                    f"a damaged record at byte {pos} of {n} (its length checksum does not match) after "
                    f"{len(values)} values; the points after it cannot be read"
                )
            truncated = True
            break
        pos = end + 4
        # Event: wall_time (1, double), step (2, varint), summary (5, bytes); the rest is skipped.
        p = start
        wall = 0.0
        step = 0
        while p < end:
            key = buf[p]
            p += 1
            if key == 0x09:
                wall = unpack_d(buf, p)[0]
                p += 8
            elif key == 0x10:
                step, p = _varint(buf, p)
            elif key == 0x2A:
                m, p = _varint(buf, p)
                for tag, value in _summary_values(buf, p, p + m):
                    tags.append(tag)
                    steps.append(step)
                    walls.append(wall)
                    values.append(value)
                p += m
            else:
                if key >= 0x80:
                    key, p = _varint(buf, p - 1)
                p = _skip(buf, p, key & 7)
    return tags, steps, walls, values, truncated


def event_files(root: str | os.PathLike[str]) -> list[Path]:
    """The event files in a folder (searched recursively), oldest first by name; or the file itself."""
    root = Path(root)
    if root.is_file():
        return [root]
    return sorted((p for p in root.rglob("*tfevents*") if p.is_file()), key=lambda p: (str(p.parent), p.name))


_SPLIT_FOLDERS = {"train", "training", "validation", "val", "valid", "eval", "test"}


def run_folders(root: str | os.PathLike[str]) -> list[Path]:
    """The runs under a TensorBoard log folder: each folder holding event files is one run, except
    that split folders (Keras' train/ and validation/) belong to their parent."""
    root = Path(root)
    runs = []
    for f in event_files(root):
        parent = f.parent
        if parent.name.lower() in _SPLIT_FOLDERS and parent != root:
            parent = parent.parent
        if parent not in runs:
            runs.append(parent)
    return runs


def is_event_file(head: bytes) -> bool:
    """True when `head` (the first bytes of a file) starts with a valid TFRecord length header."""
    return len(head) >= 12 and _U32.unpack_from(head, 8)[0] == masked_crc32c(head[:8])


# --- writer (fixtures and benchmarks; no tensorboard package needed) ------------------------------


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        b = value & 0x7F
        value >>= 7
        if value:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field_bytes(field: int, payload: bytes) -> bytes:
    return _encode_varint(field << 3 | 2) + _encode_varint(len(payload)) + payload


def encode_event(
    step: int, wall_time: float, scalars: Iterable[tuple[str, float]], *, tensor: bool = False
) -> bytes:
    """One Event with scalar summaries; `tensor=True` writes them TF2-style as DT_FLOAT tensors."""
    values = b""
    for tag, value in scalars:
        body = _field_bytes(1, tag.encode())
        if tensor:
            proto = b"\x08\x01" + _field_bytes(2, b"") + _field_bytes(4, _FLOAT.pack(value))
            meta = _field_bytes(1, _field_bytes(1, b"scalars"))
            body += _field_bytes(9, meta) + _field_bytes(8, proto)
        else:
            body += b"\x15" + _FLOAT.pack(value)
        values += _field_bytes(1, body)
    return b"\x09" + _DOUBLE.pack(wall_time) + b"\x10" + _encode_varint(step) + _field_bytes(5, values)


def frame_record(data: bytes) -> bytes:
    header = _U64.pack(len(data))
    return header + _U32.pack(masked_crc32c(header)) + data + _U32.pack(masked_crc32c(data))


def file_version_record(wall_time: float) -> bytes:
    return frame_record(b"\x09" + _DOUBLE.pack(wall_time) + _field_bytes(3, b"brain.Event:2"))
