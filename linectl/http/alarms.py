"""The console's alarms: the banner on every page, the alarm list, and its forms.

The banner (`_alarm_banner.html`, included by base.html) shows the
highest-priority alarm waiting for an acknowledgement, how many wait, and a
flood when there is one; `render` (linectl.http.pages) gives every page its
figures through `banner_context`. The browser keeps it live: alarms.js
listens for `alarm_summary` on `/api/events` and fetches the banner again
from `/alarms/banner`, and it beeps (WebAudio, no sound file, nothing from
outside) by the priority of the alarm that sounds, until silenced.

`/alarms` lists alarms filtered by state, line and priority, each with
acknowledge (with a comment), silence and shelve (reason and minutes), plus
the conditions raised most often this week. The forms post to
`/alarms/{id}/ack|silence|shelve` with the session's CSRF token, each one
call of the operations layer, like every console form (linectl.http.console).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from linectl.http.alarm_words import words
from linectl.http.auth import HttpError, checked_form
from linectl.http.console import PageActor, done, ops_of, refused
from linectl.http.pages import render, render_async
from linectl.ops.actor import Action, Actor
from linectl.ops.errors import Invalid, OpError

router = APIRouter()


def banner_context(request: Request, actor: Actor | None) -> dict[str, Any]:
    """What the banner of every page shows (nothing before sign-in)."""
    if actor is None:
        return {"alarm_summary": None, "aw": words()}
    summary = request.app.state.ops.alarm_summary(actor)
    return {"alarm_summary": summary, "aw": words(), "may_alarm": actor.may(Action.ALARM)}


@router.get("/alarms/banner", name="alarm_banner")
async def banner(request: Request, actor: PageActor, next: str = "/") -> Response:
    """The banner alone, for alarms.js to put in place."""
    return render(request, "_alarm_banner.html", here=next)


@router.get("/alarms", name="alarms")
async def alarms(
    request: Request,
    actor: PageActor,
    state: str = "active",
    line: str = "",
    priority: str = "",
) -> Response:
    ops = ops_of(request)
    query = {"state": state, "line": line, "priority": priority}
    error = None
    rows: list[dict[str, Any]] = []
    try:
        rows = await ops.alarms(actor, state=state, line=line or None, priority=priority or None)
    except OpError as e:
        error = e
    rows = [_with_times(a) for a in rows]
    top = await ops.top_alarms(actor)
    return await render_async(
        request,
        "alarms.html",
        error.status if error else 200,
        page="alarms",
        rows=rows,
        top=top,
        query=query,
        error=error,
        lines=[ln.id for ln in ops.site.lines],
        shelve_max=ops.site.cfg.alarms.shelve_max_minutes,
    )


def _time(text: str | None) -> datetime | None:
    return None if not text else datetime.fromisoformat(text.replace("Z", "+00:00"))


def _with_times(a: dict[str, Any]) -> dict[str, Any]:
    """The alarm with its times as datetimes, for the site's local time (`|when`)."""
    return {
        **a,
        "raised": _time(a["raised_at"]),
        "cleared": _time(a["cleared_at"]),
        "acked": _time(a["acked_at"]),
        "until": _time(a["shelved_until"]),
    }


async def _act(request: Request, actor: Actor, alarm_id: int, what: str) -> Response:
    ops = ops_of(request)
    try:
        form = await checked_form(request)
        if what == "ack":
            await ops.acknowledge_alarm(actor, alarm_id, form.get("comment") or None)
        elif what == "silence":
            await ops.silence_alarm(actor, alarm_id)
        else:
            try:
                minutes: Any = float(str(form.get("minutes") or ""))
            except ValueError:
                raise Invalid("minutes", "minutes must be a number") from None
            await ops.shelve_alarm(actor, alarm_id, form.get("reason"), minutes)
    except (OpError, HttpError) as e:
        return refused(request, e)
    return done(str(form.get("next") or "/alarms"))


@router.post("/alarms/{alarm_id}/ack")
async def ack(request: Request, actor: PageActor, alarm_id: int) -> Response:
    return await _act(request, actor, alarm_id, "ack")


@router.post("/alarms/{alarm_id}/silence")
async def silence(request: Request, actor: PageActor, alarm_id: int) -> Response:
    return await _act(request, actor, alarm_id, "silence")


@router.post("/alarms/{alarm_id}/shelve")
async def shelve(request: Request, actor: PageActor, alarm_id: int) -> Response:
    return await _act(request, actor, alarm_id, "shelve")
