"""Hypothesis strategies the fuzz tests share: byte mutations of a valid frame.

A mutation takes the bytes the encoders built for a valid frame and returns
what the line delivers instead: the frame itself, a byte changed, the frame
cut short or lengthened, bytes inserted, noise before it, two frames run
together, or random bytes with nothing to do with it.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import settings
from hypothesis import strategies as st

Mutation = Callable[[bytes], bytes]


def same() -> Mutation:
    return lambda b: b


def flip(at: int, value: int) -> Mutation:
    def m(b: bytes) -> bytes:
        if not b:
            return bytes([value])
        out = bytearray(b)
        out[at % len(out)] = value
        return bytes(out)

    return m


def xor_bit(at: int, bit: int) -> Mutation:
    def m(b: bytes) -> bytes:
        if not b:
            return b
        out = bytearray(b)
        out[at % len(out)] ^= 1 << bit
        return bytes(out)

    return m


def cut(keep: int) -> Mutation:
    return lambda b: b[: keep % (len(b) + 1)]


def insert(at: int, data: bytes) -> Mutation:
    return lambda b: b[: at % (len(b) + 1)] + data + b[at % (len(b) + 1) :]


def prefix(noise: bytes) -> Mutation:
    return lambda b: noise + b


def twice() -> Mutation:
    return lambda b: b + b


def instead(data: bytes) -> Mutation:
    return lambda b: data


def mutations(max_extra: int = 16) -> st.SearchStrategy[Mutation]:
    """Mutations of a frame, the frame itself among the most likely."""
    extra = st.binary(min_size=1, max_size=max_extra)
    return st.one_of(
        st.builds(same),
        st.builds(same),
        st.builds(flip, st.integers(0, 255), st.integers(0, 255)),
        st.builds(xor_bit, st.integers(0, 255), st.integers(0, 7)),
        st.builds(cut, st.integers(0, 255)),
        st.builds(insert, st.integers(0, 255), extra),
        st.builds(prefix, extra),
        st.builds(twice),
        st.builds(instead, st.binary(max_size=4 * max_extra)),
    )


def io_bound() -> settings:
    """Half the profile's examples (at least 50), for fuzz tests whose examples
    wait on real timeouts of a socket or a pty: the suite stays fast."""
    return settings(max_examples=max(50, settings.default.max_examples // 2))
