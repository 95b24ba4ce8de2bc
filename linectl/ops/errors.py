"""Why an operation was not done, in words every transport can map to its own.

Each error has a machine `code` and a one-line `message` for people; the
HTTP API answers `{"error": {"code", "message"}}` with the status below, the
command line prints the message. A refused input field is `InvalidField`
(linectl.vehicle), the same for every door.
"""

from __future__ import annotations

from typing import Any


class OpError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def as_error(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


class Forbidden(OpError):
    """The actor's role lacks the right."""

    code = "forbidden"
    status = 403


class Unknown(OpError):
    """No such inspection, line, proxy driver or account."""

    code = "not_found"
    status = 404


class Conflict(OpError):
    """Not possible in the present state (already finished, driver has a vehicle...)."""

    code = "conflict"
    status = 409


class Invalid(OpError):
    """A parameter that is not acceptable; `field` names it."""

    code = "invalid"
    status = 422

    def __init__(self, field: str, message: str, code: str = "invalid") -> None:
        super().__init__(message, code)
        self.field = field

    def as_error(self) -> dict[str, Any]:
        return {"code": self.code, "field": self.field, "message": self.message}
