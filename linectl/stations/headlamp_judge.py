"""Headlamp judgement: tester readings into the items H1..H4 (lamps L, LI, RI, R).

Pure functions over `LampReading`s and `HeadlampLimits` (standards.md
"Headlamps"): the high-beam intensity of each lamp against its system's
limit (two or four lamps, the slow row below 70 km/h, new or periodic), the
four-lamp pair rule, and the beam position of both beams, which is always
recorded in the lamp's values and is part of the verdict only when the
station judges it (`beam_position="judge"`). A low-beam reading is never an
item of its own: it lives in the values of its lamp's item.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from linectl.items import LAMP_ITEMS, ItemResult, Verdict
from linectl.stations.limits import HeadlampLimits, HeightWindow, HorizontalWindow, IntensityRow
from linectl.stations.rounding import limit_value, reported
from linectl.vehicle import InspectionType, Vehicle

LAMPS = tuple(LAMP_ITEMS)  # L, LI, RI, R
TWO_LAMP_LAMPS = ("L", "R")
LEFT_LAMPS = ("L", "LI")
BEAMS = {"H": "high", "L": "low"}
SYMMETRIC_PAIRS = (("L", "R"), ("LI", "RI"))
BEAM_POSITION_MODES = ("record", "judge")
RATIO_DIGITS = 3  # cut-off / centre height as a fraction of H; 1 mm at H = 1000 mm


@dataclass(frozen=True)
class LampReading:
    """One `RES` of the headlamp tester (devices.md section 5)."""

    lamp: str  # L, LI, RI, R
    beam: str  # H high, L low
    intensity_cd: float
    h_mm: float  # beam centre / cut-off elbow at 10 m, > 0 to the right
    v_mm: float  # at 10 m, > 0 upward, relative to the lamp centre
    height_mm: float  # lamp centre above ground, H

    def __post_init__(self) -> None:
        if self.lamp not in LAMPS:
            raise ValueError(f"lamp {self.lamp!r} is not one of {', '.join(LAMPS)}")
        if self.beam not in BEAMS:
            raise ValueError(f"beam {self.beam!r} is not H (high) or L (low)")
        for name in ("intensity_cd", "h_mm", "v_mm", "height_mm"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"{name} must be a number, got {v!r}")
        if self.intensity_cd < 0:
            raise ValueError(f"intensity_cd must not be negative, got {self.intensity_cd}")
        if self.height_mm <= 0:
            raise ValueError(
                f"height_mm (lamp centre above ground) must be > 0, got {self.height_mm}"
            )


def intensity_row(vehicle: Vehicle, limits: HeadlampLimits) -> IntensityRow:
    """The slow row for a max design speed below 70 km/h (default), else the normal row."""
    if vehicle.max_design_speed_kmh < limits.slow_below_kmh:
        return limits.intensity_slow
    return limits.intensity_normal


def intensity_min_cd(
    vehicle: Vehicle, inspection_type: InspectionType, limits: HeadlampLimits
) -> float:
    """The high-beam intensity each lamp of this vehicle's system must reach, cd."""
    return intensity_row(vehicle, limits).of(vehicle.headlamp_system, inspection_type)


def _position(
    r: LampReading, prefix: str, window: HeightWindow, horizontal: HorizontalWindow
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """Values, limits and verdict of one beam's aim: the height H + v and the side h."""
    ratio = reported((r.height_mm + r.v_mm) / r.height_mm, RATIO_DIGITS)
    h = reported(r.h_mm, 0)
    ok = (
        window.min_ratio <= ratio <= window.max_ratio
        and -horizontal.left_mm <= h <= horizontal.right_mm
    )
    values = {
        f"{prefix}_h_mm": h,
        f"{prefix}_v_mm": reported(r.v_mm, 0),
        f"{prefix}_height_ratio": ratio,
        f"{prefix}_position_ok": ok,
    }
    lims = {
        f"{prefix}_height_ratio_min": limit_value(window.min_ratio),
        f"{prefix}_height_ratio_max": limit_value(window.max_ratio),
        f"{prefix}_h_left_mm": limit_value(horizontal.left_mm),
        f"{prefix}_h_right_mm": limit_value(horizontal.right_mm),
    }
    return values, lims, ok


def judge_headlamps(
    readings: list[LampReading],
    vehicle: Vehicle,
    inspection_type: InspectionType,
    limits: HeadlampLimits,
    beam_position: str = "record",
) -> list[ItemResult]:
    """One H item per lamp with a high-beam reading, in item order."""
    if beam_position not in BEAM_POSITION_MODES:
        raise ValueError(f"beam_position must be record or judge, got {beam_position!r}")
    allowed = LAMPS if vehicle.headlamp_system == 4 else TWO_LAMP_LAMPS
    by_key: dict[tuple[str, str], LampReading] = {}
    for r in readings:
        if r.lamp not in allowed:
            raise ValueError(
                f"lamp {r.lamp} on a {vehicle.headlamp_system}-lamp system "
                f"(lamps {', '.join(allowed)})"
            )
        if (r.lamp, r.beam) in by_key:
            raise ValueError(f"lamp {r.lamp} {BEAMS[r.beam]} beam read twice")
        by_key[(r.lamp, r.beam)] = r

    row = intensity_row(vehicle, limits)
    system_min = row.of(vehicle.headlamp_system, inspection_type)
    two_lamp_min = row.of(2, inspection_type)
    high = {lamp: r for (lamp, beam), r in by_key.items() if beam == "H"}
    # Four lamps: a symmetric pair that alone reaches the two-lamp limit lights the
    # road as well as a two-lamp system must, so the whole system passes.
    pair_passes = vehicle.headlamp_system == 4 and any(
        a in high
        and b in high
        and reported(high[a].intensity_cd, 0) >= two_lamp_min
        and reported(high[b].intensity_cd, 0) >= two_lamp_min
        for a, b in SYMMETRIC_PAIRS
    )
    low_window = limits.low_beam_m1 if vehicle.is_m1 else limits.low_beam_other
    high_window = limits.high_beam_m1 if vehicle.is_m1 else limits.high_beam_other

    items: list[ItemResult] = []
    for lamp in LAMPS:
        r = high.get(lamp)
        if r is None:
            continue  # no high beam read: no item (a low beam alone is never one)
        intensity = reported(r.intensity_cd, 0)
        intensity_ok = intensity >= system_min or pair_passes
        values: dict[str, Any] = {
            "intensity_cd": intensity,
            "height_mm": reported(r.height_mm, 0),
            "beam_position": beam_position,
        }
        item_limits: dict[str, Any] = {"intensity_cd": limit_value(system_min)}
        if pair_passes and intensity < system_min:
            values["passed_by_pair"] = True
        side = limits.high_beam_left_lamp if lamp in LEFT_LAMPS else limits.high_beam_right_lamp
        hv, hl, position_ok = _position(r, "high", high_window, side)
        values |= hv
        item_limits |= hl
        low = by_key.get((lamp, "L"))
        if low is not None:
            lv, ll, low_ok = _position(low, "low", low_window, limits.low_beam_horizontal)
            values |= {"low_intensity_cd": reported(low.intensity_cd, 0)} | lv
            if reported(low.height_mm, 0) != values["height_mm"]:
                values["low_height_mm"] = reported(low.height_mm, 0)
            item_limits |= ll
            position_ok = position_ok and low_ok
        ok = intensity_ok and (position_ok or beam_position == "record")
        items.append(
            ItemResult(LAMP_ITEMS[lamp], Verdict.PASS if ok else Verdict.FAIL, values, item_limits)
        )
    return items
