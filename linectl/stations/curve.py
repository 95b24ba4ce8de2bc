"""The brake curve of one roller run: both wheels' force over time.

This module owns the curve as a value and its two encodings: the upstream
text form of standards.md (`P@L#R$L#R$...`, P the sample period in 10 ms
units, forces in 10 N units) and a compact binary form for the database (a
small header and two little-endian integer arrays, never one row per sample).
Forces are whole multiples of 10 N, as the brake tester's registers give them.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass

import numpy as np

_MAGIC = b"LBC"
_VERSION = 1
# magic, version, bytes per force (2 or 4), period_ms, number of samples
_HEADER = struct.Struct("<3sBBxHI")
_MAX_PERIOD_MS = 0xFFFF  # what the header's period field holds
# A force or period of the upstream text: what the binary form can hold (u32),
# so at most 10 digits; more would overflow the int64 arrays.
_WHOLE = re.compile(r"[0-9]{1,10}")
_MAX_FORCE = 0xFFFFFFFF


@dataclass(frozen=True, eq=False)
class BrakeCurve:
    """Sample i taken at i * period_ms; `left` and `right` in 10 N units."""

    period_ms: int
    left: np.ndarray
    right: np.ndarray

    def __post_init__(self) -> None:
        p = self.period_ms
        if isinstance(p, bool) or not isinstance(p, int | np.integer):
            raise ValueError(f"sample period must be a whole number of ms, got {p!r}")
        if p <= 0 or p % 10 or p > _MAX_PERIOD_MS:
            raise ValueError(
                f"sample period must be a positive multiple of 10 ms (the upstream P is "
                f"period/10), at most {_MAX_PERIOD_MS // 10 * 10}, got {p}"
            )
        left = _forces(self.left, "left")
        right = _forces(self.right, "right")
        if left.shape != right.shape:
            raise ValueError(
                f"left and right must have as many samples, got {left.size} and {right.size}"
            )
        object.__setattr__(self, "period_ms", int(p))
        object.__setattr__(self, "left", left)
        object.__setattr__(self, "right", right)

    @classmethod
    def from_array(cls, period_ms: int, samples: np.ndarray) -> BrakeCurve:
        """From an (n, 2) array of (left, right) samples."""
        a = np.asarray(samples)
        if a.ndim != 2 or a.shape[1] != 2:
            raise ValueError(f"samples must be an (n, 2) array, got shape {a.shape}")
        return cls(period_ms, a[:, 0], a[:, 1])

    def __len__(self) -> int:
        return int(self.left.size)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, BrakeCurve):
            return NotImplemented
        return (
            self.period_ms == other.period_ms
            and np.array_equal(self.left, other.left)
            and np.array_equal(self.right, other.right)
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays: equal but not hashable

    def t_ms(self) -> np.ndarray:
        """Sample times in whole ms; the judgement compares these, free of float error."""
        return np.arange(len(self), dtype=np.int64) * self.period_ms

    def t(self) -> np.ndarray:
        """Sample times in s."""
        return self.t_ms() / 1000.0

    def as_array(self) -> np.ndarray:
        """The samples as an (n, 2) array of (left, right), 10 N units."""
        return np.column_stack((self.left, self.right))

    # ------------------------------------------------------------ upstream text

    def to_upstream(self) -> str:
        pairs = "$".join(
            f"{lv}#{rv}" for lv, rv in zip(self.left.tolist(), self.right.tolist(), strict=True)
        )
        return f"{self.period_ms // 10}@{pairs}"

    @classmethod
    def from_upstream(cls, s: str) -> BrakeCurve:
        """Parse `P@L#R$L#R$...`; a ValueError says what is wrong and where."""
        if not isinstance(s, str):
            raise ValueError(f"curve must be a string P@L#R$L#R$..., got {type(s).__name__}")
        text = s.strip()
        head, at, body = text.partition("@")
        if not at:
            raise ValueError("curve has no '@': expected P@L#R$L#R$... (P the period in 10 ms)")
        if not _WHOLE.fullmatch(head) or int(head) == 0:
            raise ValueError(
                f"curve period P must be a whole number >= 1 (units of 10 ms), got {head[:24]!r}"
            )
        # A trailing '$' after the last sample is tolerated: some vendors' software writes it.
        if body.endswith("$"):
            body = body[:-1]
        left: list[int] = []
        right: list[int] = []
        if body:
            for i, pair in enumerate(body.split("$")):
                lv, hash_, rv = pair.partition("#")
                if not hash_ or not _WHOLE.fullmatch(lv) or not _WHOLE.fullmatch(rv):
                    raise ValueError(
                        f"curve sample {i} is {pair[:24]!r}: expected L#R, two whole numbers "
                        "of 10 N (e.g. 56#45)"
                    )
                lf, rf = int(lv), int(rv)
                if lf > _MAX_FORCE or rf > _MAX_FORCE:
                    raise ValueError(
                        f"curve sample {i} is {pair!r}: a force is at most {_MAX_FORCE} (10 N units)"
                    )
                left.append(lf)
                right.append(rf)
        return cls(int(head) * 10, np.array(left, dtype=np.int64), np.array(right, dtype=np.int64))

    # ------------------------------------------------------------ database bytes

    def to_bytes(self) -> bytes:
        top = int(max(self.left.max(initial=0), self.right.max(initial=0)))
        size = 2 if top <= 0xFFFF else 4
        dtype = f"<u{size}"
        return (
            _HEADER.pack(_MAGIC, _VERSION, size, self.period_ms, len(self))
            + self.left.astype(dtype).tobytes()
            + self.right.astype(dtype).tobytes()
        )

    @classmethod
    def from_bytes(cls, b: bytes) -> BrakeCurve:
        if len(b) < _HEADER.size:
            raise ValueError(f"brake curve bytes too short for the header ({len(b)} bytes)")
        magic, version, size, period_ms, n = _HEADER.unpack_from(b)
        if magic != _MAGIC:
            raise ValueError(f"not brake curve bytes (magic {magic!r})")
        if version != _VERSION:
            raise ValueError(f"brake curve bytes of unknown version {version}")
        if size not in (2, 4):
            raise ValueError(f"brake curve bytes with bad force size {size}")
        expected = _HEADER.size + 2 * n * size
        if len(b) != expected:
            raise ValueError(f"brake curve bytes: {len(b)} bytes, expected {expected} for {n}")
        arrays = np.frombuffer(b, dtype=f"<u{size}", offset=_HEADER.size).astype(np.int64)
        return cls(period_ms, arrays[:n], arrays[n:])


def _forces(a: object, side: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{side} forces must be a 1-D array, got shape {arr.shape}")
    whole = np.issubdtype(arr.dtype, np.integer) or (
        np.issubdtype(arr.dtype, np.floating) and bool(np.all(arr == np.round(arr)))
    )
    if arr.size and not whole:
        raise ValueError(f"{side} forces must be whole numbers of 10 N")
    out = arr.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{side} forces must not be negative (the tester reports 0..65535)")
    out.flags.writeable = False
    return out
