"""A line's proxy-driver pool and the random draw that gives a vehicle its driver.

The draw is the point of the whole arrangement: no owner, operator or driver
may choose who drives a vehicle. So the chosen driver comes from the
operating system's CSPRNG (`secrets`), uniformly among the drivers who are
on duty and idle when the call is drawn, jointly with the vehicle among the
first few queued, as the line's assignment policy says (assign.py); nothing
in the config, the API or the command line can name one. Every draw is
recorded (candidate drivers, candidate vehicles, chosen, time, inspection)
before anyone is told the result.

How a driver's return is known is the line's `checkin`: `timer` (idle
walk_back_s after leaving the vehicle), or `input`/`console` (idle when he
checks in, by a button or card reader on the line I/O or at the console;
walk_back_s is then when one who has not is reported late).

Tests may pass their own `choose` (a seeded generator) to make a draw
repeatable; the daemon never does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import StrEnum

from linectl.clock import Clock
from linectl.config import ProxyDriverConfig
from linectl.scheduler.assign import (
    POLICIES,
    AssignmentPolicy,
    bits,
    csprng_choice,
    draw_pair,
)

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
    late: bool = False  # walking back longer than walk_back_s without checking in


@dataclass(frozen=True)
class Draw:
    line: str
    inspection_id: str
    candidates: tuple[str, ...]
    chosen: str
    at: datetime
    # The inspections the vehicle was drawn among (the first k queued), None for a
    # draw that had one vehicle to give (a caller that names the vehicle).
    vehicles: tuple[str, ...] | None = None


RecordDraw = Callable[[Draw], Awaitable[None]]
# Told of every duty change (driver id, new state) so it can be kept in the duty log.
DutyChanged = Callable[[str, "DriverState"], Awaitable[None]]


CHECKIN_MODES = ("timer", "input", "console")
# A window vehicle: (inspection id, plate).
WindowVehicle = tuple[str, str]


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
        policy: AssignmentPolicy = POLICIES["idle"],
        checkin: str = "timer",
    ) -> None:
        if checkin not in CHECKIN_MODES:
            raise ValueError(f"checkin must be one of {', '.join(CHECKIN_MODES)}, not {checkin!r}")
        self.line = line
        self.policy = policy
        self.checkin = checkin
        # The pool's state changed, or the line's queue did (`wake`): a held call looks again.
        self._wake = asyncio.Event()
        # (bits, single candidate) of each draw since the daemon started: the console's
        # figures (`linectl audit fairness` gives them per day from the record).
        self.draw_log: list[tuple[float, bool]] = []
        # Told of each driver who leaves a vehicle (the simulator walks him back).
        self.on_release: Callable[[str], None] | None = None
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

    def wake(self) -> None:
        """Something a held call waits on changed (the queue): look again."""
        self._wake.set()

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()
        self._wake.set()
        if self.on_change:
            self.on_change()

    async def draw(self, inspection_id: str, plate: str) -> Draw:
        """Wait for an idle driver, draw one at random for this vehicle, record the draw."""
        return await self.draw_call(lambda: [(inspection_id, plate)], lambda _: None, named=True)

    async def draw_call(
        self,
        window: Callable[[], Sequence[WindowVehicle]],
        take: Callable[[str], None],
        policy: AssignmentPolicy | None = None,
        *,
        named: bool = False,
    ) -> Draw:
        """Draw a call as the policy says: wait until a vehicle waits in `window()` (the
        first k queued) and enough drivers are idle (or the hold ran out), then draw a
        (driver, vehicle) pair at random, `take(inspection_id)` the vehicle out of the
        queue, record the draw and hand over the keys.

        The line calls `wake()` when its queue changes so the window is looked at again.
        `named`: the caller gave the one vehicle; the record says no window."""
        policy = policy or self.policy
        held_from: float | None = None
        while True:
            self._wake.clear()
            vehicles = list(window())[: policy.window]
            idle = self.idle()
            now = self.clock.now()
            if vehicles and held_from is None:
                held_from = now  # the call begins: station free, a vehicle waiting
            held = 0.0 if held_from is None else now - held_from
            if vehicles and policy.ready(len(idle), len(self.on_duty()), held):
                break
            timeout = None
            if vehicles and idle and held_from is not None:
                timeout = self.clock.to_real(held_from + policy.hold_s - now) + 0.001
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()
        candidates = tuple(idle)
        window_ids = tuple(v[0] for v in vehicles)
        chosen, inspection_id = draw_pair(candidates, window_ids, self._choose)
        plate = dict(vehicles)[inspection_id]
        d = self.drivers[chosen]
        # Taken before the record is awaited, so no second draw can pick the same
        # driver or vehicle.
        self._set(d, DriverState.DRIVING)
        d.plate, d.inspection_id = plate, inspection_id
        d.draws += 1
        take(inspection_id)
        draw = Draw(
            self.line,
            inspection_id,
            candidates,
            chosen,
            self.clock.wall(),
            None if named else window_ids,
        )
        try:
            await self._record(draw)
        except BaseException:
            # Unrecorded, the draw never happened: the driver goes back to the pool.
            self._set(d, DriverState.IDLE)
            d.plate = d.inspection_id = None
            await self._notify()
            raise
        # Counted once recorded: a draw that never made the record never happened.
        self.draw_log.append(
            (bits(len(candidates), len(window_ids)), len(candidates) * len(window_ids) == 1)
        )
        log.info(
            "%s: %s drives %s (drawn from %s; vehicles %s)",
            self.line,
            chosen,
            plate,
            ", ".join(candidates),
            ", ".join(window_ids),
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
        d.late = False
        task = asyncio.create_task(self._walk_back(d))
        self._walks.add(task)
        task.add_done_callback(self._walks.discard)
        if self.on_release:
            self.on_release(driver_id)
        if self.on_change:
            self.on_change()

    async def _walk_back(self, d: ProxyDriver) -> None:
        await self.clock.sleep(self.walk_back_s)
        if d.state is not DriverState.WALKING_BACK:
            return
        if self.checkin == "timer":
            await self._back(d)
        else:
            # He checks in himself; not back by now, the console says he is late.
            d.late = True
            log.warning(
                "%s: proxy driver %s not checked in %.0f s after leaving his vehicle",
                self.line,
                d.id,
                self.walk_back_s,
            )
            if self.on_change:
                self.on_change()

    async def check_in(self, driver_id: str) -> bool:
        """The driver is back at the start and ready (his button, card or the console).

        False (and nothing changes) when he was not walking back: a second press, or
        a driver who is idle, driving, on a break or off duty."""
        if driver_id not in self.drivers:
            raise KeyError(driver_id)
        d = self.drivers[driver_id]
        if d.state is not DriverState.WALKING_BACK:
            return False
        await self._back(d)
        return True

    async def _back(self, d: ProxyDriver) -> None:
        d.late = False
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

    def choice(self) -> dict[str, float | int | None]:
        """What the draws since start offered: draws, bits per draw, single-candidate share."""
        n = len(self.draw_log)
        return {
            "draws": n,
            "bits_per_draw": round(sum(b for b, _ in self.draw_log) / n, 3) if n else None,
            "single_candidate_share": (
                round(sum(1 for _, one in self.draw_log if one) / n, 3) if n else None
            ),
        }

    def snapshot(self) -> list[dict[str, str | bool | None]]:
        return [
            {"id": d.id, "state": str(d.state), "plate": d.plate, "late": d.late}
            for d in self.drivers.values()
        ]

    async def aclose(self) -> None:
        for t in list(self._walks):
            t.cancel()
        await asyncio.gather(*self._walks, return_exceptions=True)
