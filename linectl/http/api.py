"""The JSON API of reference/http.md: each path a thin call into the operations layer.

Routes take the actor (linectl.http.auth), read their input (query, path,
a bounded body) and call `Operations`; the role check, validation and
journal happen there. Errors come back as `{"error": {"code", "message"}}`
(linectl.http.app maps them). `/api/events` is in linectl.http.sse.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from linectl.http.auth import api_actor
from linectl.http.bodies import TooLarge, json_object, read_body, require_json
from linectl.i18n import DEFAULT_LANG
from linectl.ops.actor import Actor
from linectl.ops.errors import Invalid
from linectl.ops.operations import Operations
from linectl.payload import peek_request_id
from linectl.registration import MAX_REGISTRATION_BYTES, read_request_id

router = APIRouter(prefix="/api")
ActorDep = Annotated[Actor, Depends(api_actor)]


def ops_of(request: Request) -> Operations:
    ops: Operations = request.app.state.ops
    return ops


@router.get("/lines")
async def lines(request: Request, actor: ActorDep) -> list[dict[str, Any]]:
    return ops_of(request).lines(actor)


@router.get("/devices")
async def devices(request: Request, actor: ActorDep) -> list[dict[str, Any]]:
    """Per device: up, last error, requests, errors, timeouts, reconnects, latency."""
    return ops_of(request).devices(actor)


@router.get("/inspections")
async def inspections(
    request: Request,
    actor: ActorDep,
    plate: str | None = None,
    vin: str | None = None,
    verdict: str | None = None,
    since: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    return await ops_of(request).inspections(
        actor, plate=plate, vin=vin, verdict=verdict, since=since, limit=limit
    )


@router.get("/inspections/{inspection_id}")
async def inspection(request: Request, actor: ActorDep, inspection_id: str) -> dict[str, Any]:
    return await ops_of(request).inspection(actor, inspection_id)


@router.get("/inspections/{inspection_id}/report")
async def report(
    request: Request,
    actor: ActorDep,
    inspection_id: str,
    format: str = "html",
    lang: str = DEFAULT_LANG,
) -> Response:
    """The printable report (检验报告): HTML, or PDF with `?format=pdf`; `lang` zh or en."""
    data, content_type = await ops_of(request).report(actor, inspection_id, lang, format)
    return Response(data, media_type=content_type)


@router.post("/registrations")
async def register(request: Request, actor: ActorDep) -> JSONResponse:
    """A registration payload of mqtt.md; 200 with the reply when accepted, 422 with it
    when refused, the same reply again for a request_id already answered."""
    require_json(request)
    try:
        body = await read_body(request, MAX_REGISTRATION_BYTES)
    except TooLarge as e:
        # Refused before decoding, like over MQTT; the reply still names the request.
        rid = read_request_id({"request_id": peek_request_id(e.head)})
        reply = {
            "request_id": rid,
            "accepted": False,
            "error": {"code": e.code, "field": "(payload)", "message": e.message},
        }
        return JSONResponse(reply, status_code=413)
    reply = await ops_of(request).register_payload(actor, body)
    return JSONResponse(reply, status_code=200 if reply.get("accepted") else 422)


@router.post("/inspections/{inspection_id}/abort")
async def abort(request: Request, actor: ActorDep, inspection_id: str) -> dict[str, Any]:
    body = await json_object(request, {"reason"})
    return await ops_of(request).abort(actor, inspection_id, body.get("reason"))


@router.post("/drivers/{driver_id}/duty")
async def duty(request: Request, actor: ActorDep, driver_id: str) -> dict[str, Any]:
    body = await json_object(request, {"on_duty"})
    return await ops_of(request).set_duty(actor, driver_id, body.get("on_duty"))


@router.post("/drivers/{driver_id}/checkin")
async def checkin(request: Request, actor: ActorDep, driver_id: str) -> dict[str, Any]:
    # Added to http.md's paths (issue 15): a driver's return, seen by an operator.
    await json_object(request, set(), optional=True)
    return await ops_of(request).check_in(actor, driver_id)


@router.post("/lines/{line_id}/pause")
async def pause(request: Request, actor: ActorDep, line_id: str) -> dict[str, Any]:
    body = await json_object(request, {"reason"}, optional=True)
    return await ops_of(request).pause(actor, line_id, body.get("reason"))


@router.post("/lines/{line_id}/stations/{station_id}/maintenance")
async def maintenance(
    request: Request, actor: ActorDep, line_id: str, station_id: str
) -> dict[str, Any]:
    # Not in http.md's paths (issue 14): a station in maintenance, or back from it.
    body = await json_object(request, {"on", "reason"})
    return await ops_of(request).maintenance(
        actor, line_id, station_id, body.get("on"), body.get("reason")
    )


@router.post("/lines/{line_id}/resume")
async def resume(request: Request, actor: ActorDep, line_id: str) -> dict[str, Any]:
    body = await json_object(request, {"reason"}, optional=True)
    return await ops_of(request).resume(actor, line_id, body.get("reason"))


@router.get("/lines/{line_id}/control")
async def control(request: Request, actor: ActorDep, line_id: str) -> dict[str, Any]:
    """Which console session holds control of the line (linectl.ops.control), if any."""
    holder = ops_of(request).control_of(actor, line_id)
    return {"line": line_id, "holder": None if holder is None else holder.to_json()}


@router.get("/audit")
async def audit(
    request: Request, actor: ActorDep, limit: int = 100, before: int | None = None
) -> list[dict[str, Any]]:
    """The journal, newest first; `before` a seq, to page back."""
    return await ops_of(request).audit(actor, limit=limit, before=before)


@router.get("/alarms")
async def alarms(
    request: Request,
    actor: ActorDep,
    state: str = "active",
    line: str | None = None,
    priority: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """`state=active` (every alarm not closed), `all`, or one state of http.md."""
    return await ops_of(request).alarms(
        actor, state=state, line=line, priority=priority, limit=limit
    )


@router.get("/alarms/summary")
async def alarm_summary(request: Request, actor: ActorDep) -> dict[str, Any]:
    """The banner's figures: the first alarm to show, how many wait, the sound, flood."""
    return ops_of(request).alarm_summary(actor)


@router.get("/alarms/top")
async def top_alarms(request: Request, actor: ActorDep, days: int = 7) -> list[dict[str, Any]]:
    """The conditions raised most often in the last `days` (1..31)."""
    if not 1 <= days <= 31:
        raise Invalid("days", "days must be 1..31")
    return await ops_of(request).top_alarms(actor, days)


@router.post("/alarms/{alarm_id}/ack")
async def ack_alarm(request: Request, actor: ActorDep, alarm_id: int) -> dict[str, Any]:
    body = await json_object(request, {"comment"}, optional=True)
    return await ops_of(request).acknowledge_alarm(actor, alarm_id, body.get("comment"))


@router.post("/alarms/{alarm_id}/silence")
async def silence_alarm(request: Request, actor: ActorDep, alarm_id: int) -> dict[str, Any]:
    await json_object(request, set(), optional=True)
    return await ops_of(request).silence_alarm(actor, alarm_id)


@router.post("/alarms/{alarm_id}/shelve")
async def shelve_alarm(request: Request, actor: ActorDep, alarm_id: int) -> dict[str, Any]:
    body = await json_object(request, {"reason", "minutes"})
    return await ops_of(request).shelve_alarm(
        actor, alarm_id, body.get("reason"), body.get("minutes")
    )
