"""`linectl diag selftest DEVICE`: the device's own routines, each step pass or fail with its reading.

- Brake tester: nothing on the rollers; lift up, lift down (each must arrive
  within the 5 s of devices.md); tare; weigh with nothing on the rollers
  (devices.md makes the controller refuse WEIGH without an axle, FAULT 6, and
  the loads must read near zero; a controller that weighs anyway must weigh
  near zero); then the lift up again, where the line expects it at rest.
- Gas analyser: not warming up; zero, then leak check, each taken (06) and
  finished within devices.md's 30 s, the leak check not failed. Readings once
  a second, as devices.md asks of the host.
- Opacimeter: zero (echoed), then the live opacity near zero.
- Headlamp tester: reset (ACK), then RES says no measurement (E4): the reset took.
The line I/O has no routine of its own: `diag watch` shows it.

It refuses to run on a station the running daemon uses. It asks the daemon
(`GET /api/lines` of http.md, with the token) for the station's line: it
goes ahead only when that line reports `"paused": true` and the station is
`free`; a daemon that answers 401/403 is a refusal too (it cannot tell). No
daemon answering at the address is said, and the test goes ahead: a daemon
with [http] disabled cannot be asked, so stop it first (`systemctl stop
linectl`); its serial ports are locked anyway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from linectl.cli import CliError
from linectl.device_report import Placed
from linectl.diag.api import ApiError, base_url, get_json, token_of
from linectl.diag.devices import open_drivers
from linectl.diag.explain import explain
from linectl.diag.models import reply_words, status_words
from linectl.diag.output import note, print_json, print_table
from linectl.diag.target import EXIT_FAILED, device_from_config, run, where
from linectl.drivers.devices import DeviceSet, Driver
from linectl.drivers.errors import DeviceError
from linectl.drivers.framing import NhaReply, NhaStatus
from linectl.drivers.hlt_ascii import HeadlampError, HltAscii, HltError
from linectl.drivers.nha503 import Nha503
from linectl.drivers.nht6 import Nht6
from linectl.drivers.rbt_modbus import FaultCode, RbtCommand, RbtModbus, RbtState, RbtStatus
from linectl.drivers.serial import SerialDevice

LIFT_TRAVEL_S = 5.0  # devices.md: a lift that does not arrive in 5 s is a device fault
TARE_LIMIT_S = 10.0
WEIGH_LIMIT_S = 5.0  # devices.md: WEIGHED within 2 s
NEAR_ZERO_KG = 5
ANALYSER_OP_LIMIT_S = 40.0  # devices.md: a zero or leak check runs up to 30 s
NEAR_ZERO_OPACITY_PCT = 1.0
OPACIMETER_ZERO_LIMIT_S = 15.0  # as the emission procedure's ZERO_TIMEOUT_S
POLL_S = 0.05


class StepFailed(Exception):
    """A step's check did not hold; the message is its reading."""


@dataclass
class Step:
    name: str
    ok: bool
    reading: str
    seconds: float


class Run:
    """The steps of one self-test, in order; a failed step ends it."""

    def __init__(self, where_name: Callable[[DeviceError], str]) -> None:
        self.steps: list[Step] = []
        self._explain = where_name

    async def step(self, name: str, work: Callable[[], Awaitable[str]]) -> bool:
        t0 = time.monotonic()
        try:
            reading, ok = await work(), True
        except StepFailed as e:
            reading, ok = str(e), False
        except DeviceError as e:
            reading, ok = self._explain(e), False
        self.steps.append(Step(name, ok, reading, round(time.monotonic() - t0, 2)))
        return ok


async def _until(
    read: Callable[[], Awaitable[RbtStatus]], done: Callable[[RbtStatus], bool], limit_s: float
) -> tuple[RbtStatus, float]:
    t0 = time.monotonic()
    while True:
        st = await read()
        if done(st):
            return st, time.monotonic() - t0
        if time.monotonic() - t0 > limit_s:
            return st, -1.0
        await asyncio.sleep(POLL_S)


