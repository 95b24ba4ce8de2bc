"""The console and JSON API as one ASGI app: `create_app(ops, auth)`.

What the app holds (`app.state`): `ops` (linectl.ops.Operations, the only way
to the site), `views` (linectl.ops.views.Views, what the console reads),
`auth` (linectl.ops.auth.Authenticator), `upstream` (the MQTT Upstream or
None, for /metrics), `settings` (`HttpSettings`), `templates`
(linectl.http.lang.ConsoleTemplates: linectl/http/templates in each language
of the catalogues), `board` (the board's hub, linectl.http.board) and
`stopping` (set when the server shuts down: long streams end).

Adding to it: a module with an `APIRouter`, its routes taking `api_actor` or
`page_actor` (linectl.http.auth) and calling `request.app.state.ops`; add the
router to `ROUTERS` below. Pages render with linectl.http.pages.render.
Static files (CSS, JavaScript, shipped in the package, never from a CDN) are
under /static from linectl/http/static.

Errors are JSON `{"error": {"code", "message"}}` (plus `field` for a refused
input) with the operation's status: 401 not signed in, 403 role or CSRF,
404, 409, 413, 415, 422, 429; a console page without a session redirects to
the sign-in page instead, and a console form answers an HTML page
(linectl.http.console).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from linectl import __version__
from linectl.http import alarms, api, board, console, journal, levels, pages, retest, sse
from linectl.http.auth import HttpError, NotSignedIn
from linectl.http.board import BoardHub
from linectl.http.lang import ConsoleTemplates
from linectl.metrics import metrics_response
from linectl.ops.auth import Authenticator, TooManyAttempts
from linectl.ops.errors import OpError
from linectl.ops.operations import Operations
from linectl.ops.views import Views
from linectl.vehicle import InvalidField

if TYPE_CHECKING:
    from linectl.upstream import Upstream

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
ROUTERS = [
    api.router,
    sse.router,
    board.router,
    levels.router,
    console.router,
    retest.router,
    alarms.router,
    journal.router,
    pages.router,
]


@dataclass(frozen=True)
class HttpSettings:
    tls: bool = False  # cookies are Secure over TLS
    heartbeat_s: float = 15.0  # SSE comment line when no event came


def error(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def create_app(
    ops: Operations,
    auth: Authenticator,
    settings: HttpSettings | None = None,
    upstream: Upstream | None = None,
) -> FastAPI:
    app = FastAPI(
        title="linectl",
        version=__version__,
        docs_url=None,  # no pages that load scripts from a CDN
        redoc_url=None,
        openapi_url=None,
    )
    app.state.ops = ops
    app.state.auth = auth
    app.state.upstream = upstream
    app.state.settings = settings or HttpSettings()
    app.state.templates = ConsoleTemplates(
        str(TEMPLATES_DIR), ops.site.cfg.tz(), ops.site.clock.time_scale
    )
    app.state.views = Views(ops)
    app.state.board = BoardHub(app.state.views, app.state.templates)
    app.state.stopping = asyncio.Event()
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        site = ops.site
        ready = site.ready.is_set()
        body = {"ok": ready, "site": site.id, "lines": len(site.lines)}
        if not ready:
            body["starting"] = True
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus text format, no sign-in (http.md); linectl.metrics says what."""
        body, content_type = await metrics_response(ops.site, app.state.upstream)
        return Response(body, media_type=content_type)

    for router in ROUTERS:
        app.include_router(router)
    install_error_handlers(app)
    return app


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(HttpError)
    async def http_error(request: Request, e: HttpError) -> Response:
        response = error(e.status, e.code, e.message)
        response.headers.update(e.headers)
        return response

    @app.exception_handler(OpError)
    async def op_error(request: Request, e: OpError) -> Response:
        response = JSONResponse({"error": e.as_error()}, status_code=e.status)
        if isinstance(e, TooManyAttempts):
            response.headers["Retry-After"] = str(int(e.retry_after_s) + 1)
        return response

    @app.exception_handler(InvalidField)
    async def invalid_field(request: Request, e: InvalidField) -> Response:
        return JSONResponse({"error": e.as_error()}, status_code=422)

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, e: NotSignedIn) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def bad_parameter(request: Request, e: RequestValidationError) -> Response:
        first = e.errors()[0] if e.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body")]
        return error(422, "invalid", str(first.get("msg", "invalid request")), field=".".join(loc))

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(request: Request, e: StarletteHTTPException) -> Response:
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error(e.status_code, codes.get(e.status_code, "http_error"), str(e.detail))

    @app.exception_handler(Exception)
    async def internal(request: Request, e: Exception) -> Response:
        log.exception("%s %s failed", request.method, request.url.path)
        return error(500, "internal_error", f"{type(e).__name__}: the daemon's log has the details")
