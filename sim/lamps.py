"""Headlamps of a simulated vehicle: intensity and aim of each lamp, and their faults.

A vehicle has two lamps (L, R) or four (L, LI, RI, R). Each lamp has a
centre height above ground and, per beam, an intensity and an aim: where
the high beam's centre, or the low beam's cut-off elbow, falls on a screen
at 10 m (h > 0 to the right, v > 0 upward, relative to the lamp centre).
Healthy lamps are designed well inside every limit of standards.md, for M1
and for other vehicles alike; the faults sit well outside:
- `dim_lamp`: one lamp's high beam far below every intensity limit. In a
  four-lamp system the pair without the dim lamp is kept between the
  four-lamp and the two-lamp limit (periodic column), so the pair rule
  cannot pass the system and the dim lamp's item fails.
- `misaimed_lamp`: one lamp aimed up, down, right or left by far more than
  the windows allow, both beams; it fails only where beam position is judged.
`expected_lamp_items()` says what the faults must fail. The design points
mirror the intensity table of standards.md here, as sim/vehicles.py does for
brakes: they only keep designs clear of the limits.

`LampSwitch` is the lamps on the station: which beam the driver has on.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from linectl.items import LAMP_ITEMS
from linectl.vehicle import Vehicle

LAMP_FAULTS = ("dim_lamp", "misaimed_lamp")
LAMPS_TWO = ("L", "R")
LAMPS_FOUR = ("L", "LI", "RI", "R")
PAIRS = (("L", "R"), ("LI", "RI"))

# standards.md intensity table, cd: row -> system -> (new, periodic)
_INTENSITY = {
    "normal": {2: (18000.0, 15000.0), 4: (15000.0, 12000.0)},
    "slow": {2: (10000.0, 8000.0), 4: (8000.0, 6000.0)},
}
SLOW_BELOW_KMH = 70
MARGIN = 0.06  # designs stay this fraction clear of a limit

DIM_CD = (2500.0, 4500.0)  # below the lowest limit of the table (6000 cd)
MISAIM = {"up": 0.20, "down": -0.25}  # of the lamp height H, at 10 m
MISAIM_H_MM = {"right": 600.0, "left": -500.0}


@dataclass(frozen=True)
class Beam:
    intensity_cd: float
    h_mm: float
    v_mm: float


@dataclass(frozen=True)
class Lamp:
    name: str  # L, LI, RI, R
    height_mm: float
    high: Beam
    low: Beam

    def beam(self, which: str) -> Beam:
        return self.high if which == "H" else self.low


class HasLampFault(Protocol):
    kind: str
    lamp: str | None


def lamp_names(vehicle: Vehicle) -> tuple[str, ...]:
    return LAMPS_FOUR if vehicle.headlamp_system == 4 else LAMPS_TWO


def _row(vehicle: Vehicle) -> dict[int, tuple[float, float]]:
    return _INTENSITY["slow" if vehicle.max_design_speed_kmh < SLOW_BELOW_KMH else "normal"]


def make_lamps(vehicle: Vehicle, rng: random.Random) -> dict[str, Lamp]:
    """Healthy lamps: every limit of either column passed with room to spare."""
    heavy = vehicle.vehicle_class not in ("M1", "N1")
    height = rng.uniform(900.0, 1100.0) if heavy else rng.uniform(600.0, 760.0)
    system = 4 if vehicle.headlamp_system == 4 else 2
    lowest_ok = _row(vehicle)[system][0] * (1 + MARGIN) * 1.08
    lamps = {}
    for name in lamp_names(vehicle):
        h = height + rng.uniform(-5.0, 5.0)
        high_cd = rng.uniform(lowest_ok, lowest_ok * 1.6)
        # Cut-off at 0.73..0.77 H and centre at 0.87..0.93 H: inside the M1 and the
        # other-vehicle windows at once.
        lamps[name] = Lamp(
            name,
            h,
            high=Beam(high_cd, rng.uniform(-60.0, 110.0), (rng.uniform(0.87, 0.93) - 1) * h),
            low=Beam(
                rng.uniform(0.35, 0.6) * high_cd,
                rng.uniform(-60.0, 110.0),
                (rng.uniform(0.73, 0.77) - 1) * h,
            ),
        )
    return lamps


def apply_lamp_fault(
    lamps: dict[str, Lamp], vehicle: Vehicle, kind: str, lamp: str, rng: random.Random
) -> dict[str, Lamp]:
    """The lamps with `kind` built into `lamp`."""
    if lamp not in lamps:
        raise ValueError(f"the vehicle has no lamp {lamp} (lamps {', '.join(lamps)})")
    out = dict(lamps)
    x = lamps[lamp]
    if kind == "dim_lamp":
        out[lamp] = replace(x, high=replace(x.high, intensity_cd=rng.uniform(*DIM_CD)))
        if vehicle.headlamp_system == 4:
            row = _row(vehicle)
            lo, hi = row[4][1] * (1 + MARGIN), row[2][1] * (1 - MARGIN)
            other = next(p for p in PAIRS if lamp not in p)
            for name in other:
                y = out[name]
                out[name] = replace(y, high=replace(y.high, intensity_cd=rng.uniform(lo, hi)))
    elif kind == "misaimed_lamp":
        way = rng.choice(("up", "down", "right", "left"))
        if way in MISAIM:
            dv = MISAIM[way] * x.height_mm
            out[lamp] = replace(
                x,
                high=replace(x.high, v_mm=x.high.v_mm + dv),
                low=replace(x.low, v_mm=x.low.v_mm + dv),
            )
        else:
            dh = MISAIM_H_MM[way]
            out[lamp] = replace(
                x,
                high=replace(x.high, h_mm=x.high.h_mm + dh),
                low=replace(x.low, h_mm=x.low.h_mm + dh),
            )
    else:
        raise ValueError(f"unknown lamp fault {kind!r}")
    return out


def expected_lamp_items(
    vehicle: Vehicle,
    faults: Iterable[HasLampFault],
    inspection_type: str = "periodic",
    beam_position: str = "record",
) -> dict[str, str]:
    """Items the lamp faults must fail. A dim lamp in a four-lamp system is designed
    for the periodic column; in the new column the other pair fails as well."""
    out: dict[str, str] = {}
    for f in faults:
        if f.kind == "dim_lamp" and f.lamp:
            out[LAMP_ITEMS[f.lamp]] = "fail"
            if vehicle.headlamp_system == 4 and inspection_type == "new":
                for name in next(p for p in PAIRS if f.lamp not in p):
                    out[LAMP_ITEMS[name]] = "fail"
        elif f.kind == "misaimed_lamp" and f.lamp and beam_position == "judge":
            out[LAMP_ITEMS[f.lamp]] = "fail"
    return out


class LampSwitch:
    """The vehicle's lamps on the headlamp station, and which beam the driver has on
    ("H", "L" or None for off) since when, so the tester sees what was lit at the
    moment its head found the lamp."""

    def __init__(self, lamps: dict[str, Lamp]) -> None:
        self.lamps = lamps
        self._history: list[tuple[float, str | None]] = [(float("-inf"), None)]

    @property
    def beam(self) -> str | None:
        return self._history[-1][1]

    def lamp(self, name: str) -> Lamp | None:
        return self.lamps.get(name)

    def switch(self, beam: str | None, t: float) -> None:
        self._history.append((t, beam))

    def beam_at(self, t: float) -> str | None:
        for since, beam in reversed(self._history):
            if since <= t:
                return beam
        return None


__all__ = [
    "LAMP_FAULTS",
    "Beam",
    "Lamp",
    "LampSwitch",
    "apply_lamp_fault",
    "expected_lamp_items",
    "lamp_names",
    "make_lamps",
]
