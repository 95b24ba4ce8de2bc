"""The console's display levels, after ISA-101, each a page over the board's stream.

- Level 1, `/`: every line at a glance, exceptions only (what is not normal),
  the day's figures, and no control at all, whatever the role.
- Level 2, `/lines/{id}`: one line with its controls: pause and resume,
  abort, proxy-driver duty, and who holds control of the line.
- Level 3, `/stations/{line}/{station}`: one station, its live values drawn
  as trends against the limit bands of the limit files (linectl.ops.bands).
- Level 4, `/devices` and `/devices/{id}`: device diagnostics (the data of
  `GET /api/devices`), for the roles that may diagnose.

Levels 1 to 3 are kept live by linectl.http.board's stream; level 4 reloads
itself. Any page with `?kiosk=1` is the wall screen's: no menu and no
controls, large type (linectl.http.pages.render).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from linectl.http.alarm_words import words as alarm_words
from linectl.http.auth import page_actor
from linectl.http.board import hub_of
from linectl.http.console import refused
from linectl.http.pages import render_async
from linectl.ops.actor import Action, Actor
from linectl.ops.bands import bands
from linectl.ops.errors import OpError, Unknown

router = APIRouter()
PageActor = Annotated[Actor, Depends(page_actor)]
DEVICES_REFRESH_S = 5


async def _board_page(
    request: Request, actor: Actor, template: str, lines: list[dict[str, Any]], **extra: Any
) -> Response:
    hub = hub_of(request)
    return await render_async(
        request,
        template,
        lines=lines,
        today=hub.today,
        recent=list(hub.recent),
        judged=hub.judged_at,
        now=hub.site.clock.wall(),
        heartbeat_ms=int(request.app.state.settings.heartbeat_s * 1000),
        **extra,
    )


@router.get("/", name="home")
async def overview(request: Request, actor: PageActor) -> Response:
    """Level 1: every line, exceptions only, no controls."""
    hub = hub_of(request)
    await hub.ready()
    lines = hub.views.board(actor)
    return await _board_page(
        request, actor, "overview.html", lines, page="board", readonly=True,
        alarm_words=alarm_words(),
    )  # fmt: skip


@router.get("/lines/{line_id}", name="line")
async def line(request: Request, actor: PageActor, line_id: str) -> Response:
    """Level 2: one line with its controls."""
    hub = hub_of(request)
    await hub.ready()
    try:
        hub.views.ops.allow(actor, Action.READ)
        hub.views.ops.control.seen(actor)  # the holder is here: their session lives on
        ln = hub.views.line(hub.views.ops.site_line(line_id))
    except OpError as e:
        return refused(request, e)
    return await _board_page(request, actor, "board.html", [ln], page=f"line-{line_id}")


@router.get("/stations/{line_id}/{station_id}", name="station")
async def station(request: Request, actor: PageActor, line_id: str, station_id: str) -> Response:
    """Level 3: one station's live values against its limit bands."""
    hub = hub_of(request)
    await hub.ready()
    try:
        hub.views.ops.allow(actor, Action.READ)
        ln = hub.views.line(hub.views.ops.site_line(line_id))
        st = next((s for s in ln["stations"] if s["id"] == station_id), None)
        if st is None:
            raise Unknown(f"no station {station_id} on line {line_id}")
    except OpError as e:
        return refused(request, e)
    site = hub.site
    band = bands(site.limits, st["kind"], site.cfg.limits.limit_set)
    return await _board_page(
        request, actor, "station.html", [ln], page=f"line-{line_id}", st=st, bands=band
    )


@router.get("/devices", name="devices")
async def devices(request: Request, actor: PageActor) -> Response:
    """Level 4: every device with its counters and errors (a role that may diagnose)."""
    ops = hub_of(request).views.ops
    try:
        rows = ops.devices(actor)
    except OpError as e:
        return refused(request, e)
    return await render_async(
        request, "devices.html", page="devices", rows=rows, one=None, refresh_s=DEVICES_REFRESH_S
    )


@router.get("/devices/{device_id}", name="device")
async def device(request: Request, actor: PageActor, device_id: str) -> Response:
    ops = hub_of(request).views.ops
    try:
        rows = ops.devices(actor)
        one = next((d for d in rows if d["id"] == device_id), None)
        if one is None:
            raise Unknown(f"no device {device_id}")
    except OpError as e:
        return refused(request, e)
    return await render_async(
        request, "devices.html", page="devices", rows=[one], one=one, refresh_s=DEVICES_REFRESH_S
    )
