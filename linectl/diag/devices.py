"""`linectl diag devices`: probe every configured device once.

Each device gets the one request that shows both that it is there and that
it answers as its model should, through the daemon's own driver, and never
one that changes anything:
- brake tester: its status (input registers 0..8 and discrete inputs 0..4):
  STATE, FAULT_CODE and STOP_REASON within devices.md's codes;
- line I/O: every station's inputs and guide display block;
- gas analyser: one reading (0x81), checksum checked, STATUS in words;
- opacimeter: one real-time frame (A5), checksum checked;
- headlamp tester: RES, which only repeats the last result (E4 when there is
  none is a proper answer: the tester is there).
All devices are probed at once (devices on one RTU line take turns, as in
the daemon). A device is `up` when it answered properly, `down` when it did
not answer or cannot be reached, `wrong` when it answered but not as its
model should (garbled frames, an exception, a wrong unit id). Exit 0 when
every device is up, 1 otherwise.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from linectl.config import SiteConfig, load_site_config
from linectl.device_report import Placed, describe_transport, placed_devices
from linectl.diag.explain import ModbusRequest, explain
from linectl.diag.models import reply_words
from linectl.diag.output import print_json, print_table
from linectl.diag.target import EXIT_FAILED, run, where, with_timeout
from linectl.drivers.devices import DeviceSet, Driver
from linectl.drivers.errors import (
    DeviceError,
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
)
from linectl.drivers.hlt_ascii import ERROR_MEANINGS, HeadlampError, HltAscii
from linectl.drivers.lineio_modbus import LineIO, Prompt
from linectl.drivers.nha503 import Nha503
from linectl.drivers.nht6 import Nht6
from linectl.drivers.rbt_modbus import RbtModbus
from linectl.drivers.serial import SerialDevice


@dataclass
class Probe:
    placed: Placed
    state: str  # up | down | wrong
    answer_ms: float | None
    detail: str  # what it answered, or what went wrong, in words

    def json(self) -> dict[str, Any]:
        c = self.placed.cfg
        return {
            "id": c.id,
            "model": c.model,
            "line": self.placed.line,
            "station": self.placed.station,
            "transport": describe_transport(c),
            "up": self.state == "up",
            "state": self.state,
            "answer_ms": self.answer_ms,
            "detail": self.detail,
        }


async def ask(driver: Driver) -> str:
    """The probe request of the driver's model; what it answered, in words."""
    if isinstance(driver, RbtModbus):
        st = await driver.status()
        fault = f", fault {st.fault_code.name}" if st.fault_code else ""
        return (
            f"STATE {int(st.state)} {st.state.name}{fault}, lift {'up' if st.lift_up else 'down'}, "
            f"{'an axle' if st.in_position else 'nothing'} on the rollers"
        )
    if isinstance(driver, LineIO):
        inputs = await driver.all_inputs()
        shown = []
        for s in range(driver.n_stations):
            block = await driver.read_display(s)
            try:
                prompt = Prompt(block.code).name
            except ValueError:
                raise DeviceProtocolError(
                    f"station {s} display holds prompt {block.code}, not a devices.md code"
                ) from None
            vehicle = (
                "vehicle in" if inputs[s].in_position else "free" if inputs[s].free else "exit"
            )
            shown.append(f"{s}: {vehicle}, {prompt}")
        return "; ".join(shown)
    if isinstance(driver, Nha503):
        return reply_words(await driver.read())[0]
    if isinstance(driver, Nht6):
        return reply_words(await driver.realtime())[0]
    if isinstance(driver, HltAscii):
        try:
            res = await driver.result()
        except HeadlampError as e:
            return f"RES answered {e.code.value} ({ERROR_MEANINGS[e.code]}): the tester is there"
        return "RES: busy (measuring)" if res is None else f"RES: {res.payload()}"
    raise TypeError(f"no probe for {type(driver).__name__}")


def _state_of(e: DeviceError) -> str:
    """down: no answer at all; wrong: an answer, but not as the model should (garbled,
    an exception, a gateway with no such unit)."""
    return "down" if isinstance(e, DeviceTimeout | DeviceUnreachable) else "wrong"


def _probe_request(placed: Placed) -> ModbusRequest | None:
    if placed.cfg.model == "rbt-modbus":
        return ModbusRequest("input_registers", 0, 9)
    if placed.cfg.model == "lineio-modbus":
        return ModbusRequest("discrete_inputs", 0, 8)
    return None


async def probe(placed: Placed, driver: Driver) -> Probe:
    stats = driver.health.stats
    try:
        if isinstance(driver, SerialDevice):
            await driver.start()
        detail = await ask(driver)
        state = "up"
    except DeviceError as e:
        w = where(placed.cfg)
        # The table names the device already: the words without the name.
        detail = explain(e, w, _probe_request(placed)).removeprefix(f"{w.name}: ")
        state = _state_of(e)
    answer = stats.latency_sum_s / stats.answers * 1000 if stats.answers else None
    return Probe(placed, state, None if answer is None else round(answer, 2), detail)


def open_drivers(cfg: SiteConfig, devices: DeviceSet, timeout_ms: float | None) -> list[Driver]:
    """The daemon's drivers for every device of the config, in config order."""
    out: list[Driver] = []
    n_stations = {ln.id: len(ln.stations) for ln in cfg.lines}
    for placed in placed_devices(cfg):
        c = with_timeout(placed.cfg, timeout_ms)
        if c.model == "rbt-modbus":
            out.append(devices.rbt(c))
        elif c.model == "lineio-modbus":
            out.append(devices.lineio(c, n_stations[placed.line]))
        else:
            kind = {"nha503": Nha503, "nht6": Nht6, "hlt-ascii": HltAscii}[c.model]
            out.append(devices.serial(kind, c))
    return out


async def probe_all(cfg: SiteConfig, timeout_ms: float | None = None) -> list[Probe]:
    devices = DeviceSet()
    try:
        drivers = open_drivers(cfg, devices, timeout_ms)
        placed = [
            Placed(with_timeout(p.cfg, timeout_ms), p.line, p.station) for p in placed_devices(cfg)
        ]
        return list(
            await asyncio.gather(*(probe(p, d) for p, d in zip(placed, drivers, strict=True)))
        )
    finally:
        await devices.aclose()


def cli(args: Any) -> int:
    cfg = load_site_config(args.config)
    probes = run(probe_all(cfg, args.timeout_ms), args.verbose)
    if args.json:
        print_json([p.json() for p in probes])
    else:
        print_table(
            ["device", "model", "where", "state", "answer", "what it said"],
            [
                (
                    p.placed.cfg.id,
                    p.placed.cfg.model,
                    describe_transport(p.placed.cfg),
                    p.state.upper() if p.state != "up" else "up",
                    f"{p.answer_ms:g} ms" if p.answer_ms is not None else None,
                    p.detail,
                )
                for p in probes
            ],
        )
    return 0 if all(p.state == "up" for p in probes) else EXIT_FAILED
