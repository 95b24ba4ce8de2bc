"""Which device a diag command talks to, and the driver that talks to it.

A device comes from the site config by id (`DEVICE --config FILE`), or from
flags (`--host/--port` for Modbus TCP, `--device/--baud` for Modbus RTU or an
RS-232 instrument). Either way the result is a `DeviceConfig`, so the driver
is built exactly as the daemon builds it (drivers/devices.py). Running a
coroutine ends in one line for a technician, never a traceback.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from linectl.cli import CliError
from linectl.config import DeviceConfig, SiteConfig, load_site_config
from linectl.device_report import Placed, describe_transport, placed_devices
from linectl.diag.explain import Where

T = TypeVar("T")

EXIT_FAILED = 1  # a device down, a step failed, an exception reply
EXIT_USAGE = 2  # bad arguments or config


QUIETED = ("linectl.drivers", "pymodbus", "pymodbus.logging")


def run(coro: Coroutine[Any, Any, T], verbose: int = 0) -> T:
    """Run a diag coroutine. Without -v the drivers' own log lines ("device X is
    down", meant for the daemon's log) are held back: diag says what went wrong
    itself, in its own words. Levels are put back afterwards."""
    saved = {name: logging.getLogger(name).level for name in QUIETED}
    if verbose == 0:
        for name in QUIETED:
            logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        return asyncio.run(coro)
    except OSError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def find_device(cfg: SiteConfig, device_id: str) -> Placed:
    found = [p for p in placed_devices(cfg) if p.cfg.id == device_id]
    if not found:
        known = ", ".join(p.cfg.id for p in placed_devices(cfg))
        raise CliError(f"no device {device_id!r} in the config (it has: {known})", EXIT_USAGE)
    return found[0]


def device_from_config(config: str | None, device_id: str) -> tuple[SiteConfig, Placed]:
    if not config:
        raise CliError(f"give --config FILE to find device {device_id!r}", EXIT_USAGE)
    cfg = load_site_config(config)
    return cfg, find_device(cfg, device_id)


def with_timeout(cfg: DeviceConfig, timeout_ms: float | None) -> DeviceConfig:
    if timeout_ms is None:
        return cfg
    return cfg.model_copy(update={"timeout_s": timeout_ms / 1000})


def where(cfg: DeviceConfig, *, id_known: bool = True) -> Where:
    """How messages name `cfg`: its id and transport (or the transport alone)."""
    t = cfg.transport
    name = f"{cfg.id} ({describe_transport(cfg)})" if id_known else describe_transport(cfg)
    return Where(
        name=name,
        path=getattr(t, "device", None),
        unit=cfg.unit if t.kind in ("tcp", "rtu") else None,
        timeout_s=cfg.timeout_s,
        model=cfg.model,
    )


def adhoc_device(
    *,
    model: str,
    host: str | None = None,
    port: int | None = None,
    device: str | None = None,
    baud: int | None = None,
    parity: str = "N",
    stopbits: int = 1,
    unit: int = 1,
    timeout_ms: float = 1000.0,
) -> DeviceConfig:
    """A DeviceConfig from command-line flags, validated as the site config is."""
    if (host is None) == (device is None):
        raise CliError("give either --host (Modbus TCP) or --device (serial port)", EXIT_USAGE)
    transport: dict[str, Any]
    if host is not None:
        transport = {"kind": "tcp", "host": host, "port": 502 if port is None else port}
    else:
        kind = "rtu" if model in ("rbt-modbus", "lineio-modbus") else "serial"
        transport = {"kind": kind, "device": device, "parity": parity, "stopbits": stopbits}
        if baud is not None:
            transport["baudrate"] = baud
    try:
        return DeviceConfig.model_validate(
            {
                "id": "device",
                "model": model,
                "transport": transport,
                "unit": unit,
                "timeout_s": timeout_ms / 1000,
            }
        )
    except ValueError as e:
        raise CliError(f"bad device flags: {e}", EXIT_USAGE) from None
