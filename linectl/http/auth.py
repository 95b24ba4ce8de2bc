"""Who is asking, for every request: session cookie or bearer token, and CSRF.

FastAPI dependencies, for routes to declare what they need:

- `api_actor`: the `Actor` of a JSON API request; 401 without a valid session
  or token. A state-changing request (POST, PUT, PATCH, DELETE) signed in by
  cookie must carry the session's CSRF token in the `X-CSRF-Token` header
  (403 `csrf` otherwise); a bearer token is not sent by browsers on their
  own, so it needs none.
- `page_actor`: the same for a console page; without a session the browser
  is sent to the login page (and back afterwards).
- `checked_form(request)`: for a console form posted with a cookie: parses the
  form (bounded) and checks its `csrf_token` field; 403 otherwise.

Roles are not checked here: the operations layer (linectl.ops) does that,
once, for every door. `csrf_token(request)` gives the token to put into a
page (`<meta name="csrf-token">`, a hidden `csrf_token` field); it is an HMAC
of the session's secret, so it needs no storage and means nothing without
the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from fastapi import Request
from starlette.datastructures import FormData

from linectl.ops.actor import Actor
from linectl.ops.auth import Authenticator

SESSION_COOKIE = "linectl_session"
LOGIN_COOKIE = "linectl_login"  # double-submit CSRF token of the sign-in form
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
FORM_MAX_BYTES = 16 * 1024


class HttpError(Exception):
    """An error answered as `{"error": {"code", "message"}}` with `status`."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class NotSignedIn(Exception):
    """A console page without a session: the browser goes to the login page."""


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def csrf_for(secret: str) -> str:
    return hmac.new(secret.encode("utf-8"), b"linectl csrf", hashlib.sha256).hexdigest()


def csrf_token(request: Request) -> str:
    """The CSRF token of this request's session ("" without one)."""
    secret = request.cookies.get(SESSION_COOKIE)
    return csrf_for(secret) if secret else ""


def authenticator(request: Request) -> Authenticator:
    auth: Authenticator = request.app.state.auth
    return auth


async def resolve_actor(request: Request) -> Actor | None:
    """The actor of this request, or None; worked out once per request."""
    if hasattr(request.state, "actor"):
        actor: Actor | None = request.state.actor
        return actor
    auth = authenticator(request)
    address = client_address(request)
    header = request.headers.get("authorization", "")
    actor = None
    request.state.by_cookie = False
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            actor = await auth.bearer(token, address)
    else:
        secret = request.cookies.get(SESSION_COOKIE)
        if secret:
            actor = await auth.session(secret, address)
            request.state.by_cookie = actor is not None
    request.state.actor = actor
    return actor


def _csrf_ok(request: Request, given: str | None) -> bool:
    expected = csrf_token(request)
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


async def api_actor(request: Request) -> Actor:
    actor = await resolve_actor(request)
    if actor is None:
        raise HttpError(
            401,
            "unauthenticated",
            "sign in, or send Authorization: Bearer TOKEN (linectl user token NAME)",
            {"WWW-Authenticate": 'Bearer realm="linectl"'},
        )
    if (
        request.method in UNSAFE_METHODS
        and request.state.by_cookie
        and not _csrf_ok(request, request.headers.get(CSRF_HEADER))
    ):
        raise HttpError(403, "csrf", f"missing or wrong {CSRF_HEADER} header for this session")
    return actor


async def page_actor(request: Request) -> Actor:
    actor = await resolve_actor(request)
    if actor is None or not request.state.by_cookie:
        raise NotSignedIn()
    return actor


async def checked_form(request: Request) -> FormData:
    """The posted form of a signed-in console page, its CSRF token checked."""
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > FORM_MAX_BYTES:
        raise HttpError(413, "payload_too_large", f"a form is at most {FORM_MAX_BYTES} bytes")
    form = await request.form(max_files=0, max_fields=100)
    given = form.get(CSRF_FIELD)
    if not _csrf_ok(request, given if isinstance(given, str) else None):
        raise HttpError(403, "csrf", "the form's CSRF token is missing or wrong: reload the page")
    return form


def cookie_options(request: Request) -> dict[str, Any]:
    """HttpOnly, SameSite=Strict, Secure over TLS, for every cookie the console sets."""
    secure: bool = request.app.state.settings.tls
    return {"httponly": True, "samesite": "strict", "secure": secure, "path": "/"}
