"""`linectl diag watch DEVICE`: one device's live values, refreshed in place until Ctrl-C.

Reads only, through the device's own driver, every `--interval` seconds:
the brake tester's status, the line I/O's inputs, entry lights and guide
displays, the analyser's reading, the opacimeter's live and peak values, the
headlamp tester's last result. A failed read shows its error in words and
the watch goes on, so a technician sees a flaky device drop out and come
back. On a terminal the table refreshes in place (rich); in a pipe each read
is printed after the other; `--json` gives one object per read and line.
"""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from linectl.clock import utc_iso
from linectl.diag.devices import open_drivers
from linectl.diag.explain import explain
from linectl.diag.models import reply_words
from linectl.diag.output import cell, print_json
from linectl.diag.target import device_from_config, run, where
from linectl.drivers.devices import DeviceSet, Driver
from linectl.drivers.errors import DeviceError
from linectl.drivers.hlt_ascii import ERROR_MEANINGS, HeadlampError, HltAscii
from linectl.drivers.lineio_modbus import LineIO, Prompt
from linectl.drivers.nha503 import Nha503
from linectl.drivers.nht6 import Nht6
from linectl.drivers.rbt_modbus import RbtModbus
from linectl.drivers.regmap import load_map
from linectl.drivers.serial import SerialDevice


def _name(value: int, kind: Any) -> str:
    try:
        return f"{value} {kind(value).name}"
    except ValueError:
        return f"{value} (undefined)"


async def read_values(driver: Driver) -> dict[str, Any]:
    """The device's live values, named as devices.md names them."""
    if isinstance(driver, RbtModbus):
        st = await driver.status()
        d = asdict(st)
        for key in ("state", "fault_code", "stop_reason"):
            d[key] = f"{int(d[key])} {d[key].name}"
        return d
    if isinstance(driver, LineIO):
        out: dict[str, Any] = {}
        stride = load_map("lineio-modbus").stride("coils")
        inputs = await driver.all_inputs()
        for s in range(driver.n_stations):
            light = (await driver.bus.read_coils(driver.unit, s * stride, 1))[0]
            shown = await driver.read_display(s)
            out[f"station {s}"] = (
                f"in_position={int(inputs[s].in_position)} exit_clear={int(inputs[s].exit_clear)} "
                f"light={'green' if light else 'red'} prompt={_name(shown.code, Prompt)} "
                f"plate={shown.plate!r} seq={shown.seq}"
                + (f" text={shown.text!r}" if shown.text else "")
            )
        return out
    if isinstance(driver, Nha503):
        return reply_words(await driver.read())[1]  # type: ignore[no-any-return]
    if isinstance(driver, Nht6):
        live = reply_words(await driver.realtime())[1]
        peaks = reply_words(await driver.peaks())[1]
        return {
            **{k: v for k, v in live.items() if k != "cmd"},
            "peak_opacity_pct": peaks["opacity_pct"],
            "peak_k_per_m": peaks["k_per_m"],
        }
    if isinstance(driver, HltAscii):
        try:
            res = await driver.result()
        except HeadlampError as e:
            return {"result": f"ERR,{e.code.value}: {ERROR_MEANINGS[e.code]}"}
        return {"result": "BUSY (measuring)" if res is None else res.payload()}
    raise TypeError(f"nothing to watch on {type(driver).__name__}")


def render(device: str, n: int, at: str, values: dict[str, Any], error: str | None) -> Table:
    clock = at[11:19]  # HH:MM:SS of the UTC stamp
    t = Table(
        title=f"{device}, read {n} at {clock} UTC", caption="Ctrl-C to stop", show_header=False
    )
    t.add_column("name", style="bold")
    t.add_column("value")
    for k, v in values.items():
        t.add_row(k, cell(v))
    if error:
        t.add_row("error", f"[red]{error}[/red]")
    return t


async def watch(
    device_id: str, config: str, interval: float, count: int | None, as_json: bool
) -> None:
    cfg, placed = device_from_config(config, device_id)
    devices = DeviceSet()
    sub = cfg.model_copy(update={"lines": [cfg.line(placed.line)]})
    drivers = {d.id: d for d in open_drivers(sub, devices, None)}
    driver = drivers[device_id]
    w = where(placed.cfg)
    tty = sys.stdout.isatty() and not as_json
    live = Live(console=Console(), auto_refresh=False) if tty else None
    values: dict[str, Any] = {}
    try:
        if live:
            live.start()
        n = 0
        while count is None or n < count:
            n += 1
            started = time.monotonic()
            error = None
            try:
                if isinstance(driver, SerialDevice):
                    await driver.start()
                values = await read_values(driver)
            except DeviceError as e:
                error = explain(e, w)
            at = utc_iso(_now())
            if as_json:
                print_json(
                    {
                        "device": device_id,
                        "at": at,
                        "values": values if not error else None,
                        "error": error,
                    },
                    lines=True,
                )
            elif live:
                live.update(render(device_id, n, at, values, error), refresh=True)
            else:
                print(f"{device_id} read {n} at {at}")
                for k, v in values.items():
                    print(f"  {k}: {cell(v)}")
                if error:
                    print(f"  error: {error}")
                sys.stdout.flush()
            if count is not None and n >= count:
                break
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        if live:
            live.stop()
        await devices.aclose()


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def cli(args: Any) -> int:
    try:
        run(watch(args.device_id, args.config, args.interval, args.count, args.json), args.verbose)
    except KeyboardInterrupt:
        return 0
    return 0
