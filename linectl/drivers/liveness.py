"""Idle devices asked now and then whether they still answer.

A driver learns that its device is down only from a request that fails
(drivers/health.py), and an instrument between vehicles gets none: a brake
tester switched off at noon would be found down only when the next car is
on its rollers. `LivenessWatch` asks every device that has had no request
since its last look one harmless read (the I/O module's inputs, the brake
tester's lift input, an analyser's reading; the headlamp tester has none, see `probe`),
so a device that stops answering is marked down within about `every_s` plus
its timeout, and back up as soon as it answers again.

A device is only asked while `idle(device_id)` says its station has no
vehicle: a procedure's own requests are never interleaved with a probe's,
even on a serial instrument where the bus lock would allow it. What the
probe reads is thrown away; its failure is recorded by the driver itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from linectl.drivers.lineio_modbus import LineIO
from linectl.drivers.nha503 import Nha503
from linectl.drivers.nht6 import Nht6
from linectl.drivers.rbt_modbus import RbtModbus

if TYPE_CHECKING:
    from linectl.drivers.devices import Driver

log = logging.getLogger(__name__)

EVERY_S = 1.0  # real seconds


async def probe(driver: Any) -> None:
    """One read-only request of the driver's device; raises what the request raises."""
    if isinstance(driver, LineIO):
        await driver.all_inputs()
    elif isinstance(driver, RbtModbus):
        await driver.lift_is_up()
    elif isinstance(driver, Nha503):
        await driver.read()
    elif isinstance(driver, Nht6):
        await driver.realtime()
    # The headlamp tester has no harmless request (devices.md 5: RES before any MEA
    # is refused with E4, RST moves the head): only its port's loss tells it is gone.


class LivenessWatch:
    def __init__(
        self,
        drivers: Callable[[], dict[str, Driver]],
        idle: Callable[[str], bool],
        *,
        every_s: float = EVERY_S,
    ) -> None:
        self.drivers = drivers
        self.idle = idle
        self.every_s = every_s
        self._requests: dict[str, int] = {}
        self.probes = 0

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            await self.once()

    async def once(self) -> None:
        """Probe, together, every device with no request since the last look."""
        due = []
        for dev_id, driver in self.drivers().items():
            n = driver.health.stats.requests
            if self._requests.get(dev_id) == n and self.idle(dev_id):
                due.append(driver)
            self._requests[dev_id] = n
        if due:
            await asyncio.gather(*(self._probe(d) for d in due))
            for d in due:
                self._requests[d.id] = d.health.stats.requests

    async def _probe(self, driver: Driver) -> None:
        self.probes += 1
        # The driver's health has already recorded a failure, logged once per outage.
        with contextlib.suppress(Exception):
            await probe(driver)
