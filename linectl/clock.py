"""The clock behind every procedure wait, with a time scale.

Procedures, device emulators and the simulated world never call `time` or
`asyncio.sleep` directly: they ask a `Clock`. At `time_scale = 1` the clock is
the wall clock. At `time_scale = 20` a 2 s settle wait takes 0.1 s of real
time, so the daemon and the simulator, sharing one clock (or two clocks with
the same scale), run a day of inspections in minutes.

Two kinds of time exist and must not be mixed:
- clock time (`now()`, `sleep()`, `wall()`): the simulated process time that
  procedures and judgement reason in;
- real time (`real_timeout()`): wire timeouts. A serial reply takes the same
  milliseconds whatever the scale, so protocol timeouts are never scaled.
Polling a device (`poll_sleep()`) is clock time with a real-time floor: at
scale 1 nothing changes, at scale 100 a poller asks at most every 5 ms.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import TypeVar

T = TypeVar("T")

MIN_POLL_REAL_S = 0.005  # the shortest real pause between two polls of a device


class Clock:
    """Monotonic clock time with a time scale, and the matching wall time."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if not time_scale > 0:
            raise ValueError(f"time scale must be > 0, got {time_scale}")
        self.time_scale = float(time_scale)
        self._real0 = time.monotonic()
        self._wall0 = datetime.now(UTC)

    def now(self) -> float:
        """Seconds of clock time since this clock was made."""
        return (time.monotonic() - self._real0) * self.time_scale

    def wall(self) -> datetime:
        """Clock time as an aware UTC datetime, for records and payloads."""
        return self._wall0 + timedelta(seconds=self.now())

    def to_real(self, seconds: float) -> float:
        """Real seconds that `seconds` of clock time take."""
        return max(0.0, seconds) / self.time_scale

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of clock time."""
        await asyncio.sleep(self.to_real(seconds))

    async def poll_sleep(self, seconds: float) -> None:
        """Wait between two polls of a device: `seconds` of clock time, but never less
        than `MIN_POLL_REAL_S` of real time. At a high time scale a 0.1 s poll
        would be a request every few real milliseconds per poller: a process that
        busy answers its own timers late (an APPLY prompt, a driver's reaction)."""
        await asyncio.sleep(max(self.to_real(seconds), MIN_POLL_REAL_S))

    async def sleep_until(self, t: float) -> None:
        """Wait until `now()` reaches clock time `t` (returns at once if past)."""
        await asyncio.sleep(self.to_real(t - self.now()))

    async def wait_for(self, aw: Awaitable[T], seconds: float) -> T:
        """`asyncio.wait_for` with a timeout in clock time."""
        return await asyncio.wait_for(aw, self.to_real(seconds))


def utc_iso(dt: datetime) -> str:
    """The one timestamp format of records and payloads: ISO 8601, UTC, ms."""
    return dt.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
