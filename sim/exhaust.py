"""Exhaust of a simulated vehicle: its engine speed, gases and smoke, and their faults.

`ExhaustTraits` is what the vehicle was built with: where the ECU holds
idle, the governed speed a free acceleration reaches, the gas mix at idle
and at high idle (petrol, hybrid, gas), the peak light-absorption
coefficient K of a free acceleration (diesel). Electric vehicles have none.
Healthy designs sit well inside limit sets a and b; the faults well outside:
- `rich_mixture`: CO and HC far over every limit, lambda under 0.95;
- `lambda_out`: a lean engine, lambda over 1.05 at high idle, CO and HC fine;
- `smoky_diesel`: peak K over twice the limit of set a.
Each fails EX (`expected_exhaust_items()`).

`Engine` is the running engine at the emission station, moved by the
simulated driver (`hold()`, `idle()`, `free_accelerate()`, `dip()`); the
instruments sample it: `rpm(t)`, `gases(t)` (what the probe sees, with the
sampling line's delay) and `smoke_k(t)`. `t` is absolute clock time.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from linectl.vehicle import Fuel, Vehicle

EXHAUST_FAULTS = ("rich_mixture", "lambda_out", "smoky_diesel")
SPARK_FUELS = (Fuel.PETROL, Fuel.HYBRID, Fuel.GAS)

HIGH_IDLE_RPM = 2500.0  # standards.md; 1800 over 3500 kg gross
HEAVY_HIGH_IDLE_RPM = 1800.0
HEAVY_GROSS_KG = 3500
OPTICAL_PATH_M = 0.43  # effective light path of a partial-flow opacimeter (GB 3847)
PROBE_DELAY_S = 3.0  # from the tailpipe to the analyser's bench


@dataclass(frozen=True)
class GasMix:
    co_pct: float
    hc_ppm: float
    co2_pct: float
    o2_pct: float
    no_ppm: float
    lambda_: float


AIR = GasMix(0.0, 0.0, 0.04, 20.9, 0.0, 0.0)


@dataclass(frozen=True)
class ExhaustTraits:
    fuel: Fuel
    idle_rpm: float
    governed_rpm: float
    high_idle_rpm: float  # the speed the standard asks for this vehicle
    oil_temp_c: float
    idle: GasMix | None = None
    high_idle: GasMix | None = None
    peak_k: float | None = None  # m^-1, diesel
    idle_k: float = 0.0


class HasKind(Protocol):
    kind: str


def exhaust_fault_fits(kind: str, vehicle: Vehicle) -> bool:
    if kind in ("rich_mixture", "lambda_out"):
        return vehicle.fuel in SPARK_FUELS
    if kind == "smoky_diesel":
        return vehicle.fuel is Fuel.DIESEL
    raise ValueError(f"unknown exhaust fault {kind!r}")


def make_exhaust(vehicle: Vehicle, rng: random.Random) -> ExhaustTraits | None:
    """A healthy engine for the vehicle, or None for an electric one."""
    if vehicle.fuel is Fuel.ELECTRIC:
        return None
    heavy = vehicle.gross_mass_kg > HEAVY_GROSS_KG
    high_idle = HEAVY_HIGH_IDLE_RPM if heavy else HIGH_IDLE_RPM
    oil = rng.uniform(78.0, 95.0)
    if vehicle.fuel is Fuel.DIESEL:
        return ExhaustTraits(
            fuel=vehicle.fuel,
            idle_rpm=rng.uniform(600.0, 700.0) if heavy else rng.uniform(750.0, 850.0),
            governed_rpm=rng.uniform(2400.0, 2700.0) if heavy else rng.uniform(4300.0, 4800.0),
            high_idle_rpm=high_idle,
            oil_temp_c=oil,
            peak_k=rng.uniform(0.15, 0.45),  # limit b is 0.7
            idle_k=rng.uniform(0.02, 0.06),
        )
    # Inside limit b (the tighter set) with room: idle CO 0.4 / HC 40,
    # high idle CO 0.3 / HC 30, lambda 0.95..1.05.
    lam = rng.uniform(0.99, 1.02)
    return ExhaustTraits(
        fuel=vehicle.fuel,
        idle_rpm=rng.uniform(700.0, 850.0),
        governed_rpm=rng.uniform(6000.0, 6500.0),
        high_idle_rpm=high_idle,
        oil_temp_c=oil,
        idle=GasMix(
            co_pct=rng.uniform(0.05, 0.22),
            hc_ppm=rng.uniform(10.0, 26.0),
            co2_pct=rng.uniform(14.4, 15.0),
            o2_pct=rng.uniform(0.1, 0.5),
            no_ppm=rng.uniform(40.0, 140.0),
            lambda_=lam + rng.uniform(-0.01, 0.01),
        ),
        high_idle=GasMix(
            co_pct=rng.uniform(0.02, 0.12),
            hc_ppm=rng.uniform(5.0, 17.0),
            co2_pct=rng.uniform(14.6, 15.2),
            o2_pct=rng.uniform(0.1, 0.4),
            no_ppm=rng.uniform(100.0, 300.0),
            lambda_=lam,
        ),
    )


def apply_exhaust_fault(ex: ExhaustTraits, kind: str, rng: random.Random) -> ExhaustTraits:
    if kind == "rich_mixture":
        assert ex.idle is not None and ex.high_idle is not None
        lam = rng.uniform(0.84, 0.89)
        return replace(
            ex,
            idle=replace(
                ex.idle,
                co_pct=rng.uniform(1.6, 3.0),
                hc_ppm=rng.uniform(160.0, 300.0),
                co2_pct=rng.uniform(12.0, 13.0),
                o2_pct=rng.uniform(0.05, 0.2),
                lambda_=lam - 0.01,
            ),
            high_idle=replace(
                ex.high_idle,
                co_pct=rng.uniform(0.9, 1.8),
                hc_ppm=rng.uniform(90.0, 180.0),
                co2_pct=rng.uniform(12.5, 13.5),
                o2_pct=rng.uniform(0.05, 0.2),
                lambda_=lam,
            ),
        )
    if kind == "lambda_out":
        assert ex.idle is not None and ex.high_idle is not None
        lam = rng.uniform(1.10, 1.14)
        return replace(
            ex,
            idle=replace(ex.idle, o2_pct=rng.uniform(2.0, 3.0), lambda_=lam + 0.01),
            high_idle=replace(ex.high_idle, o2_pct=rng.uniform(1.8, 2.8), lambda_=lam),
        )
    if kind == "smoky_diesel":
        return replace(ex, peak_k=rng.uniform(2.0, 2.8), idle_k=rng.uniform(0.2, 0.4))
    raise ValueError(f"unknown exhaust fault {kind!r}")


def expected_exhaust_items(faults: Iterable[HasKind]) -> dict[str, str]:
    return {"EX": "fail"} if any(f.kind in EXHAUST_FAULTS for f in faults) else {}


def opacity_pct(k_per_m: float) -> float:
    """Opacity N of the opacimeter's light path for an absorption coefficient K."""
    return 100.0 * (1.0 - math.exp(-k_per_m * OPTICAL_PATH_M))


