"""Device faults the simulator injects on demand: a plan, and what each fault does.

A `FaultPlan` is a list of `Fault`s, each a kind of trouble on one device
from a simulated moment for a while. It comes from a TOML file
(`linectl sim --faults PLAN.toml`):

    [[fault]]
    device = "rbt-L1"        # a device id of the site config
    kind = "modbus_silent"   # one of KINDS
    at_s = 120               # simulated seconds after the simulator started
    for_s = 40               # how long (0 for a one-off such as modbus_drop)

or is drawn at random (`--fault-rate F --seed S`): every device, each
simulated minute, starts a fault with chance F, of a kind that fits its
model and transport, while none is running on it. The same seed gives the
same faults at the same simulated moments.

`FaultRunner` plays a plan against a running `SimSite`: at a fault's start
it switches the trouble on in the device's emulator and at its end off
again, so the device "comes back" as a repaired or replugged one would.
The emulators consult it where the trouble lives (the Modbus server's
request gate, the RTU cable, the serial line) and keep their own fault
switches (a stuck lift, a busy analyser, a lost headlamp head). A fault
injected on purpose is not a protocol violation; the referee keeps
counting only what the line computer did (sim/referee.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linectl import tomlfile
from linectl.clock import Clock

log = logging.getLogger(__name__)

MODBUS_MODELS = frozenset({"rbt-modbus", "lineio-modbus"})
SERIAL_MODELS = frozenset({"nha503", "nht6", "hlt-ascii"})

# kind -> (device models it fits, transport ("tcp", "rtu", "serial" or "" for any),
#          range of its length in simulated seconds for the random mode, what it is)
KINDS: dict[str, tuple[frozenset[str], str, tuple[float, float], str]] = {
    "modbus_drop": (MODBUS_MODELS, "tcp", (0.0, 0.0), "the Modbus TCP connection is dropped"),
    "modbus_silent": (MODBUS_MODELS, "", (15.0, 90.0), "the slave stops answering"),
    "modbus_exception_04": (MODBUS_MODELS, "", (5.0, 40.0), "answers exception 04 (failure)"),
    "modbus_exception_06": (MODBUS_MODELS, "", (5.0, 40.0), "answers exception 06 (busy)"),
    "rtu_bad_crc": (MODBUS_MODELS, "rtu", (5.0, 30.0), "RTU replies with a bad CRC"),
    "rtu_short_frame": (MODBUS_MODELS, "rtu", (5.0, 30.0), "RTU replies cut short"),
    "serial_silent": (SERIAL_MODELS, "serial", (15.0, 90.0), "the instrument stops answering"),
    "serial_garbled": (SERIAL_MODELS, "serial", (5.0, 40.0), "every reply has a byte flipped"),
    "serial_port_gone": (SERIAL_MODELS, "serial", (10.0, 60.0), "the serial port disappears"),
    "photo_chatter": (frozenset({"lineio-modbus"}), "", (5.0, 40.0), "photo switches chatter"),
    "lineio_gone": (frozenset({"lineio-modbus"}), "", (15.0, 90.0), "the line I/O module is gone"),
    "lift_stuck": (frozenset({"rbt-modbus"}), "", (20.0, 120.0), "the brake tester's lift sticks"),
    "analyser_busy": (frozenset({"nha503"}), "", (30.0, 120.0), "the gas analyser stays busy"),
    "head_lost": (frozenset({"hlt-ascii"}), "", (20.0, 120.0), "the headlamp head never arrives"),
}
RANDOM_TICK_S = 60.0  # the random mode draws once per device every simulated minute
MODBUS_GATED = ("modbus_silent", "modbus_exception_04", "modbus_exception_06", "lineio_gone")


class FaultPlanError(ValueError):
    """A plan that cannot be played; the message names the fault and the key."""


@dataclass(frozen=True)
class Fault:
    device: str
    kind: str
    at_s: float
    for_s: float = 0.0

    @property
    def until_s(self) -> float:
        return self.at_s + self.for_s

    def describe(self) -> str:
        return f"{self.kind} on {self.device} at {self.at_s:.0f} s for {self.for_s:.0f} s"


@dataclass(frozen=True)
class DeviceSpot:
    """What the plan needs to know of a device: its model and its transport."""

    id: str
    model: str
    transport: str  # "tcp", "rtu" or "serial"


def fits(kind: str, spot: DeviceSpot) -> bool:
    models, transport, _, _ = KINDS[kind]
    return spot.model in models and (not transport or transport == spot.transport)


def kinds_for(spot: DeviceSpot) -> list[str]:
    return [k for k in KINDS if fits(k, spot)]


@dataclass
class FaultPlan:
    faults: list[Fault]

    @classmethod
    def parse(cls, doc: dict[str, Any], devices: dict[str, DeviceSpot]) -> FaultPlan:
        entries = doc.get("fault", [])
        unknown = set(doc) - {"fault"}
        if unknown:
            raise FaultPlanError(f"unknown key(s) {', '.join(sorted(unknown))}: use [[fault]]")
        if not isinstance(entries, list):
            raise FaultPlanError("fault: write each fault as a [[fault]] table")
        faults = []
        for i, e in enumerate(entries, 1):
            where = f"fault {i}"
            if not isinstance(e, dict):
                raise FaultPlanError(f"{where}: a table with device, kind, at_s and for_s")
            extra = set(e) - {"device", "kind", "at_s", "for_s"}
            if extra:
                raise FaultPlanError(f"{where}: unknown key(s) {', '.join(sorted(extra))}")
            device, kind = e.get("device"), e.get("kind")
            if device not in devices:
                raise FaultPlanError(
                    f"{where}.device: {device!r} is not a device of the site config "
                    f"({', '.join(sorted(devices))})"
                )
            if kind not in KINDS:
                raise FaultPlanError(
                    f"{where}.kind: {kind!r} is not a fault kind ({', '.join(KINDS)})"
                )
            if not fits(kind, devices[device]):
                spot = devices[device]
                raise FaultPlanError(
                    f"{where}.kind: {kind} does not fit {device} ({spot.model} over "
                    f"{spot.transport}); it fits: {', '.join(kinds_for(spot))}"
                )
            at_s, for_s = e.get("at_s"), e.get("for_s", 0.0)
            for key, value in (("at_s", at_s), ("for_s", for_s)):
                if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                    raise FaultPlanError(f"{where}.{key}: seconds, a number >= 0, not {value!r}")
            assert isinstance(at_s, int | float) and isinstance(for_s, int | float)
            faults.append(Fault(device, kind, float(at_s), float(for_s)))
        return cls(sorted(faults, key=lambda f: f.at_s))

    @classmethod
    def load(cls, path: str | Path, devices: dict[str, DeviceSpot]) -> FaultPlan:
        try:
            doc = tomlfile.load(path)
        except (OSError, ValueError) as e:
            raise FaultPlanError(f"{path}: {e}") from None
        try:
            return cls.parse(doc, devices)
        except FaultPlanError as e:
            raise FaultPlanError(f"{path}: {e}") from None


def random_faults(
    devices: dict[str, DeviceSpot], rate: float, seed: int, until_s: float
) -> list[Fault]:
    """Faults drawn per device, each simulated minute with chance `rate`, up to `until_s`.
    Each device has its own generator, so adding a device does not move the others'."""
    out = []
    for dev_id, spot in sorted(devices.items()):
        kinds = kinds_for(spot)
        if not kinds or rate <= 0:
            continue
        rng = random.Random(seed * 1_000_003 + zlib.crc32(dev_id.encode()))
        t = RANDOM_TICK_S * rng.random()
        while t < until_s:
            if rng.random() < rate:
                kind = rng.choice(kinds)
                lo, hi = KINDS[kind][2]
                f = Fault(dev_id, kind, round(t, 1), round(rng.uniform(lo, hi), 1))
                out.append(f)
                t = f.until_s
            t += RANDOM_TICK_S
    return sorted(out, key=lambda f: f.at_s)


