"""What the running daemon says about its devices: the document of `GET /api/devices`.

One entry per configured device, in config order (each line's I/O module,
then its stations' instruments), joining the config (model, line, station,
transport) with what the drivers keep (up or down, the last error, the
counters and latency of drivers/stats.py). `Operations.devices` serves it
to technicians (the HTTP API's `GET /api/devices`); `linectl diag stats`
prints it.

Fields (http.md names `up`, `last_error`, `requests`, `errors`, `timeouts`,
`reconnects` and latency p50/p99; the rest is added, as http.md allows):
`last_error` is the latest failure even if the device has answered since
(`last_error_at` says when), because that is what a technician asks about;
latencies are in milliseconds of real time, null before the first answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from linectl.clock import utc_iso
from linectl.config import DeviceConfig, SiteConfig, TcpTransport
from linectl.drivers.stats import DeviceStats

if TYPE_CHECKING:
    from linectl.drivers.devices import Driver
    from linectl.site import Site


@dataclass(frozen=True)
class Placed:
    """A configured device and where it sits: its line, and its station (None: the line I/O)."""

    cfg: DeviceConfig
    line: str
    station: str | None


def placed_devices(cfg: SiteConfig) -> Iterator[Placed]:
    """Every device of the config in order: each line's I/O, then its stations' devices."""
    for ln in cfg.lines:
        yield Placed(ln.io, ln.id, None)
        for st in ln.stations:
            for d in st.devices:
                yield Placed(d, ln.id, st.id)


def describe_transport(cfg: DeviceConfig) -> str:
    """Where the device is, as a technician writes it: `tcp 10.0.0.5:502 unit 1`,
    `rtu /dev/ttyUSB0 19200 8N1 unit 3`, `serial /dev/ttyUSB1 9600 8N1`."""
    t = cfg.transport
    if isinstance(t, TcpTransport):
        return f"tcp {t.host}:{t.port} unit {cfg.unit}"
    line = f"{t.device} {t.baudrate} {t.bytesize}{t.parity}{t.stopbits}"
    return f"rtu {line} unit {cfg.unit}" if t.kind == "rtu" else f"serial {line}"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def _iso(at: datetime | None) -> str | None:
    return utc_iso(at) if at is not None else None


def stats_entry(stats: DeviceStats) -> dict[str, Any]:
    """The counters and latency of one device, as the API gives them."""
    return {
        "requests": stats.requests,
        "errors": stats.errors,
        "errors_by_kind": dict(stats.errors_by_kind),
        "timeouts": stats.timeouts,
        "checksum_failures": stats.checksum_failures,
        "reconnects": stats.reconnects,
        "ring_overruns": stats.ring_overruns,
        "noise_events": stats.noise_events,
        "latency_p50_ms": _ms(stats.quantile(0.5)),
        "latency_p99_ms": _ms(stats.quantile(0.99)),
        "last_error": stats.last_error,
        "last_error_at": _iso(stats.last_error_at),
        "last_answer_at": _iso(stats.answered_at),
        "since": _iso(stats.since),
    }


def device_entry(placed: Placed, driver: Driver | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": placed.cfg.id,
        "model": placed.cfg.model,
        "line": placed.line,
        "station": placed.station,
        "transport": describe_transport(placed.cfg),
    }
    if driver is None:
        # Configured but never opened by the daemon (no station uses it).
        return {**entry, "up": None, **stats_entry(DeviceStats())}
    return {**entry, "up": driver.health.ok, **stats_entry(driver.health.stats)}


def devices_report(site: Site) -> list[dict[str, Any]]:
    """`GET /api/devices`: every configured device of the running site, JSON-able."""
    drivers = site.devices.drivers()
    return [device_entry(p, drivers.get(p.cfg.id)) for p in placed_devices(site.cfg)]
