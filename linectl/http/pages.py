"""The console's pages that are not the console yet: sign in, sign out, a first page.

`render()` is how every page is drawn: the template gets `request`, the
signed-in `actor`, `csrf_token` (for forms and the `<meta>` read by scripts)
and whatever the page adds. The sign-in form is protected by a double-submit
token (a SameSite=Strict cookie that a form posted from another site cannot
send); after sign-in, forms carry the session's own CSRF token.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

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
from linectl.ops.actor import Actor
from linectl.ops.auth import LoginRefused, TooManyAttempts

router = APIRouter()


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    templates = request.app.state.templates
    context.setdefault("actor", getattr(request.state, "actor", None))
    context.setdefault("csrf_token", csrf_token(request))
    response: HTMLResponse = templates.TemplateResponse(
        request, template, context, status_code=status_code
    )
    return response


def safe_next(target: str | None) -> str:
    """Only a path on this server: never a redirect elsewhere."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


def _login_page(
    request: Request, next_path: str, error: str | None = None, status_code: int = 200
) -> Response:
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
        return _login_page(request, next_path, "The sign-in form expired: try again.", 403)
    try:
        signed = await authenticator(request).login(
            str(form.get("name") or ""), str(form.get("password") or ""), client_address(request)
        )
    except TooManyAttempts as e:
        response = _login_page(request, next_path, e.message, 429)
        response.headers["Retry-After"] = str(int(e.retry_after_s) + 1)
        return response
    except LoginRefused:
        return _login_page(request, next_path, "Wrong name or password.", 401)
    response = RedirectResponse(next_path, status_code=303)
    max_age = int((signed.session.max_expires_at - signed.session.created_at).total_seconds())
    response.set_cookie(SESSION_COOKIE, signed.secret, max_age=max_age, **cookie_options(request))
    response.delete_cookie(LOGIN_COOKIE, path="/")
    return response


@router.post("/logout", name="logout")
async def logout(request: Request, actor: Annotated[Actor, Depends(page_actor)]) -> Response:
    await checked_form(request)
    await authenticator(request).logout(actor)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/", name="home")
async def home(request: Request, actor: Annotated[Actor, Depends(page_actor)]) -> Response:
    """A first page until the board exists: the lines at a glance."""
    lines = request.app.state.ops.lines(actor)
    return render(request, "home.html", lines=lines)


__all__ = ["HttpError", "render", "router", "safe_next"]
