"""The abnormal conditions of a running site, as the alarm monitor sees them each round.

A `Condition` is a fact of now: a device that does not answer, a station
held blocked, a line with vehicles waiting that calls none, the outbox not
drained, the disk nearly full, the broker connection down. Its `key` names
the condition and its place (`device_down:rbt-1`): one alarm per key at a
time. How long a condition must last before it becomes an alarm is the
monitor's business (`[alarms]` delays); a condition whose `token` changes
starts its wait again (a line that called a vehicle is no longer idle, even
if another waits now).

Conditions that need the broker (MQTT) are told by the upstream through
`Probe`s added to the monitor: the site knows nothing of the upstream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from linectl.device_report import placed_devices
from linectl.scheduler.pool import DriverState

if TYPE_CHECKING:
    from linectl.site import Site


@dataclass(frozen=True)
class Condition:
    kind: str
    key: str
    # For people and the registry, in English like the log; the console shows the
    # condition's translated name (linectl.http.alarm_words) beside it.
    message: str
    line: str | None = None
    station: str | None = None
    device: str | None = None
    token: str = ""


Probe = Callable[[], Iterable[Condition]]


def devices_down(site: Site) -> Iterator[Condition]:
    """Every device whose driver says it does not answer (drivers/health.py)."""
    drivers = site.devices.drivers()
    for placed in placed_devices(site.cfg):
        driver = drivers.get(placed.cfg.id)
        if driver is None or driver.health.ok:
            continue
        dev = placed.cfg.id
        yield Condition(
            "device_down",
            f"device_down:{dev}",
            "Device {device} does not answer: {error}".format(
                device=dev, error=driver.health.last_error or "?"
            ),
            placed.line,
            placed.station,
            dev,
        )


def stations_blocked(site: Site) -> Iterator[Condition]:
    """Stations held blocked (a vehicle that cannot leave, a device it waits for)."""
    for ln in site.lines:
        for slot in ln.slots:
            if slot.state == "blocked":
                st = slot.procedure.id
                yield Condition(
                    "station_blocked",
                    f"station_blocked:{ln.id}:{st}",
                    "Station {station} of line {line} is blocked ({plate})".format(
                        station=st, line=ln.id, plate=slot.plate or "-"
                    ),
                    ln.id,
                    st,
                    token=slot.inspection_id or "",
                )


def lines_idle(site: Site) -> Iterator[Condition]:
    """A line that is not paused, with vehicles waiting: idle while the same vehicle
    heads its queue (the token), so the wait restarts whenever it calls one. Vehicles
    held back by a station in maintenance do not count (held by design, as in a pause)."""
    for ln in site.lines:
        waiting = ln.callable()
        if ln.paused or not waiting:
            continue
        yield Condition(
            "line_idle",
            f"line_idle:{ln.id}",
            f"Line {ln.id} calls no vehicle while {len(waiting)} wait",
            ln.id,
            token=waiting[0].inspection_id,
        )


def drivers_late(site: Site) -> Iterator[Condition]:
    """Proxy drivers walking back who have not checked in within walk_back_s (the
    pool's `late`, lines with checkin input or console); the monitor's
    `late_back_s` is how much later still makes it an alarm. Gone once he checks
    in or is put off duty or on a break (he no longer walks back)."""
    for ln in site.lines:
        pool = ln.pool
        for d in pool.drivers.values():
            if d.late and d.state is DriverState.WALKING_BACK:
                yield Condition(
                    "driver_late",
                    f"driver_late:{ln.id}:{d.id}",
                    f"Proxy driver {d.id} of line {ln.id} not back {pool.walk_back_s:.0f} s after "
                    "leaving his vehicle",
                    ln.id,
                    # Per walk: a driver late again after checking in is a new wait.
                    token=f"{d.id}:{d.busy_since}",
                )


def storage_low(site: Site) -> Iterator[Condition]:
    """The database's disk nearly full, or not writable (linectl.store.health)."""
    state = site.storage.state
    if state in ("low_space", "read_only", "full"):
        yield Condition(
            "disk_low",
            "disk_low",
            "Database storage: {state}: {message}".format(
                state=state, message=site.storage.message or ""
            ),
        )


def outbox_stale(oldest: datetime | None, now: datetime, minutes: float) -> Iterator[Condition]:
    """Results waiting in the outbox for longer than `minutes`."""
    if oldest is not None and now - oldest > timedelta(minutes=minutes):
        yield Condition(
            "outbox_stale",
            "outbox_stale",
            f"Results wait in the outbox for {int((now - oldest).total_seconds() // 60)} minutes",
        )


def site_conditions(site: Site) -> list[Condition]:
    """What the site itself can tell, without the database or the broker."""
    return [
        *devices_down(site),
        *stations_blocked(site),
        *lines_idle(site),
        *drivers_late(site),
        *storage_low(site),
    ]
