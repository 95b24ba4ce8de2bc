"""`linectl diag ports`: the serial ports here, who is configured on each, and whether each opens.

The ports are those pyserial's `list_ports` finds, plus every serial path
the config names that it does not list (a /dev/serial/by-id link, the
simulator's pty links). A path and a port are the same when their real
paths are. Each is opened once the way the daemon opens it (`SerialPort`:
exclusive, so a port another program holds shows as busy) and closed again.

One thing it cannot see: pymodbus opens Modbus RTU ports without the
exclusive lock, so a port a running daemon uses for Modbus RTU shows as
"ok" here; `linectl diag stats` tells what the daemon sees on it.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import asdict, dataclass
from typing import Any

from serial.tools import list_ports

from linectl.config import SerialTransport, SiteConfig, load_site_config
from linectl.device_report import placed_devices
from linectl.diag.explain import DIALOUT_FIX
from linectl.diag.output import print_json, print_table
from linectl.diag.target import run
from linectl.drivers.health import DeviceHealth
from linectl.drivers.serial import SerialPort

OPEN_WORDS = {
    "busy": "busy: another program holds it (the daemon?)",
    "permission": f"permission denied: {DIALOUT_FIX}",
    "no_port": "missing: no such device (unplugged?)",
    "io": "input/output error (adapter unplugged?)",
}


@dataclass
class PortRow:
    port: str
    description: str
    hwid: str
    used_by: list[str]
    opens: bool
    why: str | None  # os_error_words key when it does not open
    detail: str


def configured_ports(cfg: SiteConfig | None) -> dict[str, list[str]]:
    """Serial path -> device ids configured on it (RS-232 instruments and Modbus RTU)."""
    out: dict[str, list[str]] = {}
    if cfg is None:
        return out
    for p in placed_devices(cfg):
        path = getattr(p.cfg.transport, "device", None)
        if path:
            out.setdefault(path, []).append(p.cfg.id)
    return out


async def try_open(path: str) -> tuple[bool, str | None, str]:
    """(opens, why, words) for one port, opened as the daemon opens it."""
    port = SerialPort(path, SerialTransport(device=path), DeviceHealth(path), timeout_s=0.5)
    try:
        await port.start()
        if port.is_open:
            return True, None, "ok"
        why = port.open_why
        return False, why, OPEN_WORDS.get(why or "", port.open_error or "does not open")
    finally:
        await port.aclose()


def list_rows(cfg: SiteConfig | None) -> list[PortRow]:
    """The system's ports and the configured ones, each once, not yet opened."""
    configured = configured_ports(cfg)
    by_real: dict[str, list[str]] = {}
    for path, ids in configured.items():
        by_real.setdefault(os.path.realpath(path), []).extend(ids)
    rows: list[PortRow] = []
    seen: set[str] = set()
    for info in sorted(list_ports.comports(), key=lambda i: i.device):
        real = os.path.realpath(info.device)
        seen.add(real)
        rows.append(
            PortRow(
                info.device, info.description, info.hwid, by_real.get(real, []), False, None, ""
            )
        )
    for path, ids in configured.items():
        real = os.path.realpath(path)
        if real in seen:
            continue
        seen.add(real)
        rows.append(
            PortRow(path, "(configured; not listed by the system)", "", ids, False, None, "")
        )
    return rows


async def survey(cfg: SiteConfig | None) -> list[PortRow]:
    rows = list_rows(cfg)
    results = await asyncio.gather(*(try_open(r.port) for r in rows))
    for row, (ok, why, words) in zip(rows, results, strict=True):
        row.opens, row.why, row.detail = ok, why, words
    return rows


def cli(args: Any) -> int:
    cfg = load_site_config(args.config) if args.config else None
    rows = run(survey(cfg), args.verbose)
    if args.json:
        print_json([asdict(r) for r in rows])
        return 0
    if not rows:
        print("no serial ports found")
        return 0
    print_table(
        ["port", "description", "used by", "opens"],
        [(r.port, r.description, ", ".join(r.used_by) or None, r.detail) for r in rows],
    )
    return 0
