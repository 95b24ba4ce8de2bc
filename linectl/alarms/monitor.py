"""The alarm monitor: one task on the site's event loop that keeps the alarms true.

Every `every_s` (real seconds) it gathers the conditions (linectl.alarms.
conditions, plus the probes others add, such as the MQTT link's), and:

- raises a new alarm for a condition that has lasted its delay (`[alarms]`,
  clock seconds) and has no active alarm of its key;
- marks returned to normal the active alarms whose condition is gone;
- suppresses the alarms of a paused line, and of a station in maintenance
  (ISA-18.2's suppressed by design), and lets them out on resume or when
  the station is back;
- unshelves alarms whose shelving time is up;
- tells whether the site is in an alarm flood.

Operators' acknowledge, silence and shelve come through here too (from
linectl.ops, which checks rights and journals), under the same lock as a
round, so a transition never races another. Every change is written to the
store first, then told on the site's event stream: `alarms` per line (the
line's open alarms, site-wide ones included: the retained MQTT topic) and
`alarm_summary` (the console's banner and sound).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from linectl.alarms import state as sm
from linectl.alarms.conditions import Condition, Probe, outbox_stale, site_conditions
from linectl.alarms.state import Alarm, AlarmState, Priority
from linectl.store.base import NotFound, StoreError

if TYPE_CHECKING:
    from linectl.site import Site

log = logging.getLogger(__name__)

EVERY_S = 0.5  # real seconds between rounds
OUTBOX_EVERY_S = 5.0  # real seconds between looks at the outbox (a database read)
SOUNDING = ("unacked", "rtn_unacked")


class AlarmNotOpen(LookupError):
    """No alarm with this id is open; `alarm` is the closed one, or None if unknown."""

    def __init__(self, alarm_id: int, alarm: Alarm | None) -> None:
        super().__init__(f"alarm {alarm_id} is closed" if alarm else f"no alarm {alarm_id}")
        self.alarm = alarm


@dataclass
class _Seen:
    since: float  # clock seconds
    token: str


class AlarmMonitor:
    def __init__(self, site: Site, *, every_s: float = EVERY_S) -> None:
        self.site = site
        self.cfg = site.cfg.alarms
        self.clock = site.clock
        self.store = site.store
        self.every_s = every_s
        self.outbox_every_s = OUTBOX_EVERY_S
        self.probes: list[Probe] = []
        self._open: dict[int, Alarm] = {}
        self._seen: dict[str, _Seen] = {}
        self._outbox: list[Condition] = []
        self._outbox_looked = -float("inf")
        self._lock = asyncio.Lock()
        self.flood = False
        self.loaded = asyncio.Event()

    # --- what others read -------------------------------------------------------------

    def open_alarms(self, line: str | None = None) -> list[Alarm]:
        """Open alarms, highest priority first then newest; of `line` (and site-wide)."""
        alarms = [a for a in self._open.values() if line is None or a.line in (line, None)]
        return sorted(alarms, key=lambda a: (a.priority.rank, -a.raised_at.timestamp(), -a.id))

    def line_payload(self, line: str) -> dict[str, Any]:
        """mqtt.md's alarms topic for `line`: its open alarms, site-wide ones included."""
        from linectl.clock import utc_iso

        return {
            "ts": utc_iso(self.clock.wall()),
            "alarms": [a.to_json() for a in self.open_alarms(line)],
        }

    def summary(self) -> dict[str, Any]:
        """The banner: the alarm to show first, how many wait for an ack, the sound."""
        alarms = list(self._open.values())
        first = sm.top(alarms)
        sounding = [a.priority for a in alarms if a.sounding]
        return {
            "unacked": sum(1 for a in alarms if a.state in sm.NEEDS_ACK),
            "open": len(alarms),
            "top": first.to_json() if first else None,
            "sound": min(sounding, key=lambda p: p.rank).value if sounding else None,
            "flood": self.flood,
            "flood_count": self.cfg.flood_count,
            "flood_minutes": self.cfg.flood_window_minutes,
        }

    # --- the task ---------------------------------------------------------------------

    async def run(self) -> None:
        # Never ends the site: a round that fails is logged and tried again; the
        # lines go on inspecting vehicles whatever happens to the alarms.
        while True:
            try:
                await self.evaluate()
            except StoreError as e:
                self.site.storage.failed(e)
                log.warning("alarms: not saved, tried again: %s", e)
            except Exception:
                log.exception("alarms: round failed, tried again")
            await asyncio.sleep(self.every_s)

    async def _load(self) -> None:
        if self.loaded.is_set():
            return
        for a in await self.store.open_alarms():
            self._open[a.id] = a
        self.loaded.set()
        self._tell(self.clock.wall())

    async def evaluate(self) -> None:
        """One round: raise, return, suppress, unshelve; flood."""
        await self._load()
        conditions = site_conditions(self.site)
        for probe in self.probes:
            try:
                conditions.extend(probe())
            except Exception:
                log.exception("alarm probe failed")
        conditions.extend(await self._outbox_conditions())
        now, at = self.clock.now(), self.clock.wall()
        async with self._lock:
            changed = await self._round({c.key: c for c in conditions}, now, at)
            flood = await self._flood(at)
            if changed or flood != self.flood:
                self.flood = flood
                self._tell(at)

    async def _outbox_conditions(self) -> list[Condition]:
        loop = asyncio.get_running_loop()
        if loop.time() - self._outbox_looked >= self.outbox_every_s:
            self._outbox_looked = loop.time()
            oldest = await self.store.oldest_pending_at()
            wall = self.clock.wall()
            self._outbox = list(outbox_stale(oldest, wall, self.cfg.outbox_stale_minutes))
        return self._outbox

    def _delay_s(self, kind: str) -> float:
        c = self.cfg
        return {
            "device_down": c.device_down_s,
            "mqtt_down": c.mqtt_down_s,
            "station_blocked": c.station_blocked_s,
            "line_idle": c.line_idle_minutes * 60,
            "driver_late": c.late_back_s,
        }.get(kind, 0.0)

    async def _round(self, present: dict[str, Condition], now: float, at: datetime) -> bool:
        changed = False
        for key, c in present.items():
            seen = self._seen.get(key)
            if seen is None or seen.token != c.token:
                self._seen[key] = _Seen(now, c.token)
        for key in [k for k in self._seen if k not in present]:
            del self._seen[key]
        active = {a.key: a for a in self._open.values() if a.active}
        for key, c in present.items():
            if key in active or now - self._seen[key].since < self._delay_s(c.kind):
                continue
            await self._raise(c, at)
            changed = True
        for key, a in active.items():
            if key not in present:
                await self._put(sm.returned(a, at))
                changed = True
        for a in list(self._open.values()):
            new = a
            if self._suppressed(a.line, a.station):
                new = sm.suppress(a)
            elif a.state is AlarmState.SUPPRESSED:
                new = sm.unsuppress(a, at)
            if sm.due_to_unshelve(new, at):
                new = sm.unshelve(new, at)
            if new != a:
                await self._put(new)
                changed = True
        return changed

    def _suppressed(self, line: str | None, station: str | None) -> bool:
        """The line is paused, or the station is in maintenance."""
        for ln in self.site.lines:
            if ln.id == line:
                return ln.paused or (station is not None and station in ln.maintenance)
        return False

    async def _raise(self, c: Condition, at: datetime) -> None:
        paused = self._suppressed(c.line, c.station)
        oos = {c.device, c.station, c.line} & set(self.cfg.out_of_service) - {None}
        new = sm.occurred(
            id=0,
            key=c.key,
            kind=c.kind,
            priority=Priority(self.cfg.priority(c.kind)),
            at=at,
            message=c.message,
            line=c.line,
            station=c.station,
            device=c.device,
            suppressed=paused,
            out_of_service=bool(oos),
        )
        kept = await self.store.insert_alarm(new)
        self._open[kept.id] = kept
        log.warning("alarm %d raised (%s, %s): %s", kept.id, kept.priority, kept.state, c.message)

    async def _put(self, alarm: Alarm) -> None:
        await self.store.save_alarm(alarm)
        if alarm.open:
            self._open[alarm.id] = alarm
        else:
            self._open.pop(alarm.id, None)
            log.info("alarm %d closed (%s)", alarm.id, alarm.key)

    async def _flood(self, at: datetime) -> bool:
        window = timedelta(minutes=self.cfg.flood_window_minutes)
        raised = await self.store.raised_since(at - window)
        return sm.in_flood(raised, at, count=self.cfg.flood_count, window=window)

    def _tell(self, at: datetime) -> None:
        events = self.site.events
        for ln in self.site.lines:
            alarms = [a.to_json() for a in self.open_alarms(ln.id)]
            events.publish("alarms", at, line=ln.id, alarms=alarms)
        events.publish("alarm_summary", at, **self.summary())

    # --- operators' actions (through linectl.ops) ---------------------------------------

    async def _act(self, alarm_id: int, change: Any) -> tuple[Alarm, Alarm]:
        await self._load()
        async with self._lock:
            before = self._open.get(alarm_id)
            if before is None:
                try:
                    closed = await self.store.alarm(alarm_id)
                except NotFound:
                    closed = None
                raise AlarmNotOpen(alarm_id, closed)
            after = change(before)
            await self._put(after)
            self._tell(self.clock.wall())
            return before, after

    async def acknowledge(self, alarm_id: int, by: str, comment: str | None) -> tuple[Alarm, Alarm]:
        at = self.clock.wall()
        return await self._act(alarm_id, lambda a: sm.acknowledge(a, by, at, comment))

    async def silence(self, alarm_id: int, by: str) -> tuple[Alarm, Alarm]:
        return await self._act(alarm_id, lambda a: sm.silence(a, by))

    async def shelve(
        self, alarm_id: int, by: str, reason: str, minutes: float
    ) -> tuple[Alarm, Alarm]:
        until = self.clock.wall() + timedelta(minutes=minutes)
        return await self._act(alarm_id, lambda a: sm.shelve(a, by, reason, until))
