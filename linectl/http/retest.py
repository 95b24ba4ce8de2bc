"""The console's retest (复检): the form behind an inspection page's retest button.

`GET /inspections/{id}/retest` shows what `Operations.retest_defaults` offers:
the vehicle as the inspection has it (fixed: a retest is the same vehicle),
the revision its result will carry, the deadline if the site has one, and a
checkbox per item of the inspection, those that failed or were not judged
ticked (with every axle when BT is among them). When no retest may be asked
now the page says why and offers no form.

`POST /inspections/{id}/retest` sends the ticked items as the retest payload
of mqtt.md ("Retest") through `Operations.register`, the one operation MQTT
and `POST /api/registrations` use: the same right, validation, journal and
reply. Nothing is checked here. The VIN is the inspection's own, read again
at the post, never a form field. No item ticked is sent as an empty list, so
the operation refuses it, rather than quietly retesting the default items. A
retest accepted goes back to the inspection page, which shows it queued; one
refused shows the form again with the refusal in words (422), and a fresh
request_id so the corrected form is a new request.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from linectl.http.auth import HttpError, checked_form, page_actor
from linectl.http.console import ops_of, refused
from linectl.http.pages import render
from linectl.http.regform import new_request_id
from linectl.ops.actor import Action, Actor
from linectl.ops.errors import Forbidden, OpError

router = APIRouter()
PageActor = Annotated[Actor, Depends(page_actor)]


def retest_payload(
    request_id: str, inspection_id: str, vin: str, items: list[str]
) -> dict[str, Any]:
    """mqtt.md's retest request for these items of the inspection."""
    return {
        "request_id": request_id,
        "retest_of": inspection_id,
        "vehicle": {"vin": vin},
        "items": items,
    }


def _page(
    request: Request,
    offer: dict[str, Any],
    status: int = 200,
    *,
    items: list[str] | None = None,
    error: dict[str, Any] | None = None,
) -> Response:
    return render(
        request,
        "retest.html",
        status,
        page="inspections",
        offer=offer,
        items=offer["items"] if items is None else items,
        error=error,
        # Shown in the site's time zone like every time on the console.
        expires=datetime.fromisoformat(offer["expires_at"]) if offer["expires_at"] else None,
        request_id=new_request_id(),
    )


@router.get("/inspections/{inspection_id}/retest", name="retest_form")
async def retest_form(request: Request, actor: PageActor, inspection_id: str) -> Response:
    ops = ops_of(request)
    try:
        if not actor.may(Action.RETEST):
            raise Forbidden(f"{actor.name} ({actor.role}) may not ask for a retest")
        offer = await ops.retest_defaults(actor, inspection_id)
    except OpError as e:
        return refused(request, e)
    return _page(request, offer, 200 if offer["retestable"] else 409)


@router.post("/inspections/{inspection_id}/retest")
async def retest(request: Request, actor: PageActor, inspection_id: str) -> Response:
    ops = ops_of(request)
    try:
        form = await checked_form(request)
    except HttpError as e:
        return refused(request, e)
    items = [str(i) for i in form.getlist("items") if isinstance(i, str)]
    try:
        offer = await ops.retest_defaults(actor, inspection_id)
        payload = retest_payload(
            str(form.get("request_id") or ""), inspection_id, offer["vin"], items
        )
        reply = await ops.register(actor, payload)
    except OpError as e:
        return refused(request, e)
    if reply.get("accepted"):
        return RedirectResponse(f"/inspections/{inspection_id}", status_code=303)
    # What may be asked now, read again: the refusal may have changed it.
    offer = await ops.retest_defaults(actor, inspection_id)
    return _page(request, offer, 422, items=items, error=reply.get("error") or {})
