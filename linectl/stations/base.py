"""What every station procedure shares: the visit, the guide display, the recorder.

A procedure is the steps one station runs for the items it owns (prompt,
wait, command, acquire, judge). It gets a `Visit` (which vehicle, which
items), a `Guide` (the station's guide display on the line I/O) and a
`Recorder` (commits every judged attempt as soon as it exists, so a crash
later loses nothing already measured). It returns the item results it
produced; an item it could not measure is returned `not_judged` with the
reason, never left out and never guessed.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from linectl.clock import Clock
from linectl.config import SiteConfig, StationConfig
from linectl.drivers.errors import DeviceError
from linectl.drivers.lineio_modbus import LineIO, Prompt
from linectl.events import EventBus
from linectl.items import ItemResult, not_judged
from linectl.stations.limits import Limits
from linectl.stations.live import LiveFeed
from linectl.vehicle import InspectionType, Vehicle

log = logging.getLogger(__name__)


@dataclass
class Visit:
    """One vehicle at one station."""

    inspection_id: str
    vehicle: Vehicle
    inspection_type: InspectionType
    items: list[str]  # the items this station must produce
    line: str = ""

    @property
    def plate(self) -> str:
        return self.vehicle.plate


@dataclass
class SiteContext:
    """What procedures need from the site besides their own devices."""

    config: SiteConfig
    clock: Clock
    limits: Limits
    events: EventBus

    @property
    def limit_set(self) -> str:
        return self.config.limits.limit_set


def raise_if_cancelling() -> None:
    """A loop that polls a device must end when its task is cancelled, even when the
    cancellation was swallowed inside a request (pymodbus and 3.11's timeouts can)
    and the request returned or failed as if nothing had happened."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class Guide:
    """The guide display of one station, and its entry light.

    The display is how the line talks to the proxy driver: losing a prompt
    would leave a driver waiting forever, so a failed write is retried
    (with backoff, logged once through the device's health) until it lands.
    """

    RETRY_S = (0.2, 0.5, 1.0, 2.0, 5.0)

    def __init__(
        self,
        io: LineIO,
        station: int,
        plate: str,
        clock: Clock,
        on_prompt: Callable[[Prompt, str], None] | None = None,
    ) -> None:
        self.io = io
        self.station = station
        self.plate = plate
        self.clock = clock
        self._on_prompt = on_prompt  # told of every prompt shown (tests record them)

    async def _retry(self, what: Callable[[], Awaitable[Any]]) -> Any:
        attempt = 0
        while True:
            try:
                return await what()
            except DeviceError:
                # Shutting down: a cancellation swallowed inside the request must not
                # turn into retrying for ever.
                raise_if_cancelling()
                # Real seconds: the I/O module is down, not the procedure slow.
                await asyncio.sleep(self.RETRY_S[min(attempt, len(self.RETRY_S) - 1)])
                attempt += 1

    async def show(self, prompt: Prompt, text: str = "") -> None:
        await self._retry(lambda: self.io.show(self.station, prompt, self.plate, text))
        if self._on_prompt:
            self._on_prompt(prompt, text)

    async def refresh(self, text: str) -> None:
        await self._retry(lambda: self.io.refresh(self.station, text))

    async def entry_light(self, green: bool) -> None:
        await self._retry(lambda: self.io.set_entry_light(self.station, green))

    async def wait_inputs(self, pred: Callable[[Any], bool], poll_s: float = 0.25) -> None:
        """Wait (clock time) until the station's photo switches satisfy `pred`."""
        while True:
            inputs = await self._retry(lambda: self.io.inputs(self.station))
            if pred(inputs):
                return
            raise_if_cancelling()
            await self.clock.poll_sleep(poll_s)


class Recorder(abc.ABC):
    """Commits one judged attempt; returns its attempt number."""

    @abc.abstractmethod
    async def attempt(
        self,
        result: ItemResult,
        *,
        station: str,
        device: str | None,
        started_at: datetime,
        finished_at: datetime,
    ) -> int: ...


class Procedure(abc.ABC):
    """A station's procedure; one instance per station, reused for every vehicle."""

    kind: str = ""

    def __init__(self, cfg: StationConfig, ctx: SiteContext) -> None:
        self.cfg = cfg
        self.ctx = ctx
        self.clock = ctx.clock
        # What the station reads while a test runs, for the console (throttled).
        self.live = LiveFeed(ctx.events, ctx.clock, cfg.id)

    @property
    def id(self) -> str:
        return self.cfg.id

    @abc.abstractmethod
    def device_health(self) -> dict[str, bool]:
        """Each device of the station: is it answering."""

    async def prepare(self) -> None:  # noqa: B027 - optional hook
        """Make the station ready to receive a vehicle; the line calls it before every
        DRIVE_IN and does not call the vehicle in until it returns. A device that
        must be in a position first (the brake tester's lift) is put there and
        waited for, however long it takes to answer again."""

    @abc.abstractmethod
    async def run(self, visit: Visit, guide: Guide, recorder: Recorder) -> list[ItemResult]:
        """Measure and judge `visit.items`; every item comes back exactly once."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release the station's devices."""

    async def record(
        self,
        recorder: Recorder,
        visit: Visit,
        result: ItemResult,
        device: str | None,
        started_at: datetime,
    ) -> ItemResult:
        await recorder.attempt(
            result,
            station=self.id,
            device=device,
            started_at=started_at,
            finished_at=self.clock.wall(),
        )
        self.ctx.events.publish(
            "item_judged",
            self.clock.wall(),
            line=visit.line,
            inspection_id=visit.inspection_id,
            station=self.id,
            code=result.code,
            verdict=str(result.verdict),
            reason=result.reason,
        )
        return result

    async def not_judged_rest(
        self,
        recorder: Recorder,
        visit: Visit,
        done: list[ItemResult],
        reason: str,
        device: str | None,
        started_at: datetime,
    ) -> list[ItemResult]:
        """Every item of the visit not yet produced comes back not judged, recorded."""
        have = {r.code for r in done}
        out = list(done)
        for code in visit.items:
            if code not in have:
                out.append(
                    await self.record(recorder, visit, not_judged(code, reason), device, started_at)
                )
        return out
