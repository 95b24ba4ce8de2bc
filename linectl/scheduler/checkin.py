"""Check-in by the line I/O: a driver's button or card reader on a spare input.

A line whose `checkin.mode` is `input` wires each proxy driver's card (or
button) to a spare discrete input of its line I/O module (`checkin.inputs`,
driver id -> address, 8*s+2 .. 8*s+7). This polls the module's inputs and
checks in the driver whose input rises while he is walking back; a press at
any other time changes nothing (and is logged). The input says only that a
driver is back: which vehicle he drives is still the draw's.
"""

from __future__ import annotations

import logging

from linectl.clock import Clock
from linectl.drivers.errors import DeviceError
from linectl.drivers.lineio_modbus import LineIO
from linectl.scheduler.pool import ProxyDriverPool

log = logging.getLogger(__name__)

POLL_S = 0.25  # clock seconds between two reads; a press lasts about a second


async def watch_checkin_inputs(
    io: LineIO, pool: ProxyDriverPool, inputs: dict[str, int], clock: Clock
) -> None:
    """Poll the spare inputs for ever; a rising input checks its driver in."""
    before: dict[str, bool] = {}
    while True:
        try:
            bits = await io.discrete_inputs()
        except DeviceError:
            # The module's health logs the outage once; a press now is simply missed,
            # and the driver shows late until he presses again.
            await clock.poll_sleep(1.0)
            continue
        for driver, address in inputs.items():
            on = address < len(bits) and bits[address]
            rose = on and not before.get(driver, False)
            if rose and not await pool.check_in(driver):
                log.info("%s: check-in of %s ignored (not walking back)", pool.line, driver)
            before[driver] = on
        await clock.poll_sleep(POLL_S)
