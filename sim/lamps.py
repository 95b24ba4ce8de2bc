"""Headlamps of a simulated vehicle: intensity and aim of each lamp, and their faults.

A vehicle has two lamps (L, R) or four (L, LI, RI, R). Each lamp has a
centre height above ground and, per beam, an intensity and an aim: where
the high beam's centre, or the low beam's cut-off elbow, falls on a screen
at 10 m (h > 0 to the right, v > 0 upward, relative to the lamp centre).
In a four-lamp system the inner lamps (LI, RI) have a high beam only
(standards.md, devices.md section 5). Healthy lamps are designed well inside
every limit of standards.md, for M1 and for other vehicles alike; a third
of four-lamp systems are built the way the pair rule exists for: outer
lamps below the four-lamp limit, the inner pair above the two-lamp limit,
so the system passes by its inner pair (`weak_outer`). The faults sit well
outside:
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
INNER_LAMPS = ("LI", "RI")  # high beam only
PAIRS = (("L", "R"), ("LI", "RI"))
WEAK_OUTER_SHARE = 1 / 3  # of four-lamp systems built to pass by their inner pair
WEAK_OUTER_OF_LIMIT = (0.55, 0.85)  # outer high beams, of the four-lamp periodic limit

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
    low: Beam | None  # None: a high-beam-only lamp (the inner lamps of four)

    def beam(self, which: str) -> Beam | None:
        return self.high if which == "H" else self.low


class HasLampFault(Protocol):
    kind: str
    lamp: str | None


def lamp_names(vehicle: Vehicle) -> tuple[str, ...]:
    return LAMPS_FOUR if vehicle.headlamp_system == 4 else LAMPS_TWO


def _row(vehicle: Vehicle) -> dict[int, tuple[float, float]]:
    return _INTENSITY["slow" if vehicle.max_design_speed_kmh < SLOW_BELOW_KMH else "normal"]


def _healthy_cd(vehicle: Vehicle, system: int) -> tuple[float, float]:
    """High-beam intensities that pass this system's limit in either column."""
    lowest_ok = _row(vehicle)[system][0] * (1 + MARGIN) * 1.08
    return lowest_ok, lowest_ok * 1.6


def make_lamps(
    vehicle: Vehicle, rng: random.Random, weak_outer: bool | None = None
) -> dict[str, Lamp]:
    """Healthy lamps: every limit of either column passed with room to spare, by
    each lamp or (`weak_outer`, four lamps; drawn when None) by the inner pair."""
    heavy = vehicle.vehicle_class not in ("M1", "N1")
    height = rng.uniform(900.0, 1100.0) if heavy else rng.uniform(600.0, 760.0)
    four = vehicle.headlamp_system == 4
    if weak_outer is None:
        weak_outer = four and rng.random() < WEAK_OUTER_SHARE
    if weak_outer and not four:
        raise ValueError("only a four-lamp system can pass by its inner pair")
    healthy = _healthy_cd(vehicle, 4 if four else 2)
    # The inner pair carries the system: above the two-lamp limit of either column.
    strong = _healthy_cd(vehicle, 2)
    weak = tuple(f * _row(vehicle)[4][1] for f in WEAK_OUTER_OF_LIMIT)
    lamps = {}
    for name in lamp_names(vehicle):
        h = height + rng.uniform(-5.0, 5.0)
        inner = four and name in INNER_LAMPS
        cd_range = (strong if inner else weak) if weak_outer else healthy
        high_cd = rng.uniform(*cd_range)
        # Cut-off at 0.73..0.77 H and centre at 0.87..0.93 H: inside the M1 and the
        # other-vehicle windows at once.
        high = Beam(high_cd, rng.uniform(-60.0, 110.0), (rng.uniform(0.87, 0.93) - 1) * h)
        low_cd, low_h, low_v = (
            rng.uniform(0.35, 0.6) * high_cd,
            rng.uniform(-60.0, 110.0),
            (rng.uniform(0.73, 0.77) - 1) * h,
        )
        low = None if inner else Beam(low_cd, low_h, low_v)
        lamps[name] = Lamp(name, h, high=high, low=low)
    return lamps


def passes_by_inner_pair(lamps: dict[str, Lamp], vehicle: Vehicle) -> bool:
    """The outer lamps are below the four-lamp limit: only the pair rule passes them."""
    lo = _row(vehicle)[4][1]
    return vehicle.headlamp_system == 4 and all(lamps[n].high.intensity_cd < lo for n in ("L", "R"))


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
            # The dim lamp's partner passes on its own (it may have been built weak,
            # to pass by the other pair), so the dim lamp fails alone.
            partner = next(n for n in next(p for p in PAIRS if lamp in p) if n != lamp)
            y = out[partner]
            if y.high.intensity_cd < _healthy_cd(vehicle, 4)[0]:
                cd = rng.uniform(*_healthy_cd(vehicle, 4))
                out[partner] = replace(y, high=replace(y.high, intensity_cd=cd))
    elif kind == "misaimed_lamp":
        way = rng.choice(("up", "down", "right", "left"))
        if way in MISAIM:
            dv = MISAIM[way] * x.height_mm
            out[lamp] = replace(
                x,
                high=replace(x.high, v_mm=x.high.v_mm + dv),
                low=replace(x.low, v_mm=x.low.v_mm + dv) if x.low else None,
            )
        else:
            dh = MISAIM_H_MM[way]
            out[lamp] = replace(
                x,
                high=replace(x.high, h_mm=x.high.h_mm + dh),
                low=replace(x.low, h_mm=x.low.h_mm + dh) if x.low else None,
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
    "INNER_LAMPS",
    "LAMP_FAULTS",
    "Beam",
    "Lamp",
    "LampSwitch",
    "apply_lamp_fault",
    "expected_lamp_items",
    "lamp_names",
    "make_lamps",
    "passes_by_inner_pair",
]