@dataclass(frozen=True)
class _Segment:
    start: float
    target: float
    tau_s: float


class Engine:
    """The vehicle's engine while it stands at the emission station."""

    def __init__(self, traits: ExhaustTraits, now: float, seed: int = 0) -> None:
        self.traits = traits
        rng = random.Random(seed)
        self._phase = (rng.uniform(0, 2 * math.pi), rng.uniform(0, 2 * math.pi))
        self._segments: list[_Segment] = [_Segment(now - 60.0, traits.idle_rpm, 0.5)]
        self._start_rpm: list[float] = [traits.idle_rpm]
        self._pulses: list[tuple[float, float]] = []  # (start, peak K) per free acceleration
        self._rng = rng
        self.probe_in_at: float | None = None
        self.accelerations = 0

    # --- the driver's controls -----------------------------------------------------

    def _set(self, t: float, target: float, tau_s: float) -> None:
        # A new command replaces whatever was still to come.
        while len(self._segments) > 1 and self._segments[-1].start > t:
            self._segments.pop()
            self._start_rpm.pop()
        self._start_rpm.append(self._base_rpm(t))
        self._segments.append(_Segment(t, target, tau_s))

    def hold(self, t: float, rpm: float) -> None:
        """Hold the throttle for `rpm` from clock time `t`."""
        self._set(t, rpm, 0.8)

    def idle(self, t: float) -> None:
        self._set(t, self.traits.idle_rpm, 0.8)

    def dip(self, t: float, depth_rpm: float, duration_s: float) -> None:
        """The driver's foot sags for a while (a high-idle phase missed)."""
        back_to = self._base_rpm(t)
        self._set(t, back_to - depth_rpm, 0.5)
        self._segments.append(_Segment(t + duration_s, back_to, 0.8))
        self._start_rpm.append(math.nan)

    def free_accelerate(self, t: float, hold_s: float) -> None:
        """Floor the pedal at `t`, hold `hold_s`, release to idle."""
        self._set(t, self.traits.governed_rpm, 0.25)
        self._segments.append(_Segment(t + hold_s, self.traits.idle_rpm, 0.7))
        self._start_rpm.append(math.nan)
        self.accelerations += 1
        if self.traits.peak_k is not None:
            self._pulses.append((t, self.traits.peak_k * self._rng.uniform(0.96, 1.04)))

    def insert_probe(self, t: float) -> None:
        self.probe_in_at = t

    def remove_probe(self) -> None:
        self.probe_in_at = None

    # --- what the instruments see --------------------------------------------------

    def _base_rpm(self, t: float) -> float:
        i = len(self._segments) - 1
        while i > 0 and self._segments[i].start > t:
            i -= 1
        seg = self._segments[i]
        start = self._start_rpm[i]
        if math.isnan(start):
            start = self._base_rpm(seg.start - 1e-9)
            self._start_rpm[i] = start
        dt = max(0.0, t - seg.start)
        return seg.target + (start - seg.target) * math.exp(-dt / seg.tau_s)

    def rpm(self, t: float) -> float:
        """Engine speed at `t`, with the small unevenness of a real engine."""
        wobble = 12.0 * math.sin(2 * math.pi * t / 1.7 + self._phase[0]) + 8.0 * math.sin(
            2 * math.pi * t / 0.53 + self._phase[1]
        )
        return max(0.0, self._base_rpm(t) + wobble)

    def gases(self, t: float) -> GasMix:
        """What reaches the analyser's bench at `t` (air until the probe is in)."""
        ex = self.traits
        if self.probe_in_at is None or ex.idle is None or ex.high_idle is None:
            return AIR
        ts = t - PROBE_DELAY_S
        if ts < self.probe_in_at:
            return AIR
        span = ex.high_idle_rpm - ex.idle_rpm
        w = min(1.0, max(0.0, (self._base_rpm(ts) - ex.idle_rpm) / span))
        a, b = ex.idle, ex.high_idle
        return GasMix(*(x + (y - x) * w for x, y in zip(_tuple(a), _tuple(b), strict=True)))

    def smoke_k(self, t: float) -> float:
        """Light absorption coefficient in the opacimeter at `t`, m^-1."""
        if self.probe_in_at is None or t < self.probe_in_at:
            return 0.0
        k = self.traits.idle_k
        for start, peak in self._pulses:
            x = t - start - 0.3
            if x > 0:
                # A smoke puff peaking 0.6 s into the acceleration, then clearing.
                k = max(
                    k,
                    self.traits.idle_k
                    + (peak - self.traits.idle_k) * (x / 0.6) * math.exp(1 - x / 0.6),
                )
        return k


def _tuple(m: GasMix) -> tuple[float, ...]:
    return (m.co_pct, m.hc_ppm, m.co2_pct, m.o2_pct, m.no_ppm, m.lambda_)


__all__ = [
    "AIR",
    "EXHAUST_FAULTS",
    "Engine",
    "ExhaustTraits",
    "GasMix",
    "apply_exhaust_fault",
    "exhaust_fault_fits",
    "expected_exhaust_items",
    "make_exhaust",
    "opacity_pct",
]
