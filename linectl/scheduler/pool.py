"""A line's proxy-driver pool and the random draw that gives a vehicle its driver.

The draw is the point of the whole arrangement: no owner, operator or driver
may choose who drives a vehicle. So the chosen driver comes from the
operating system's CSPRNG (`secrets`), uniformly among the drivers who are
on duty and idle at the moment the vehicle is called, and nothing in the
config, the API or the command line can name one. Every draw is recorded
(candidates, chosen, time, inspection) before anyone is told the result.

Tests may pass their own `choose` (a seeded generator) to make a draw
repeatable; the daemon never does.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from linectl.clock import Clock
from linectl.config import ProxyDriverConfig

log = logging.getLogger(__name__)


class DriverState(StrEnum):
    IDLE = "idle"  # on duty, at the start of the line, free
    DRIVING = "driving"  # has a vehicle
    WALKING_BACK = "walking_back"  # left a vehicle after the last station
    BREAK = "break"
    OFF_DUTY = "off_duty"


@dataclass
class ProxyDriver:
    id: str
    name: str
    state: DriverState
    plate: str | None = None
    inspection_id: str | None = None
    busy_since: float | None = None  # clock time, for utilisation
    busy_s: float = 0.0
    draws: int = 0


@dataclass(frozen=True)
class Draw:
    line: str
    inspection_id: str
    candidates: tuple[str, ...]
    chosen: str
    at: datetime


RecordDraw = Callable[[Draw], Awaitable[None]]
# Told of every duty change (driver id, new state) so it can be kept in the duty log.
DutyChanged = Callable[[str, "DriverState"], Awaitable[None]]


def csprng_choice(candidates: Sequence[str]) -> str:
    return secrets.choice(candidates)


class ProxyDriverPool:
    def __init__(
        self,
        line: str,
        drivers: Sequence[ProxyDriverConfig],
        clock: Clock,
        record: RecordDraw,
        walk_back_s: float,
        choose: Callable[[Sequence[str]], str] = csprng_choice,
        *,
        tz: tzinfo | None = None,
        duty_changed: DutyChanged | None = None,
    ) -> None:
        self.line = line
        self.tz = tz
        self._duty_changed = duty_changed
        self._configs = {d.id: d for d in drivers}
        self._break_due: set[str] = set()
        self._breaks_taken: set[tuple[str, datetime]] = set()
        self.clock = clock
        self.walk_back_s = walk_back_s
        self._record = record
        self._choose = choose
        self.drivers: dict[str, ProxyDriver] = {
            d.id: ProxyDriver(d.id, d.name, DriverState.IDLE if d.on_duty else DriverState.OFF_DUTY)
            for d in drivers
        }
        self._changed = asyncio.Condition()
        self._walks: set[asyncio.Task[None]] = set()
        self.on_change: Callable[[], None] | None = None

    def idle(self) -> list[str]:
        return sorted(d.id for d in self.drivers.values() if d.state is DriverState.IDLE)

    def on_duty(self) -> list[str]:
        return sorted(
            d.id
            for d in self.drivers.values()
            if d.state not in (DriverState.OFF_DUTY, DriverState.BREAK)
        )

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
        if self.on_change:
            self.on_change()

    async def draw(self, inspection_id: str, plate: str) -> Draw:
        """Wait for an idle driver, draw one at random, record the draw, hand over the keys."""
        async with self._changed:
            await self._changed.wait_for(lambda: bool(self.idle()))
            candidates = tuple(self.idle())
            chosen = self._choose(candidates)
            d = self.drivers[chosen]
            # Taken before the record is awaited, so no second draw can pick the same driver.
            self._set(d, DriverState.DRIVING)
            d.plate, d.inspection_id = plate, inspection_id
            d.draws += 1
        draw = Draw(self.line, inspection_id, candidates, chosen, self.clock.wall())
        try:
            await self._record(draw)
        except BaseException:
            # Unrecorded, the draw never happened: the driver goes back to the pool.
            self._set(d, DriverState.IDLE)
            d.plate = d.inspection_id = None
            await self._notify()
            raise
        log.info(
            "%s: %s drives %s (drawn from %s)", self.line, chosen, plate, ", ".join(candidates)
        )
        if self.on_change:
            self.on_change()
        return draw

    def _set(self, d: ProxyDriver, state: DriverState) -> None:
        now = self.clock.now()
        working = (DriverState.DRIVING, DriverState.WALKING_BACK)
        if d.state in working and state not in working and d.busy_since is not None:
            d.busy_s += now - d.busy_since
            d.busy_since = None
        if state in working and d.busy_since is None:
            d.busy_since = now
        d.state = state

    def release(self, driver_id: str) -> None:
        """The driver left the vehicle after the last station and walks back."""
        d = self.drivers[driver_id]
        d.plate = d.inspection_id = None
        self._set(d, DriverState.WALKING_BACK)
        task = asyncio.create_task(self._walk_back(d))
        self._walks.add(task)
        task.add_done_callback(self._walks.discard)
        if self.on_change:
            self.on_change()

    async def _walk_back(self, d: ProxyDriver) -> None:
        await self.clock.sleep(self.walk_back_s)
        if d.state is DriverState.WALKING_BACK:
            if d.id in self._break_due:
                # Back at the start during a break that began while driving: take it now.
                self._break_due.discard(d.id)
                await self._duty(d, DriverState.BREAK)
            else:
                self._set(d, DriverState.IDLE)
        await self._notify()

    async def _duty(self, d: ProxyDriver, state: DriverState) -> None:
        self._set(d, state)
        log.info("%s: proxy driver %s %s", self.line, d.id, state)
        if self._duty_changed:
            await self._duty_changed(d.id, state)

    # --- breaks from the config -------------------------------------------------

    def _local_now(self) -> datetime:
        return self.clock.wall().astimezone(self.tz)

    async def run_breaks(self) -> None:
        """Send drivers on their configured daily breaks and bring them back.

        A driver whose break begins while they have a vehicle takes it once the
        vehicle has left the line and they are back at the start, for what is
        left of it; a break that ends before that is missed (and logged).
        """
        while True:
            now = self._local_now()
            wake = now + timedelta(minutes=1)
            for d in self.drivers.values():
                for b in self._configs[d.id].breaks:
                    for day in (now - timedelta(days=1), now, now + timedelta(days=1)):
                        start = b.start(day)
                        end = start + timedelta(minutes=b.minutes)
                        if start <= now < end:
                            await self._break_time(d, start)
                            wake = min(wake, end)
                        elif end <= now and (d.id, start) in self._breaks_taken:
                            await self._break_over(d, start)
                        elif now < start:
                            wake = min(wake, start)
            await self.clock.sleep(max(0.0, (wake - now).total_seconds()) + 0.001)

    async def _break_time(self, d: ProxyDriver, start: datetime) -> None:
        if (d.id, start) in self._breaks_taken:
            return
        if d.state is DriverState.OFF_DUTY:
            return
        self._breaks_taken.add((d.id, start))
        if d.state is DriverState.IDLE:
            await self._duty(d, DriverState.BREAK)
            await self._notify()
        elif d.state is not DriverState.BREAK:
            self._break_due.add(d.id)

    async def _break_over(self, d: ProxyDriver, start: datetime) -> None:
        self._breaks_taken.discard((d.id, start))
        if d.id in self._break_due:
            self._break_due.discard(d.id)
            log.warning(
                "%s: proxy driver %s missed the %s break (still driving)",
                self.line,
                d.id,
                start.strftime("%H:%M"),
            )
        if d.state is DriverState.BREAK:
            await self._duty(d, DriverState.IDLE)
            await self._notify()

    async def set_duty(self, driver_id: str, state: DriverState) -> None:
        """Check a driver in (idle), out (off_duty) or onto a break.

        Refused while the driver has a vehicle: keys are never taken back
        mid-line; the change is made once the vehicle has left.
        """
        if driver_id not in self.drivers:
            raise KeyError(driver_id)
        if state not in (DriverState.IDLE, DriverState.BREAK, DriverState.OFF_DUTY):
            raise ValueError(f"a driver can be set idle, on a break or off duty, not {state}")
        d = self.drivers[driver_id]
        if d.state is DriverState.DRIVING:
            raise ValueError(
                f"{driver_id} has a vehicle ({d.plate}); change duty once it has left the line"
            )
        await self._duty(d, state)
        await self._notify()

    def utilisation(self, elapsed_s: float) -> dict[str, float]:
        now = self.clock.now()
        out = {}
        for d in self.drivers.values():
            busy = d.busy_s + ((now - d.busy_since) if d.busy_since is not None else 0.0)
            out[d.id] = busy / elapsed_s if elapsed_s > 0 else 0.0
        return out

    def snapshot(self) -> list[dict[str, str | None]]:
        return [
            {"id": d.id, "state": str(d.state), "plate": d.plate} for d in self.drivers.values()
        ]

    async def aclose(self) -> None:
        for t in list(self._walks):
            t.cancel()
        await asyncio.gather(*self._walks, return_exceptions=True)