# Turns a fault on (True) or off (False) in its emulator; an awaitable when that takes I/O.
Switch = Callable[[Fault, bool], Awaitable[None] | None]


class FaultRunner:
    """Plays faults against the emulators; what is running now, for them to consult."""

    def __init__(self, clock: Clock, switches: dict[str, Switch]) -> None:
        self.clock = clock
        self.switches = switches  # device id -> its emulator's switch
        self.active: dict[str, Fault] = {}  # device id -> the fault running on it
        self.injected: Counter[str] = Counter()  # kind -> how many started
        self.log: list[Fault] = []

    def on(self, device: str, *kinds: str) -> bool:
        """Whether one of `kinds` is running on `device` now."""
        f = self.active.get(device)
        return f is not None and f.kind in kinds

    def modbus_gate(self, device: str) -> str | None:
        """The Modbus trouble of `device` now: "silent", an exception code, or None."""
        f = self.active.get(device)
        if f is None or f.kind not in MODBUS_GATED:
            return None
        return {"modbus_exception_04": "04", "modbus_exception_06": "06"}.get(f.kind, "silent")

    async def start(self, f: Fault) -> None:
        self.active[f.device] = f
        self.injected[f.kind] += 1
        self.log.append(f)
        log.warning("sim fault: %s (%s) starts", f.describe(), KINDS[f.kind][3])
        await self._flip(f, True)

    async def end(self, f: Fault) -> None:
        if self.active.get(f.device) is f:
            del self.active[f.device]
        await self._flip(f, False)
        log.warning("sim fault: %s on %s ends", f.kind, f.device)

    async def _flip(self, f: Fault, on: bool) -> None:
        switch = self.switches.get(f.device)
        done = switch(f, on) if switch is not None else None
        if done is not None:
            await done

    async def play(self, faults: list[Fault]) -> None:
        """Start and end each fault at its simulated moment; overlapping faults on
        one device are played one after the other."""
        t0 = self.clock.now()
        ends: list[tuple[float, Fault]] = []
        pending = sorted(faults, key=lambda f: f.at_s)
        try:
            while pending or ends:
                ends.sort(key=lambda e: e[0])
                next_start = pending[0].at_s if pending else float("inf")
                next_end = ends[0][0] if ends else float("inf")
                wait = min(next_start, next_end) - (self.clock.now() - t0)
                if wait > 0:
                    await self.clock.sleep(wait)
                if next_end <= next_start:
                    await self.end(ends.pop(0)[1])
                    continue
                f = pending.pop(0)
                if f.device in self.active:
                    # Busy with another: this one starts when that one ends.
                    later = max(e for e, g in ends if g.device == f.device)
                    pending.append(Fault(f.device, f.kind, later + 0.1, f.for_s))
                    pending.sort(key=lambda g: g.at_s)
                    continue
                await self.start(f)
                ends.append((f.at_s + max(f.for_s, 0.1), f))
        finally:
            for f in list(self.active.values()):
                with contextlib.suppress(Exception):
                    await asyncio.shield(self.end(f))

    def summary(self) -> str:
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.injected.items()))
        return f"faults injected by the simulator: {sum(self.injected.values())}" + (
            f" ({kinds})" if kinds else ""
        )


__all__ = [
    "KINDS",
    "DeviceSpot",
    "Fault",
    "FaultPlan",
    "FaultPlanError",
    "FaultRunner",
    "fits",
    "kinds_for",
    "random_faults",
]
