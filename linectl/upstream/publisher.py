"""What the site tells the registry: results from the outbox, events, line status.

Results go through the database outbox, never straight from memory: the
result and its outbox row were committed in one transaction, and
`Publisher.drain_outbox` sends the undelivered rows, oldest first, with QoS 1,
marking a row delivered only once the broker has acknowledged it (PUBACK).
It drains at every (re)connection, whenever an inspection completes, and
every `poll_s` besides (rows written by another process, say a retest). A
row that was published but whose PUBACK was lost to an outage or a crash is
sent again: the registry drops the duplicate by (inspection_id, revision),
which the stored payload keeps unchanged.

Lifecycle events are published QoS 1 on their line's events topic. They are
not kept in the database: during an outage they wait in memory (the site's
event stream, bounded) and go out after the reconnection; a restart loses
those still waiting. Line status is retained, latest first: after an outage
only the current status is sent, not the history.

The line's open alarms (linectl.alarms) are retained on its alarms topic,
from the site connection: all of them at every (re)connection, then a line's
on every change of its alarms, always the monitor's current list.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

import aiomqtt

from linectl.events import LIFECYCLE, Event
from linectl.store.records import OutboxRecord
from linectl.store.repo import OUTBOX_RESULT
from linectl.upstream.connection import raise_if_cancelling
from linectl.upstream.topics import OFFLINE_PAYLOAD, Topics

if TYPE_CHECKING:
    from linectl.site import Site

log = logging.getLogger(__name__)

OUTBOX_BATCH = 20  # paho's default in-flight window
OUTBOX_POLL_S = 5.0  # real seconds
OFFLINE_TIMEOUT_S = 2.0  # a last status on the way out must not hold up a shutdown


def to_json(obj: Any) -> bytes:
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (JSON's "\\ud800" decodes to one) has no UTF-8 form;
        # escaped, the payload stays valid JSON and valid UTF-8. Raising here
        # would end the session before the message was acknowledged.
        return json.dumps(obj, ensure_ascii=True, separators=(",", ":"), default=str).encode()


async def until_disconnected(client: aiomqtt.Client) -> None:
    """Return never; raise aiomqtt's MqttError when the connection is lost.

    aiomqtt tells of a lost connection only through its message iterator (a
    QoS 1 publish would just time out), so a session that receives nothing
    still iterates."""
    async for message in client.messages:
        log.debug("unexpected message on %s", message.topic)


class Publisher:
    def __init__(
        self,
        site: Site,
        topics: Topics,
        *,
        poll_s: float = OUTBOX_POLL_S,
        batch: int = OUTBOX_BATCH,
    ) -> None:
        self.site = site
        self.topics = topics
        self.poll_s = poll_s
        self.batch = batch
        # Subscribed now, before anything runs: events of the start are kept too.
        self._lifecycle = site.events.subscribe(set(LIFECYCLE))
        self._completed = site.events.subscribe({"completed", "aborted"})
        self._status = site.events.subscribe({"line_status"})
        self._alarms = site.events.subscribe({"alarms"})
        self.alarm_messages = 0
        self._latest: dict[str, dict[str, Any]] = {}
        self._status_changed = {ln.id: asyncio.Event() for ln in site.lines}
        self._unsent_event: Event | None = None
        # A line is announced online once registrations reach the site (Upstream
        # sets this to the intake's subscription): "online" means "send vehicles".
        self.taking_registrations: asyncio.Event | None = None
        self._skipped: set[int] = set()
        self.delivered = 0  # outbox rows acknowledged by the broker, this run
        self._delivery = asyncio.Condition()
        self.events_sent = 0

    def close(self) -> None:
        for sub in (self._lifecycle, self._completed, self._status, self._alarms):
            sub.close()

    # --- results: the outbox --------------------------------------------------------

    async def drain_outbox(self, client: aiomqtt.Client) -> None:
        """Drain now, then again on every completion and every `poll_s`."""
        while True:
            await self.drain_once(client)
            raise_if_cancelling()
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a
            # cancellation that meets the timeout, and this loop would not stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.poll_s):
                    await self._completed.get()
            while self._completed.get_nowait() is not None:
                pass  # one drain serves every completion that woke it

    async def drain_once(self, client: aiomqtt.Client) -> int:
        """Send every undelivered row; the number acknowledged. Raises the first
        publish failure (after recording it), so the link reconnects."""
        sent = 0
        while True:
            rows = [
                r
                for r in await self.site.store.pending_outbox(self.batch + len(self._skipped))
                if r.id not in self._skipped
            ][: self.batch]
            if not rows:
                return sent
            acked: list[int] = []
            try:
                outcomes = await asyncio.gather(
                    *(self._send(client, r, acked) for r in rows), return_exceptions=True
                )
            finally:
                # Even when cancelled: what the broker acknowledged is delivered.
                if acked:
                    await self.site.store.mark_delivered(acked, self.site.clock.wall())
                    self.delivered += len(acked)
                    sent += len(acked)
                    async with self._delivery:
                        self._delivery.notify_all()
            failed = [
                (r, o) for r, o in zip(rows, outcomes, strict=True) if isinstance(o, BaseException)
            ]
            for row, exc in failed:
                await self.site.store.note_outbox_failure(row.id, f"{type(exc).__name__}: {exc}")
            if failed:
                row, exc = failed[0]
                log.info(
                    "result %s revision %s not acknowledged (%s); kept in the outbox",
                    row.inspection_id,
                    row.revision,
                    exc,
                )
                raise exc

    async def drained(self) -> None:
        """Return once the outbox is empty: every result acknowledged by the broker."""
        while True:
            seen = self.delivered
            if await self.site.store.outbox_backlog() == 0:
                return
            async with self._delivery:
                await self._delivery.wait_for(lambda seen=seen: self.delivered != seen)

    async def _send(self, client: aiomqtt.Client, row: OutboxRecord, acked: list[int]) -> None:
        if row.kind != OUTBOX_RESULT or not row.inspection_id:
            log.error("outbox row %d of unknown kind %r: not sent", row.id, row.kind)
            self._skipped.add(row.id)
            return
        await client.publish(
            self.topics.result(row.inspection_id), row.payload.encode("utf-8"), qos=1
        )
        acked.append(row.id)
        log.info("result %s revision %s delivered", row.inspection_id, row.revision)

    # --- lifecycle events -----------------------------------------------------------

    async def send_events(self, client: aiomqtt.Client) -> None:
        while True:
            ev = self._unsent_event or await self._lifecycle.get()
            # Kept until acknowledged: an event cut off by an outage goes out first after it.
            self._unsent_event = ev
            if ev.line is not None:
                await client.publish(self.topics.events(ev.line), to_json(ev.payload()), qos=1)
                self.events_sent += 1
            self._unsent_event = None
            raise_if_cancelling()

    # --- alarms ---------------------------------------------------------------------

    async def send_alarms(self, client: aiomqtt.Client) -> None:
        """Every line's open alarms, retained, now and after each change."""
        monitor = self.site.alarms
        await monitor.loaded.wait()
        while self._alarms.get_nowait() is not None:
            pass  # all lines go out now anyway
        pending = [ln.id for ln in self.site.lines]
        while True:
            while pending:
                line = pending[0]
                await client.publish(
                    self.topics.alarms(line),
                    to_json(monitor.line_payload(line)),
                    qos=1,
                    retain=True,
                )
                self.alarm_messages += 1
                pending.pop(0)
                raise_if_cancelling()
            ev = await self._alarms.get()
            pending.append(ev.line or "")
            while (more := self._alarms.get_nowait()) is not None:
                if more.line not in pending:
                    pending.append(more.line or "")
            pending = [ln for ln in pending if ln in self._status_changed]

    # --- line status ----------------------------------------------------------------

    async def route_status(self) -> None:
        """Keep the latest status of each line (runs whether connected or not)."""
        async for ev in self._status:
            line, status = ev.line, ev.data.get("status")
            if line in self._status_changed and isinstance(status, dict):
                self._latest[line] = status
                self._status_changed[line].set()

    def current_status(self, line: str) -> dict[str, Any]:
        return self._latest.get(line) or self.site.line_status(self.site.line(line))

    async def status_session(self, line: str, client: aiomqtt.Client) -> None:
        """The session of a line's status connection: the retained status on connect
        and on every change; `{"online": false}` retained when the daemon stops
        (the broker publishes the same will if the connection dies instead)."""
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(until_disconnected(client))
                tg.create_task(self._status_loop(line, client))
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await client.publish(
                    self.topics.status(line),
                    OFFLINE_PAYLOAD,
                    qos=1,
                    retain=True,
                    timeout=OFFLINE_TIMEOUT_S,
                )
            raise

    async def _status_loop(self, line: str, client: aiomqtt.Client) -> None:
        changed = self._status_changed[line]
        if self.taking_registrations is not None:
            await self.taking_registrations.wait()
        while True:
            changed.clear()
            await client.publish(
                self.topics.status(line), to_json(self.current_status(line)), qos=1, retain=True
            )
            raise_if_cancelling()
            await changed.wait()
