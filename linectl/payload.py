"""Untrusted JSON in: size and nesting bounded before the decoder sees a byte.

Every door that takes a document from outside (the MQTT intake, the HTTP API)
decodes it here. The size is checked first and an oversized payload is never
decoded; its request_id is only looked for near the start, so a refusal can
still be addressed. The nesting depth is counted by a linear scan before
`json.loads` runs: a deeply nested array would otherwise reach the decoder's
recursion and raise `RecursionError`, an exception no caller expects from
parsing. `NaN` and `Infinity`, which Python's decoder takes although JSON
has no such numbers, are refused too. Whatever is wrong comes back as
`InvalidField` on `(payload)`. `linectl judge` reads its documents through
`loads_bounded` for the same reasons.
"""

from __future__ import annotations

import json
import re
from typing import Any

from linectl.vehicle import InvalidField

# A registration nests three deep; anything near this is not one.
MAX_DEPTH = 32
# How far into an oversized payload the request_id is looked for.
PEEK_BYTES = 4096

# The characters that matter to nesting: brackets, and what starts, ends or
# escapes a string.
_TOKEN = re.compile(r'[\[\]{}"\\]')
_REQUEST_ID = re.compile(r'"request_id"\s*:\s*"((?:[^"\\]|\\.){1,256})"')


def nesting_depth(text: str, limit: int) -> int:
    """The deepest nesting of arrays and objects in `text`, counting stops past `limit`.

    Brackets inside strings do not count. One pass over the few characters that
    matter, never a backtracking match: a payload of escaped quotes that never
    closes its string once took a regular expression quadratic time (seconds
    of a blocked event loop for 64 KiB).
    """
    depth = deepest = 0
    in_string = False
    escaped_at = -1  # position of the character a backslash escapes
    for m in _TOKEN.finditer(text):
        ch, at = m.group(), m.start()
        if in_string:
            if at == escaped_at:
                continue
            if ch == "\\":
                escaped_at = at + 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        elif ch in "]}":
            depth -= 1
    return deepest


def peek_request_id(payload: bytes) -> str | None:
    """A request_id near the start of a payload too large to decode, if one is there."""
    head = payload[:PEEK_BYTES].decode("utf-8", errors="replace")
    m = _REQUEST_ID.search(head)
    if m is None:
        return None
    try:
        value = json.loads(f'"{m.group(1)}"')
    except ValueError:
        return None
    return value if isinstance(value, str) else None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def loads_bounded(text: str, what: str = "payload") -> Any:
    """The JSON value of `text`; `InvalidField` on `(payload)` when it nests deeper
    than MAX_DEPTH or is not JSON (NaN and Infinity included)."""
    if nesting_depth(text, MAX_DEPTH) > MAX_DEPTH:
        raise InvalidField(
            "invalid_json", "(payload)", f"{what} nests deeper than {MAX_DEPTH} levels"
        )
    try:
        return json.loads(text, parse_constant=_no_constant)
    except json.JSONDecodeError as e:
        raise InvalidField(
            "invalid_json",
            "(payload)",
            f"{what} is not JSON: {e.msg} at line {e.lineno} column {e.colno}",
        ) from None
    except (ValueError, RecursionError) as e:
        # RecursionError cannot come past the depth check; kept as a second wall.
        raise InvalidField("invalid_json", "(payload)", f"{what} is not JSON: {e}") from None


def decode_json(payload: bytes, max_bytes: int, what: str = "payload") -> Any:
    """The JSON value of `payload`; `InvalidField` on `(payload)` when it is too large,
    too deeply nested, or not UTF-8 JSON."""
    size = len(payload)
    if size > max_bytes:
        raise InvalidField(
            "payload_too_large",
            "(payload)",
            f"{what} is {size} bytes, over the limit of {max_bytes}",
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InvalidField("invalid_json", "(payload)", f"{what} is not UTF-8: {e}") from None
    return loads_bounded(text, what)
