"""Numpy arrays <-> one compact blob, for an attempt's raw readings.

A brake curve is a few thousand samples; storing it as one row per sample
would make the attempts table the biggest thing in the database. Instead all
arrays of an attempt go into one blob:

    b"LNA1" | flags (1 byte: bit 0 = zlib) | body
    body = header length (4 bytes, little-endian) | header (JSON) | array bytes

The header lists each array's name, dtype (always little-endian) and shape;
the array bytes follow in that order, C-contiguous. Only plain numeric and
boolean dtypes are accepted, so reading a blob never unpickles anything.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping

import numpy as np

MAGIC = b"LNA1"
_ZLIB = 0x01
_NUMERIC_KINDS = "biufc"


class BlobError(ValueError):
    """Arrays that cannot be packed, or bytes that are not a packed blob."""


def pack_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Pack named numeric arrays into one blob (compressed when that is smaller)."""
    header: list[dict[str, object]] = []
    chunks: list[bytes] = []
    for name, value in arrays.items():
        if not isinstance(name, str):
            raise BlobError(f"array names must be strings, got {name!r}")
        a = np.asarray(value)
        if a.dtype.kind not in _NUMERIC_KINDS:
            raise BlobError(f"array {name!r}: dtype {a.dtype} is not numeric or boolean")
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        header.append({"name": name, "dtype": a.dtype.str, "shape": list(a.shape)})
        chunks.append(a.tobytes())
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    body = struct.pack("<I", len(head)) + head + b"".join(chunks)
    packed = zlib.compress(body, 6)
    if len(packed) < len(body):
        return MAGIC + bytes([_ZLIB]) + packed
    return MAGIC + bytes([0]) + body


def unpack_arrays(blob: bytes) -> dict[str, np.ndarray]:
    """The arrays of a blob made by `pack_arrays`, writable, in their packing order."""
    if len(blob) < len(MAGIC) + 1 or blob[: len(MAGIC)] != MAGIC:
        raise BlobError("not a linectl array blob (bad magic)")
    flags = blob[len(MAGIC)]
    body = blob[len(MAGIC) + 1 :]
    try:
        if flags & _ZLIB:
            body = zlib.decompress(body)
        (n,) = struct.unpack_from("<I", body)
        header = json.loads(body[4 : 4 + n].decode("utf-8"))
    except (zlib.error, struct.error, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise BlobError(f"corrupt array blob: {e}") from None
    out: dict[str, np.ndarray] = {}
    offset = 4 + n
    for entry in header:
        dtype = np.dtype(entry["dtype"])
        if dtype.kind not in _NUMERIC_KINDS:
            raise BlobError(f"array {entry['name']!r}: dtype {dtype} is not allowed")
        shape = tuple(entry["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        size = count * dtype.itemsize
        if offset + size > len(body):
            raise BlobError(f"corrupt array blob: array {entry['name']!r} is truncated")
        a = np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(shape)
        # Native byte order and a private copy: callers may write to what they get.
        out[entry["name"]] = a.astype(dtype.newbyteorder("="), copy=True)
        offset += size
    if offset != len(body):
        raise BlobError("corrupt array blob: trailing bytes")
    return out
