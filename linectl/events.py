"""The site's event stream: every inspection step and line change, in order.

Like a bluesky document stream, one producer side (scheduler, procedures)
and any number of consumers (MQTT publisher, console, demo progress, the
simulated world) that each get every event in order through their own
queue. A slow consumer never blocks the line: its queue is bounded and, when
full, it loses the oldest events and is told how many (`Subscription.dropped`).
Nothing that must not be lost travels only here: results go through the
database outbox.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# Lifecycle types of mqtt.md's events topic; the rest stay inside the site.
LIFECYCLE = (
    "queued",
    "driver_assigned",
    "station_started",
    "station_finished",
    "completed",
    "aborted",
)


@dataclass(frozen=True)
class Event:
    """One step. `type` is a lifecycle type or an internal one:
    `item_judged`, `prompt`, `line_status`, `device_status`, `progress`."""

    type: str
    ts: datetime
    line: str | None = None
    inspection_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    seq: int = 0

    def payload(self) -> dict[str, Any]:
        """The mqtt.md events payload: `{inspection_id, ts, type, ...}`."""
        from linectl.clock import utc_iso

        return {
            "inspection_id": self.inspection_id,
            "ts": utc_iso(self.ts),
            "type": self.type,
            **self.data,
        }


class Subscription:
    def __init__(self, bus: EventBus, maxsize: int, types: frozenset[str] | None) -> None:
        self._bus = bus
        self._queue: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self.types = types
        self.dropped = 0

    def _offer(self, ev: Event) -> None:
        if self.types is not None and ev.type not in self.types:
            return
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(ev)

    async def get(self) -> Event:
        return await self._queue.get()

    def get_nowait(self) -> Event | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def close(self) -> None:
        self._bus._subs.discard(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            yield await self._queue.get()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subs: set[Subscription] = set()
        self._seq = itertools.count(1)

    def subscribe(self, types: set[str] | None = None, maxsize: int = 10_000) -> Subscription:
        sub = Subscription(self, maxsize, frozenset(types) if types is not None else None)
        self._subs.add(sub)
        return sub

    def publish(
        self,
        type: str,
        ts: datetime,
        *,
        line: str | None = None,
        inspection_id: str | None = None,
        **data: Any,
    ) -> Event:
        ev = Event(type, ts, line, inspection_id, data, next(self._seq))
        for sub in list(self._subs):
            sub._offer(ev)
        return ev
