"""Drawing a console page, and signing in and out.

`render()` is how every page is drawn, in the request's language
(linectl.http.lang): the template gets `request`, the signed-in `actor`, what
it may do (`can`), `csrf_token` (for forms and the `<meta>` read by scripts),
`here` (the page's own path, to come back to), `kiosk` and `readonly` (the
wall screen's `?kiosk=1`, and pages that offer no control), `expires_ms` and
`server_now_ms` (for the warning before the session ends) and whatever the
page adds. The sign-in form is protected by a double-submit
token (a SameSite=Strict cookie that a form posted from another site cannot
send); after sign-in, forms carry the session's own CSRF token.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from linectl.http.auth import (
    CSRF_FIELD,
    LOGIN_COOKIE,
    SESSION_COOKIE,
    HttpError,
    authenticator,
    checked_form,
    client_address,
    cookie_options,
    csrf_token,
    page_actor,
)
from linectl.http.lang import ConsoleTemplates, request_lang
from linectl.i18n import N_, translator
from linectl.ops.actor import Actor
from linectl.ops.auth import LoginRefused, TooManyAttempts

router = APIRouter()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    from linectl.http.alarms import banner_context  # every page shows the alarm banner
    from linectl.http.board import rights  # the board module renders with these too

    templates: ConsoleTemplates = request.app.state.templates
    actor = getattr(request.state, "actor", None)
    context.setdefault("actor", actor)
    # The wall screen (`?kiosk=1`): no menu, no controls, large type, whoever signed in.
    kiosk = request.query_params.get("kiosk") == "1"
    context.setdefault("kiosk", kiosk)
    readonly = bool(context.get("readonly")) or kiosk
    context["readonly"] = readonly
    context.setdefault("can", rights(actor, readonly) if actor is not None else {})
    # For the warning before the session ends: when it ends, and the server's now.
    expires = getattr(actor, "expires_at", None)
    context.setdefault("expires_ms", 0 if expires is None else int(expires.timestamp() * 1000))
    context.setdefault("server_now_ms", int(time.time() * 1000))
    context.setdefault("site_lines", [ln.id for ln in request.app.state.ops.site.lines])
    context.setdefault("csrf_token", csrf_token(request))
    context.setdefault("page", "")
    if "alarm_summary" not in context:  # render_async reads it on the loop
        context.update(banner_context(request, actor))
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    context.setdefault("here", here)
    context["request"] = request
    html = templates.render(request_lang(request), template, **context)
    return HTMLResponse(html, status_code=status_code)


async def render_async(
    request: Request, template: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """`render` in a worker thread: for pages with plots or long tables, so the event
    loop of a running line never waits on a template. The context is read first, on
    the loop; the thread only formats it."""
    from linectl.http.alarms import banner_context

    # The alarm monitor's state belongs to the loop: read here, not in the thread.
    actor = getattr(request.state, "actor", None)
    context = {**banner_context(request, actor), **context}
    return await asyncio.to_thread(render, request, template, status_code, **context)


def safe_next(target: str | None) -> str:
    """Only a path on this server: never a redirect elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request,
    next_path: str,
    error: str | None = None,
    status_code: int = 200,
    **args: Any,
) -> Response:
    """The sign-in form; `error` a msgid, translated and formatted with `args`."""
    if error is not None:
        error = translator(request_lang(request)).gettext(error) % args
    token = secrets.token_urlsafe(24)
    response = render(
        request,
        "login.html",
        status_code,
        login_token=token,
        next_path=next_path,
        error=error,
        csrf_field=CSRF_FIELD,
    )
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, **cookie_options(request))
    return response


@router.get("/login", name="login")
async def login_form(request: Request, next: str = "/") -> Response:
    return _login_page(request, safe_next(next))


@router.post("/login")
async def login(request: Request) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    given, expected = form.get(CSRF_FIELD), request.cookies.get(LOGIN_COOKIE)
    next_path = safe_next(str(form.get("next") or "/"))
    if not expected or not isinstance(given, str) or not secrets.compare_digest(given, expected):
        return _login_page(request, next_path, N_("The sign-in form expired: try again."), 403)
    try:
        signed = await authenticator(request).login(
            str(form.get("name") or ""), str(form.get("password") or ""), client_address(request)
        )
    except TooManyAttempts as e:
        response = _login_page(
            request,
            next_path,
            N_("Too many failed sign-ins: try again in %(s)s s."),
            429,
            s=int(e.retry_after_s) + 1,
        )
        response.headers["Retry-After"] = str(int(e.retry_after_s) + 1)
        return response
    except LoginRefused:
        return _login_page(request, next_path, N_("Wrong name or password."), 401)
    response = RedirectResponse(next_path, status_code=303)
    max_age = int((signed.session.max_expires_at - signed.session.created_at).total_seconds())
    response.set_cookie(SESSION_COOKIE, signed.secret, max_age=max_age, **cookie_options(request))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/session/renew")
async def renew(request: Request, actor: Annotated[Actor, Depends(page_actor)]) -> Response:
    """ "Stay signed in": the session's idle time starts again (never past its maximum
    age); answers when it now ends, for the page's warning."""
    try:
        await checked_form(request)
    except HttpError as e:
        return JSONResponse({"error": {"code": e.code, "message": e.message}}, e.status)
    renewed = await authenticator(request).renew(
        request.cookies.get(SESSION_COOKIE, ""), client_address(request)
    )
    expires = renewed.expires_at if renewed is not None else None
    if renewed is not None:
        request.app.state.ops.control.seen(renewed)  # lines it holds are held on
    return JSONResponse(
        {
            "expires_ms": 0 if expires is None else int(expires.timestamp() * 1000),
            "server_now_ms": int(time.time() * 1000),
        }
    )


@router.post("/logout", name="logout")
async def logout(request: Request, actor: Annotated[Actor, Depends(page_actor)]) -> Response:
    await checked_form(request)
    await request.app.state.ops.signed_out(actor)  # the lines it held are free
    await authenticator(request).logout(actor)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


__all__ = ["HttpError", "render", "render_async", "router", "safe_next"]
