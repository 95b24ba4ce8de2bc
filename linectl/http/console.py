"""The console's pages besides the board, and the forms operators act through.

Pages: the inspection list (`/inspections`, by plate, VIN, days and verdict),
one inspection (`/inspections/{id}`: values, limits, every attempt, the
plots of linectl.report, the revision history with a retest under way, and
for an operator the retest button when a retest may be asked), the
registration form (`/register`) and the abort confirmation
(`/inspections/{id}/abort`). The retest form is linectl.http.retest.

Forms post to `/register`, `/inspections/{id}/abort`, `/drivers/{id}/duty`,
`/drivers/{id}/checkin`, `/lines/{id}/pause|resume`,
`/lines/{id}/stations/{st}/maintenance`, `/lines/{id}/control` (take control, or take it over with a reason), `/lines/{id}/control/release`
and `/language`, each with the session's CSRF
token (linectl.http.auth.checked_form), each one call of the operations
layer: the same rights, validation and journal as the API and MQTT. A form
that succeeds redirects (303) to where it came from (`next`, a path on this
server); one that is refused answers an HTML page that says why, with the
operation's status (403 for a role without the right, 409, 422...), never
JSON: a person reads it. The board's script posts the same forms in the
background and shows that message in place.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from linectl.http.auth import HttpError, checked_form, page_actor
from linectl.http.pages import render, render_async, safe_next
from linectl.http.regform import (
    CLASSES,
    FUELS,
    ITEMS,
    field_errors,
    new_request_id,
    to_payload,
)
from linectl.i18n import LOCALES
from linectl.ops.actor import Action, Actor
from linectl.ops.errors import Forbidden, Invalid, OpError
from linectl.ops.operations import Operations
from linectl.ops.views import Views
from linectl.vehicle import InvalidField

router = APIRouter()
PageActor = Annotated[Actor, Depends(page_actor)]


def views_of(request: Request) -> Views:
    views: Views = request.app.state.views
    return views


def ops_of(request: Request) -> Operations:
    ops: Operations = request.app.state.ops
    return ops


def refused(request: Request, e: OpError | HttpError, status: int | None = None) -> Response:
    """An operation that was not done, as a page a person reads."""
    code = e.code
    message = e.message
    return render(
        request,
        "error.html",
        status or e.status,
        code=code,
        message=message,
        back=safe_next(request.query_params.get("next") or request.headers.get("referer")),
    )


def done(next_path: str | None) -> Response:
    return RedirectResponse(safe_next(next_path), status_code=303)


# --- the inspection list ---------------------------------------------------------------


def _day(text: str | None) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Invalid("date", f"not a date (YYYY-MM-DD): {text[:20]!r}") from None


@router.get("/inspections", name="inspections")
async def inspections(
    request: Request,
    actor: PageActor,
    plate: str = "",
    vin: str = "",
    verdict: str = "",
    day_from: str = "",
    day_to: str = "",
) -> Response:
    query = {"plate": plate, "vin": vin, "verdict": verdict, "day_from": day_from, "day_to": day_to}
    error = None
    rows: list[Any] = []
    try:
        rows = await views_of(request).search(
            actor,
            plate=plate.strip().upper(),
            vin=vin.strip().upper(),
            verdict=verdict or None,
            day_from=_day(day_from),
            day_to=_day(day_to),
        )
    except Invalid as e:
        error = e
    return await render_async(
        request,
        "inspections.html",
        422 if error else 200,
        page="inspections",
        rows=rows,
        query=query,
        error=error,
    )


@router.get("/inspections/{inspection_id}", name="inspection")
async def inspection(request: Request, actor: PageActor, inspection_id: str) -> Response:
    try:
        view = await views_of(request).inspection(actor, inspection_id)
        # Whether to offer the retest button, and why not: for those who may ask one.
        offer = None
        if actor.may(Action.RETEST):
            offer = await ops_of(request).retest_defaults(actor, inspection_id)
    except OpError as e:
        return refused(request, e)
    return await render_async(
        request,
        "inspection.html",
        page="inspections",
        r=view.report,
        rec=view.record,
        attempts=view.record.attempts,
        revisions=view.revisions,
        retest=offer,
        story=view.story,
        finished=str(view.record.state) in ("completed", "aborted"),
    )


# --- abort -------------------------------------------------------------------------------


@router.get("/inspections/{inspection_id}/abort", name="abort_form")
async def abort_form(
    request: Request, actor: PageActor, inspection_id: str, next: str = ""
) -> Response:
    try:
        ops_of(request).allow(actor, Action.ABORT)
        view = await views_of(request).inspection(actor, inspection_id)
    except OpError as e:
        return refused(request, e)
    return render(
        request,
        "abort.html",
        r=view.report,
        next_path=safe_next(next or f"/inspections/{inspection_id}"),
        reason="",
        error=None,
    )


@router.post("/inspections/{inspection_id}/abort")
async def abort(request: Request, actor: PageActor, inspection_id: str) -> Response:
    try:
        form = await checked_form(request)
    except HttpError as e:
        return refused(request, e)
    next_path = str(form.get("next") or f"/inspections/{inspection_id}")
    reason = str(form.get("reason") or "")
    try:
        await ops_of(request).abort(actor, inspection_id, reason)
    except Invalid as e:
        view = await views_of(request).inspection(actor, inspection_id)
        return render(
            request,
            "abort.html",
            e.status,
            r=view.report,
            next_path=safe_next(next_path),
            reason=reason,
            error=e,
        )
    except OpError as e:
        return refused(request, e)
    return done(next_path)


# --- proxy drivers and lines -----------------------------------------------------------------


@router.post("/drivers/{driver_id}/duty")
async def duty(request: Request, actor: PageActor, driver_id: str) -> Response:
    try:
        form = await checked_form(request)
        on_duty = {"true": True, "false": False}.get(str(form.get("on_duty")))
        await ops_of(request).set_duty(actor, driver_id, on_duty)
    except (OpError, HttpError) as e:
        return refused(request, e)
    return done(str(form.get("next") or "/"))


@router.post("/drivers/{driver_id}/checkin")
async def checkin(request: Request, actor: PageActor, driver_id: str) -> Response:
    """A driver back at the start, seen by the operator (a line checking in at the console)."""
    try:
        form = await checked_form(request)
        await ops_of(request).check_in(actor, driver_id)
    except (OpError, HttpError) as e:
        return refused(request, e)
    return done(str(form.get("next") or "/"))


@router.post("/lines/{line_id}/pause")
async def pause(request: Request, actor: PageActor, line_id: str) -> Response:
    return await _pause_or_resume(request, actor, line_id, pause=True)


@router.post("/lines/{line_id}/resume")
async def resume(request: Request, actor: PageActor, line_id: str) -> Response:
    return await _pause_or_resume(request, actor, line_id, pause=False)


async def _pause_or_resume(
    request: Request, actor: Actor, line_id: str, *, pause: bool
) -> Response:
    ops = ops_of(request)
    try:
        form = await checked_form(request)
        reason = form.get("reason") or None
        if pause:
            await ops.pause(actor, line_id, reason)
        else:
            await ops.resume(actor, line_id, reason)
    except (OpError, HttpError) as e:
        return refused(request, e)
    return done(str(form.get("next") or "/"))


@router.post("/lines/{line_id}/stations/{station_id}/maintenance")
async def maintenance(
    request: Request, actor: PageActor, line_id: str, station_id: str
) -> Response:
    """A station put in maintenance (with a reason) or back from it."""
    try:
        form = await checked_form(request)
        on = {"true": True, "false": False}.get(str(form.get("on")))
        reason = form.get("reason") or None
        await ops_of(request).maintenance(actor, line_id, station_id, on, reason)
    except (OpError, HttpError) as e:
        return refused(request, e)
    return done(str(form.get("next") or f"/lines/{line_id}"))


@router.post("/lines/{line_id}/control")
async def take_control(request: Request, actor: PageActor, line_id: str) -> Response:
    """Take control of a line; from another session, with a reason (linectl.ops.control)."""
    try:
        form = await checked_form(request)
        await ops_of(request).take_control(actor, line_id, form.get("reason") or None)
    except (OpError, HttpError) as e:
        return refused(request, e)
    return done(str(form.get("next") or f"/lines/{line_id}"))


@router.post("/lines/{line_id}/control/release")
async def release_control(request: Request, actor: PageActor, line_id: str) -> Response:
    try:
        form = await checked_form(request)
        await ops_of(request).release_control(actor, line_id)
    except (OpError, HttpError) as e:
        return refused(request, e)
    return done(str(form.get("next") or f"/lines/{line_id}"))


# --- the account's language ------------------------------------------------------------------


@router.post("/language")
async def language(request: Request, actor: PageActor) -> Response:
    try:
        form = await checked_form(request)
        lang = str(form.get("lang") or "")
        await views_of(request).set_language(actor, lang if lang in LOCALES else None)
    except (OpError, HttpError) as e:
        return refused(request, e)
    return done(str(form.get("next") or "/"))


# --- registration by hand --------------------------------------------------------------------


def _register_page(
    request: Request,
    status: int = 200,
    *,
    values: dict[str, Any] | None = None,
    items: list[str] | None = None,
    errors: dict[str, InvalidField] | None = None,
    accepted: dict[str, Any] | None = None,
) -> Response:
    return render(
        request,
        "register.html",
        status,
        page="register",
        request_id=new_request_id(),
        values=values or {"inspection_type": "periodic", "headlamp_system": "2", "axles": "2"},
        items=items or [],
        errors=errors or {},
        accepted=accepted,
        class_codes=CLASSES,
        fuel_codes=FUELS,
        all_items=ITEMS,
    )


@router.get("/register", name="register_form")
async def register_form(request: Request, actor: PageActor, done: str = "") -> Response:
    if not actor.may(Action.REGISTER):
        return refused(request, Forbidden(f"{actor.name} ({actor.role}) may not register"))
    accepted = None
    if done:
        try:
            view = await views_of(request).inspection(actor, done)
            accepted = {"inspection_id": done, "plate": view.record.plate, "line": view.record.line}
        except OpError:
            accepted = None
    return _register_page(request, accepted=accepted)


@router.post("/register")
async def register(request: Request, actor: PageActor) -> Response:
    try:
        form = await checked_form(request)
    except HttpError as e:
        return refused(request, e)
    items = [str(i) for i in form.getlist("items") if isinstance(i, str)]
    payload = to_payload(form, items)
    try:
        reply = await ops_of(request).register(actor, payload)
    except OpError as e:
        return refused(request, e)
    if reply.get("accepted"):
        return RedirectResponse(f"/register?done={reply['inspection_id']}", status_code=303)
    err = reply.get("error") or {}
    first: InvalidField | None = InvalidField(
        str(err.get("code")), str(err.get("field")), str(err.get("message") or "refused")
    )
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return _register_page(
        request, 422, values=values, items=items, errors=field_errors(payload, first)
    )