async def brake(rbt: RbtModbus, r: Run) -> None:
    async def empty() -> str:
        st = await rbt.status()
        if st.in_position:
            raise StepFailed("an axle stands on the rollers (IN_POSITION = 1): drive it off first")
        fault = f", FAULT {st.fault_code.name} (a command clears it)" if st.fault_code else ""
        return f"STATE {st.state.name}{fault}, nothing on the rollers"

    def lift(up: bool) -> Callable[[], Awaitable[str]]:
        async def go() -> str:
            await rbt.command(RbtCommand.LIFT_UP if up else RbtCommand.LIFT_DOWN)
            st, took = await _until(rbt.status, lambda s: s.lift_up == up, LIFT_TRAVEL_S)
            where_to = "up" if up else "down"
            if took < 0:
                raise StepFailed(f"the lift did not arrive {where_to} in {LIFT_TRAVEL_S:g} s")
            if st.state == RbtState.FAULT:
                raise StepFailed(f"lift {where_to}, but FAULT {st.fault_code.name}")
            return f"{where_to} after {took:.2f} s"

        return go

    async def tare() -> str:
        await rbt.command(RbtCommand.TARE)
        st, took = await _until(
            rbt.status, lambda s: s.state not in (RbtState.TARING,), TARE_LIMIT_S
        )
        if took < 0:
            raise StepFailed(f"still TARING after {TARE_LIMIT_S:g} s")
        if st.state == RbtState.FAULT:
            raise StepFailed(f"FAULT {int(st.fault_code)} {st.fault_code.name}")
        return f"{st.state.name} after {took:.2f} s, loads L {st.left_load_kg} kg R {st.right_load_kg} kg"

    async def weigh_empty() -> str:
        await rbt.command(RbtCommand.WEIGH)
        st, _ = await _until(
            rbt.status,
            lambda s: s.state in (RbtState.WEIGHED, RbtState.FAULT, RbtState.IDLE),
            WEIGH_LIMIT_S,
        )
        loads = f"L {st.left_load_kg} kg R {st.right_load_kg} kg"
        near_zero = max(st.left_load_kg, st.right_load_kg) <= NEAR_ZERO_KG
        if st.state == RbtState.FAULT and st.fault_code == FaultCode.NO_AXLE:
            if not near_zero:
                raise StepFailed(f"refused (FAULT 6) but the loads read {loads}")
            return f"refused as devices.md says (FAULT 6 no axle in position), loads {loads}"
        if st.state == RbtState.WEIGHED:
            if not near_zero:
                raise StepFailed(
                    f"weighed {loads} with nothing on the rollers: tare, or a load cell"
                )
            return f"weighed {loads} with nothing on the rollers"
        raise StepFailed(f"STATE {st.state.name}, FAULT {st.fault_code.name}, loads {loads}")

    async def rest() -> str:
        reading = await lift(True)()
        st = await rbt.status()
        if st.state == RbtState.FAULT:
            raise StepFailed(f"FAULT {st.fault_code.name} stays after a valid command")
        return f"{reading}, STATE {st.state.name}"

    for name, work in (
        ("nothing on the rollers", empty),
        ("lift up", lift(True)),
        ("lift down", lift(False)),
        ("tare", tare),
        ("weigh with no vehicle", weigh_empty),
        ("lift up (rest)", rest),
    ):
        if not await r.step(name, work):
            return


async def analyser(gas: Nha503, r: Run) -> None:
    async def ready() -> str:
        f = await gas.read()
        if NhaStatus.WARMING_UP in f.status:
            raise StepFailed("warming up: wait until STATUS reads ready, then run it again")
        return f"STATUS {int(f.status):02X} ({status_words(f.status)})"

    def routine(
        name: str, start: Callable[[], Awaitable[NhaReply]], busy: NhaStatus
    ) -> Callable[[], Awaitable[str]]:
        async def go() -> str:
            reply = await start()
            if reply != NhaReply.ACCEPTED:
                raise StepFailed(f"{name} not taken: {reply_words(reply)[0]}")
            t0 = time.monotonic()
            while True:
                await asyncio.sleep(1.0)  # devices.md: one reading a second
                f = await gas.read()
                if busy not in f.status:
                    break
                if time.monotonic() - t0 > ANALYSER_OP_LIMIT_S:
                    raise StepFailed(f"{name} still running after {ANALYSER_OP_LIMIT_S:g} s")
            if NhaStatus.LEAK_CHECK_FAILED in f.status:
                raise StepFailed(
                    f"leak check failed (STATUS {int(f.status):02X}): check the probe and hose"
                )
            return f"done in {time.monotonic() - t0:.1f} s; {reply_words(f)[0]}"

        return go

    for name, work in (
        ("ready (not warming up)", ready),
        ("zero", routine("zero", gas.zero, NhaStatus.ZEROING)),
        ("leak check", routine("leak check", gas.leak_check, NhaStatus.LEAK_CHECK_OR_BACK_FLUSH)),
    ):
        if not await r.step(name, work):
            return


