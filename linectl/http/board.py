"""The board's live stream (`/board/events`), behind every level of the console.

The pages (linectl.http.levels: the overview, a line, a station) draw the
fragments below once; this stream keeps them current.

One `BoardHub` per app listens to the site's event stream once, for every
browser. When an event changes what the board shows, the hub works out which
fragments it touches (a line's head, one station, the queue, the proxy-driver
pool, the finished list), renders each of them once per kind of browser
(language and rights: an operator's fragment has buttons, a viewer's none),
keeps only those that changed, and hands the same SSE frame to every browser
of that kind. A read-only stream (`?view=ro`: the overview, the wall screen)
is its own kind, with no controls whatever the role. A burst of events is rendered once. `live` events (brake
forces, emission readings, lamp results: linectl.stations.live) pass through
as JSON, encoded once. The browser (static/board.js) swaps fragments by id
and draws the live values.

A browser that falls behind (its queue of frames full) is told to reload,
never held onto; a new or reconnected stream first gets every fragment as it
stands, so a board is right at once, whatever it missed. A quiet stream sends
a `ping` event every heartbeat, which a browser can see (a comment line it
cannot): a board that hears nothing for a few heartbeats knows its data is
stale even when the connection has not been seen to drop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from linectl.events import Event
from linectl.http.alarm_words import words as alarm_words
from linectl.http.auth import api_actor
from linectl.http.lang import ConsoleTemplates, request_lang
from linectl.ops.actor import Action, Actor
from linectl.ops.views import Views
from linectl.store.records import InspectionState

log = logging.getLogger(__name__)

router = APIRouter()

CONSOLE = Actor.system("console")  # the hub reads the site on behalf of every browser
RECENT = 10
QUEUE_PER_CLIENT = 2000
WAKE_S = 1.0
Key = tuple[str, ...]  # ("head", line), ("st", line, station), ("queue", line), ...
# Per line: head, queue, proxy drivers, exceptions (the overview's), control (who holds it).
LINE_PARTS = ("head", "queue", "drivers", "exc", "ctl")


def rights(actor: Actor, readonly: bool = False) -> dict[str, bool]:
    """What the console offers this actor; the operations refuse the rest anyway.
    A read-only view (the overview, the wall screen) offers nothing."""
    return {
        "register": actor.may(Action.REGISTER) and not readonly,
        "retest": actor.may(Action.RETEST) and not readonly,
        "abort": actor.may(Action.ABORT) and not readonly,
        "duty": actor.may(Action.DUTY) and not readonly,
        "pause": actor.may(Action.PAUSE) and actor.may(Action.RESUME) and not readonly,
        "maintenance": actor.may(Action.MAINTENANCE) and not readonly,
    }


@dataclass(frozen=True)
class Variant:
    """A kind of browser: every one of a kind gets the same fragments."""

    lang: str
    can: tuple[tuple[str, bool], ...]

    @classmethod
    def of(cls, actor: Actor, lang: str, readonly: bool = False) -> Variant:
        return cls(lang, tuple(sorted(rights(actor, readonly).items())))


def sse(event: str, data: dict[str, Any]) -> str:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)
    return f"event: {event}\ndata: {text}\n\n"


def fragment_id(key: Key) -> str:
    if key[0] == "recent":
        return "recent"
    if key[0] == "st":
        return f"line-{key[1]}-st-{key[2]}"
    return f"line-{key[1]}-{key[0]}"


class Client:
    def __init__(self, variant: Variant, actor: Actor) -> None:
        self.variant = variant
        self.actor = actor
        self.queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_PER_CLIENT)
        self.behind = False

    def put(self, frame: str) -> None:
        if self.behind:
            return
        try:
            self.queue.put_nowait(frame)
        except asyncio.QueueFull:
            # Too far behind to catch up frame by frame: the browser reloads the page.
            self.behind = True
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait(sse("reload", {}))


class BoardHub:
    def __init__(self, views: Views, templates: ConsoleTemplates) -> None:
        self.views = views
        self.templates = templates
        self.site = views.site
        # Items judged at each station for the vehicle on it: (inspection, [(code, verdict)]).
        self.judged: dict[tuple[str, str], tuple[str | None, list[tuple[str, str]]]] = {}
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.today: dict[str, dict[str, int]] = {}
        self.renders = 0  # fragments rendered, for tests and the benchmark
        self._clients: dict[Variant, set[Client]] = {}
        self._html: dict[Variant, dict[str, str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._loaded: asyncio.Event = asyncio.Event()
        self._stopping = False

    # --- lifecycle --------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None and not self._stopping:
            self._task = asyncio.create_task(self._run(), name="board-hub")

    async def ready(self) -> None:
        self.start()
        await self._loaded.wait()

    async def aclose(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _load(self) -> None:
        self.today = await self.views.today(CONSOLE)
        rows = await self.site.store.list_inspections(limit=50)
        done = [r for r in rows if r.state in (InspectionState.COMPLETED, InspectionState.ABORTED)]
        self.recent.clear()
        for r in reversed(done[:RECENT]):
            self.recent.appendleft(
                {
                    "inspection_id": r.id,
                    "line": r.line,
                    "plate": r.plate,
                    "outcome": "aborted" if r.state == "aborted" else str(r.verdict),
                    "at": r.finished_at,
                }
            )
        self._loaded.set()

    async def _run(self) -> None:
        with self.site.events.subscribe(maxsize=20_000) as sub:
            try:
                await self._load()
            except Exception:
                log.exception("board: could not read the day's figures")
                self._loaded.set()
            dropped = 0
            while True:
                batch = [await sub.get()]
                while (more := sub.get_nowait()) is not None:
                    batch.append(more)
                everything = sub.dropped != dropped
                dropped = sub.dropped
                try:
                    await self._handle(batch, everything)
                except Exception:
                    log.exception("board: could not update the board")

    # --- events to fragments ------------------------------------------------------------

    async def _handle(self, batch: list[Event], everything: bool) -> None:
        dirty: set[Key] = set()
        finished = False
        for ev in batch:
            if ev.type == "live":
                self._fan_out_all(sse("live", {**ev.payload(), "line": ev.line, "seq": ev.seq}))
                continue
            dirty |= self._touched(ev)
            if ev.type in ("completed", "aborted"):
                finished = True
                self.recent.appendleft(
                    {
                        "inspection_id": ev.inspection_id,
                        "line": ev.line,
                        "plate": ev.data.get("plate", ""),
                        "outcome": ev.data.get("verdict", "aborted"),
                        "at": ev.ts,
                    }
                )
        if finished:
            self.today = await self.views.today(CONSOLE)
        if everything:
            dirty = self.all_keys()
        if dirty:
            # Stamped with the batch's first event: how late a fragment is, at worst.
            self._publish(dirty, batch[0].seq)

    def _touched(self, ev: Event) -> set[Key]:
        line, station = ev.line or "", str(ev.data.get("station") or "")
        t = ev.type
        if t == "line_status":
            return {(part, line) for part in LINE_PARTS} | {
                ("st", line, s.procedure.id) for s in self._line(line).slots
            }
        if t == "control":
            return {("ctl", line)}
        if t == "alarms":  # the line's open alarms changed (linectl.alarms.monitor)
            return {("exc", line)}
        if t == "station_started":
            self.judged[(line, station)] = (ev.inspection_id, [])
            return {("st", line, station), ("exc", line)}
        if t == "item_judged":
            owner, items = self.judged.get((line, station), (ev.inspection_id, []))
            if owner != ev.inspection_id:
                owner, items = ev.inspection_id, []
            items.append((str(ev.data.get("code")), str(ev.data.get("verdict"))))
            self.judged[(line, station)] = (owner, items)
            return {("st", line, station)}
        if t in ("prompt", "station_finished"):
            return {("st", line, station), ("exc", line)}
        if t == "queued":
            return {("queue", line), ("exc", line)}
        if t == "driver_assigned":
            return {("drivers", line), ("queue", line), ("exc", line)}
        if t in ("completed", "aborted"):
            return {("head", line), ("queue", line), ("recent",)}
        return set()

    def _line(self, line_id: str) -> Any:
        return self.site.line(line_id)

    def judged_at(self, line_id: str, st: dict[str, Any]) -> list[tuple[str, str]]:
        """The items judged so far for the vehicle now on the station (none when free)."""
        owner, items = self.judged.get((line_id, st["id"]), (None, []))
        return items if owner is not None and owner == st["inspection_id"] else []

    def all_keys(self) -> set[Key]:
        keys: set[Key] = {("recent",)}
        for ln in self.site.lines:
            keys |= {(part, ln.id) for part in LINE_PARTS}
            keys |= {("st", ln.id, s.procedure.id) for s in ln.slots}
        return keys

    def _render(self, variant: Variant, key: Key, lines: dict[str, dict[str, Any]]) -> str:
        self.renders += 1
        can = dict(variant.can)
        lang = variant.lang
        macro = self.templates.macro
        if key[0] == "recent":
            return str(macro(lang, "_board.html", "recent")(list(self.recent)))
        ln = lines[key[1]]
        if key[0] == "head":
            return str(macro(lang, "_board.html", "line_head")(ln, self.today, can, ""))
        if key[0] == "st":
            st = next(s for s in ln["stations"] if s["id"] == key[2])
            judged = self.judged_at(key[1], st)
            return str(macro(lang, "_board.html", "station")(key[1], st, judged, can, ""))
        if key[0] == "exc":
            return str(macro(lang, "_board.html", "exceptions")(ln, alarm_words()))
        if key[0] == "ctl":
            return str(macro(lang, "_board.html", "control")(ln, can, ""))
        return str(macro(lang, "_board.html", key[0])(ln, can, ""))

    def _publish(self, dirty: set[Key], seq: int = 0) -> None:
        variants = [v for v, cs in self._clients.items() if cs]
        if not variants:
            self._html.clear()  # nobody watching: the next browser gets a fresh render
            return
        needed = {k[1] for k in dirty if k[0] != "recent"}
        lines = {ln.id: self.views.line(ln) for ln in self.site.lines if ln.id in needed}
        now = int(self.site.clock.wall().timestamp() * 1000)
        for v in variants:
            cache = self._html.setdefault(v, {})
            for key in sorted(dirty):
                fid = fragment_id(key)
                html = self._render(v, key, lines)
                if cache.get(fid) == html:
                    continue
                cache[fid] = html
                frame = sse("frag", {"id": fid, "html": html, "now": now, "seq": seq})
                for c in self._clients[v]:
                    c.put(frame)

    def _fan_out_all(self, frame: str) -> None:
        for clients in self._clients.values():
            for c in clients:
                c.put(frame)

    # --- browsers -----------------------------------------------------------------------

    def connect(self, actor: Actor, lang: str, readonly: bool = False) -> Client:
        """A new stream: it starts with every fragment as it stands."""
        variant = Variant.of(actor, lang, readonly)
        client = Client(variant, actor)
        if not self._clients.get(variant):
            self._html.pop(variant, None)
        self._clients.setdefault(variant, set()).add(client)
        cache = self._html.setdefault(variant, {})
        keys = self.all_keys()
        if len(cache) < len(keys):
            lines = {ln.id: self.views.line(ln) for ln in self.site.lines}
            for key in keys:
                cache[fragment_id(key)] = self._render(variant, key, lines)
        now = int(self.site.clock.wall().timestamp() * 1000)
        for fid, html in cache.items():
            client.put(sse("frag", {"id": fid, "html": html, "now": now}))
        return client

    def disconnect(self, client: Client) -> None:
        self._clients.get(client.variant, set()).discard(client)

    @property
    def clients(self) -> int:
        return sum(len(cs) for cs in self._clients.values())


def hub_of(request: Request) -> BoardHub:
    hub: BoardHub = request.app.state.board
    return hub


@router.get("/board/events")
async def board_events(
    request: Request, actor: Annotated[Actor, Depends(api_actor)], view: str = ""
) -> StreamingResponse:
    """The board's fragments and live values as server-sent events; `view=ro`: the
    read-only kind (no controls whatever the role)."""
    hub = hub_of(request)
    hub.views.ops.allow(actor, Action.READ)
    await hub.ready()
    client = hub.connect(actor, request_lang(request), readonly=view == "ro")
    state = request.app.state
    heartbeat_s: float = state.settings.heartbeat_s
    stopping: asyncio.Event = state.stopping

    async def stream() -> AsyncIterator[str]:
        try:
            yield "retry: 2000\n\n"
            loop = asyncio.get_running_loop()
            quiet_since = loop.time()
            while not stopping.is_set():
                if actor.expires_at is not None and datetime.now(UTC) >= actor.expires_at:
                    yield sse("session_expired", {})
                    return
                try:
                    async with asyncio.timeout(min(WAKE_S, heartbeat_s)):
                        frame = await client.queue.get()
                except TimeoutError:
                    if loop.time() - quiet_since >= heartbeat_s:
                        quiet_since = loop.time()
                        now = int(hub.site.clock.wall().timestamp() * 1000)
                        yield sse("ping", {"now": now})
                    continue
                # Whatever else is waiting goes in the same write.
                frames = [frame]
                while not client.queue.empty() and len(frames) < 200:
                    frames.append(client.queue.get_nowait())
                quiet_since = loop.time()
                yield "".join(frames)
                if client.behind:
                    return
        finally:
            hub.disconnect(client)

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
