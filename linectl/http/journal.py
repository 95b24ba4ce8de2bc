"""The journal of actions over HTTP: `GET /api/journal` and the console's `/journal`.

Both search through linectl.ops.journal (by inspection, vehicle, person,
action and time, newest first) and both export what they found as CSV with
`format=csv`. The API answers http.md's entries; the page shows them as a
table a person reads, each with who, from which terminal, what, the reason
and what changed, and links a target to its page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from linectl.http.api import ops_of
from linectl.http.auth import api_actor, page_actor
from linectl.http.pages import render_async
from linectl.ops.actor import Actor
from linectl.ops.errors import Invalid
from linectl.ops.journal import LIMIT_MAX, JournalQuery, search, to_csv
from linectl.store.journal import JournalRecord

router = APIRouter()
PAGE_LIMIT = 200


def _csv(entries: list[JournalRecord], now: datetime) -> Response:
    name = f"journal-{now:%Y%m%d-%H%M%S}.csv"
    return Response(
        to_csv(entries),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _format(fmt: str) -> str:
    if fmt not in ("json", "csv", "html"):
        raise Invalid("format", "format must be csv (or json for the API)")
    return fmt


@router.get("/api/journal")
async def journal_api(
    request: Request,
    actor: Annotated[Actor, Depends(api_actor)],
    inspection: str = "",
    vehicle: str = "",
    user: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
    before: int | None = None,
    limit: int | None = None,
    format: str = "json",
) -> Any:
    """http.md's journal, newest first; `vehicle` (plate or VIN), `action`, `until`,
    `before` (a seq) and `limit` added to the contract's filters. CSV holds every
    match up to the most one answer gives, unless `limit` says fewer."""
    ops = ops_of(request)
    fmt = _format(format)
    if limit is None:
        limit = LIMIT_MAX if fmt == "csv" else PAGE_LIMIT
    q = JournalQuery.of(
        inspection=inspection, vehicle=vehicle, user=user, action=action,
        since=since, until=until, before=before, limit=limit,
    )  # fmt: skip
    entries = await search(ops, actor, q)
    if fmt == "csv":
        return _csv(entries, ops.clock.wall())
    return [e.to_json() for e in entries]


@router.get("/journal", name="journal")
async def journal_page(
    request: Request,
    actor: Annotated[Actor, Depends(page_actor)],
    inspection: str = "",
    vehicle: str = "",
    user: str = "",
    action: str = "",
    since: str = "",
    until: str = "",
    before: int | None = None,
    format: str = "html",
) -> Response:
    ops = ops_of(request)
    query = {
        "inspection": inspection, "vehicle": vehicle, "user": user, "action": action,
        "since": since, "until": until,
    }  # fmt: skip
    error = None
    entries: list[JournalRecord] = []
    try:
        fmt = _format(format)
        limit = LIMIT_MAX if fmt == "csv" else PAGE_LIMIT  # the export: every match
        entries = await search(ops, actor, JournalQuery.of(**query, before=before, limit=limit))
    except Invalid as e:
        error, fmt = e, "html"
    if fmt == "csv":
        return _csv(entries, ops.clock.wall())
    more = len(entries) == PAGE_LIMIT
    return await render_async(
        request,
        "journal.html",
        422 if error else 200,
        page="journal",
        entries=entries,
        query=query,
        error=error,
        older=entries[-1].seq if more else None,
    )