async def opacimeter(smoke: Nht6, r: Run) -> None:
    async def zero() -> str:
        await smoke.zero()
        return "echoed A4: zero taken"

    async def clean() -> str:
        # The echo comes at once but the zero takes seconds (devices.md gives no
        # busy state): watch the clean-air reading, as the emission procedure does.
        t0 = time.monotonic()
        while True:
            f = await smoke.realtime()
            words = reply_words(f)[0]
            if f.opacity_pct <= NEAR_ZERO_OPACITY_PCT:
                return f"{words} after {time.monotonic() - t0:.1f} s"
            if time.monotonic() - t0 > OPACIMETER_ZERO_LIMIT_S:
                raise StepFailed(
                    f"{words}: not near zero {OPACIMETER_ZERO_LIMIT_S:g} s after zeroing "
                    "(smoke chamber dirty?)"
                )
            await asyncio.sleep(0.2)

    for name, work in (("zero", zero), ("opacity near zero", clean)):
        if not await r.step(name, work):
            return


async def headlamp(hlt: HltAscii, r: Run) -> None:
    async def reset() -> str:
        await hlt.reset()
        return "ACK: head homed"

    async def forgot() -> str:
        try:
            res = await hlt.result()
        except HeadlampError as e:
            if e.code == HltError.NO_MEASUREMENT:
                return "E4 no measurement since RST: the reset took"
            raise StepFailed(f"RES answered {e.code.value}, not E4") from None
        raise StepFailed(f"RES answered {'BUSY' if res is None else res.payload()}, not E4")

    for name, work in (("reset", reset), ("no result after reset", forgot)):
        if not await r.step(name, work):
            return


ROUTINES: dict[type, Callable[[Any, Run], Awaitable[None]]] = {
    RbtModbus: brake,
    Nha503: analyser,
    Nht6: opacimeter,
    HltAscii: headlamp,
}


def refusal(placed: Placed, url: str | None, config: str, token: str | None) -> str | None:
    """Why the self-test must not run now (the daemon uses the station), or None."""
    station = placed.station
    try:
        base = base_url(url, config)
        lines = get_json(base, "/api/lines", token)
    except ApiError as e:
        if e.kind in ("unreachable", "disabled"):
            note(f"{e}; going ahead (a daemon with [http] disabled cannot be asked: stop it first)")
            return None
        return f"cannot tell whether the running daemon uses station {station}: {e}"
    line = next((ln for ln in lines if isinstance(ln, dict) and ln.get("id") == placed.line), None)
    if line is None:
        note(f"the daemon at {base} has no line {placed.line}; going ahead")
        return None
    st = next((s for s in line.get("stations", []) if s.get("id") == station), None)
    state = st.get("state") if st else None
    # http.md names pause and resume but not the field that shows it: a boolean
    # `paused`, or a line `state` of "paused".
    paused = line.get("paused") is True or line.get("state") == "paused"
    if paused and state == "free":
        return None
    why = f"station {station} is {state or 'unknown'}" + (
        f" with {st['plate']}" if st and st.get("plate") else ""
    )
    running = "paused" if paused else "running"
    return (
        f"station {station} of line {placed.line} is in use by the running daemon "
        f"({why}, line {running}): pause line {placed.line} (console, or POST "
        f"/api/lines/{placed.line}/pause), wait until the station is free, then run the "
        "self-test again"
    )


async def selftest(driver: Driver, placed: Placed) -> list[Step]:
    routine = next((f for kind, f in ROUTINES.items() if isinstance(driver, kind)), None)
    if routine is None:
        raise CliError(
            f"{placed.cfg.id} ({placed.cfg.model}) has no self-test; `diag watch` shows it"
        )
    w = where(placed.cfg)
    r = Run(lambda e: explain(e, w).removeprefix(f"{w.name}: "))
    if isinstance(driver, SerialDevice):
        await driver.start()
    await routine(driver, r)
    return r.steps


async def _run(config: str, device_id: str) -> list[Step]:
    cfg, placed = device_from_config(config, device_id)
    devices = DeviceSet()
    try:
        sub = cfg.model_copy(update={"lines": [cfg.line(placed.line)]})
        driver = {d.id: d for d in open_drivers(sub, devices, None)}[device_id]
        return await selftest(driver, placed)
    finally:
        await devices.aclose()


def cli(args: Any) -> int:
    _, placed = device_from_config(args.config, args.device_id)
    if placed.station is None:
        raise CliError(f"{placed.cfg.id} is a line I/O module: no self-test; `diag watch` shows it")
    why = refusal(placed, args.url, args.config, token_of(args.token))
    if why is not None:
        raise CliError(why, EXIT_FAILED)
    steps = run(_run(args.config, args.device_id), args.verbose)
    if args.json:
        print_json(
            {
                "device": placed.cfg.id,
                "ok": all(s.ok for s in steps),
                "steps": [asdict(s) for s in steps],
            }
        )
    else:
        print_table(
            ["step", "result", "time", "reading"],
            [(s.name, "pass" if s.ok else "FAIL", f"{s.seconds:.2f} s", s.reading) for s in steps],
        )
    return 0 if steps and all(s.ok for s in steps) else EXIT_FAILED
