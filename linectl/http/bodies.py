"""Request bodies in: content type, size and JSON checked before anything reads them.

A body must be `application/json` (415 otherwise) and within its route's
bound (413 otherwise, read no further than the bound: a large body is never
held in memory). JSON is decoded by linectl.payload, the decoder of every
door, so nesting is bounded too. Small action bodies (abort, duty, pause) are
JSON objects of known fields: an unknown field is refused by name, so no
parameter can ever carry what no operation takes (a proxy driver, say).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from linectl.http.auth import HttpError
from linectl.ops.errors import Invalid
from linectl.payload import decode_json

SMALL_BODY = 4 * 1024  # abort, duty, pause: a few short fields


class TooLarge(HttpError):
    def __init__(self, limit: int, head: bytes) -> None:
        super().__init__(413, "payload_too_large", f"the body is over the limit of {limit} bytes")
        self.head = head  # what was read before stopping, for a request_id to answer


def require_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "application/json":
        raise HttpError(
            415,
            "unsupported_media_type",
            f"send the body as application/json, not {media or 'nothing'}",
        )


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The raw body, at most `max_bytes`; `TooLarge` past that."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes:
        head = b""
        async for chunk in request.stream():
            head += chunk
            if len(head) >= 4096:
                break
        raise TooLarge(max_bytes, head[:4096])
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise TooLarge(max_bytes, bytes(body[:4096]))
    return bytes(body)


async def json_object(
    request: Request, fields: set[str], *, optional: bool = False
) -> dict[str, Any]:
    """A small JSON object body with only `fields`; `{}` for an optional empty body."""
    if optional and not request.headers.get("content-type"):
        if await read_body(request, SMALL_BODY):
            require_json(request)
        return {}
    require_json(request)
    raw = await read_body(request, SMALL_BODY)
    value = decode_json(raw, SMALL_BODY, "body")  # InvalidField on (payload)
    if not isinstance(value, dict):
        raise Invalid("(payload)", "the body must be a JSON object", "invalid_shape")
    unknown = sorted(set(value) - fields)
    if unknown:
        raise Invalid(
            unknown[0],
            f"unknown field {unknown[0]!r}: this request takes {', '.join(sorted(fields)) or 'none'}",
            "unknown_field",
        )
    return value
