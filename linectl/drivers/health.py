"""Whether a device answers, with the log rule of a station that runs all day.

A device that goes down is logged once (warning) and once more (info) when it
comes back, never on every poll: a brake tester switched off for the night
must not fill the log. Listeners hear every change of state, so the daemon
can publish device status.

Each device's `DeviceHealth` also carries its `DeviceStats` (drivers/stats.py):
the bus and the serial port already find a device's health for every
request, so the counters ride along at no extra cost.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from linectl.drivers.stats import DeviceStats

HealthListener = Callable[[str, bool, str | None], None]


class DeviceHealth:
    """Up/down state of one device. A device starts up: nothing is logged
    until something actually goes wrong."""

    def __init__(self, device_id: str, logger: logging.Logger | None = None) -> None:
        self.device_id = device_id
        self.ok = True
        self.last_error: str | None = None
        self.stats = DeviceStats()
        self._log = logger or logging.getLogger("linectl.drivers")
        self._listeners: list[HealthListener] = []

    def add_listener(self, cb: HealthListener) -> None:
        """`cb(device_id, ok, reason)` on every change; reason is None when up."""
        self._listeners.append(cb)

    def remove_listener(self, cb: HealthListener) -> None:
        self._listeners.remove(cb)

    def down(self, reason: str) -> None:
        """The device failed; only the first failure after being up is logged."""
        self.last_error = reason
        if not self.ok:
            return
        self.ok = False
        self._log.warning("device %s is down: %s", self.device_id, reason)
        self._notify(reason)

    def up(self) -> None:
        """The device answered; logged only if it was down."""
        if self.ok:
            return
        self.ok = True
        self.last_error = None
        self._log.info("device %s is back", self.device_id)
        self._notify(None)

    def _notify(self, reason: str | None) -> None:
        for cb in list(self._listeners):
            try:
                cb(self.device_id, self.ok, reason)
            except Exception:
                # A broken listener (e.g. a publisher) must not stop the driver.
                self._log.exception("device status listener failed for %s", self.device_id)
