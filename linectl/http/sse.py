"""`GET /api/events`: the site's event stream as server-sent events.

Each client gets its own bounded subscription to the site's EventBus: a slow
or stalled browser loses its oldest events (and is told how many, in a
`dropped` event, so it can reload what it shows) and never holds up the
line. A stream starts with every line's status, so a board is right at once,
then sends every event as `id: SEQ`, `event: TYPE`, `data: JSON` (the event's
mqtt.md payload plus its line). A comment line every `heartbeat_s` keeps
proxies from closing an idle stream and tells a dead client from a quiet
site. The stream ends when the client goes, when its console session
expires (the browser then signs in again), and when the server stops.

`?types=a,b` limits the stream to those event types.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from linectl.clock import utc_iso
from linectl.events import Event
from linectl.http.api import ops_of
from linectl.http.auth import api_actor
from linectl.ops.actor import Actor

router = APIRouter(prefix="/api")

QUEUE_PER_CLIENT = 1000
# How often a waiting stream looks up from its queue (server stopping, session expired).
WAKE_S = 1.0


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return utc_iso(obj)
    for attr in ("tolist", "item"):  # numpy arrays and scalars
        if hasattr(obj, attr):
            return getattr(obj, attr)()
    return str(obj)


def frame(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=_default)
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {text}\n\n"


def event_frame(ev: Event) -> str:
    return frame(ev.type, {**ev.payload(), "line": ev.line}, ev.seq)


@router.get("/events")
async def events(
    request: Request, actor: Annotated[Actor, Depends(api_actor)], types: str | None = None
) -> StreamingResponse:
    ops = ops_of(request)
    wanted = {t.strip() for t in types.split(",") if t.strip()} if types else None
    sub = ops.events(actor, wanted, maxsize=QUEUE_PER_CLIENT)
    state = request.app.state
    heartbeat_s: float = state.settings.heartbeat_s
    stopping: asyncio.Event = state.stopping

    async def stream() -> AsyncIterator[str]:
        with sub:
            yield "retry: 3000\n\n"
            if wanted is None or "line_status" in wanted:
                for status in ops.lines(actor):
                    yield frame(
                        "line_status",
                        {"type": "line_status", "line": status["id"], "status": status},
                    )
            dropped = 0
            loop = asyncio.get_running_loop()
            quiet_since = loop.time()
            while not stopping.is_set():
                if actor.expires_at is not None and datetime.now(UTC) >= actor.expires_at:
                    yield frame("session_expired", {"type": "session_expired"})
                    return
                try:
                    async with asyncio.timeout(min(WAKE_S, heartbeat_s)):
                        ev = await sub.get()
                except TimeoutError:
                    if loop.time() - quiet_since >= heartbeat_s:
                        quiet_since = loop.time()
                        yield ": keep-alive\n\n"
                    continue
                if sub.dropped != dropped:
                    yield frame("dropped", {"type": "dropped", "dropped": sub.dropped - dropped})
                    dropped = sub.dropped
                quiet_since = loop.time()
                yield event_frame(ev)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
