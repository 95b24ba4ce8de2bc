"""Brake judgement: roller curves and axle loads into the items B1..B6, B0 and BT.

Pure functions over `BrakeCurve`s and `BrakeLimits` (standards.md "Brake"):
drag in the drag window, each wheel's max force after the brake phase starts,
the rise phase and the imbalance with its two branches, the axle rate against
the limit of the vehicle's group, the parking rate, the whole-vehicle rate.
Values are rounded to their reporting precision before they are compared
(linectl.stations.rounding), so the published numbers reproduce the verdict.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from linectl.items import ItemResult, Verdict, not_judged
from linectl.stations.curve import BrakeCurve
from linectl.stations.limits import AxleRateLimits, BrakeLimits
from linectl.stations.rounding import limit_value, reported
from linectl.vehicle import InspectionType, Vehicle

FORCE_UNIT_N = 10  # curve samples are in 10 N units (devices.md, standards.md)
PCT_DIGITS = 1  # rates, imbalance and drag are reported to 0.1 %

# not_judged reasons of this module, besides locked_wheel (standards.md)
CURVE_TOO_SHORT = "curve_too_short"
INVALID_LOAD = "invalid_load"
MISSING_AXLES = "missing_axles"
LOCKED_WHEEL = "locked_wheel"


def vehicle_group(vehicle: Vehicle, limits: BrakeLimits) -> str:
    """ "light" (M1 of any mass, others up to the group mass), "bus" or "heavy"."""
    if vehicle.is_m1 or vehicle.gross_mass_kg <= limits.group_gross_mass_kg:
        return "light"
    return "bus" if vehicle.is_bus else "heavy"


def axle_rate_limits(vehicle: Vehicle, limits: BrakeLimits) -> AxleRateLimits:
    group = vehicle_group(vehicle, limits)
    return {"light": limits.rate_light, "bus": limits.rate_bus, "heavy": limits.rate_heavy}[group]


def axle_rate_min_pct(axle: int, vehicle: Vehicle, limits: BrakeLimits) -> float:
    """The minimum rate of `axle` (1 = front) for this vehicle, %."""
    r = axle_rate_limits(vehicle, limits)
    return r.front_axle_min_pct if axle == 1 else r.other_axle_min_pct


@dataclass(frozen=True)
class RunForces:
    """What one run's curve gives, in N: drags and max forces of both wheels."""

    left_drag_n: float
    right_drag_n: float
    left_max_n: int
    right_max_n: int
    rise_diff_n: int  # max |left - right| over the rise phase


def run_forces(curve: BrakeCurve, limits: BrakeLimits) -> RunForces | None:
    """Drag, max forces and rise-phase difference; None if the curve is too short.

    Too short means no sample in the drag window or none at or after the brake
    phase start: then neither drag nor max force can be told.
    """
    t = curve.t_ms()
    drag = (t >= _ms(limits.drag_window_start_s)) & (t < _ms(limits.drag_window_end_s))
    phase = t >= _ms(limits.brake_phase_start_s)
    if not drag.any() or not phase.any():
        return None
    left = curve.left[phase]
    right = curve.right[phase]
    left_max, right_max = int(left.max()), int(right.max())
    # The larger wheel is the one with the larger maximum, left on a tie; the rise
    # phase runs to the first sample where it reaches that maximum, inclusive.
    larger = left if left_max >= right_max else right
    end = int(np.argmax(larger)) + 1
    diff = int(np.abs(left[:end] - right[:end]).max())
    return RunForces(
        left_drag_n=float(curve.left[drag].mean()) * FORCE_UNIT_N,
        right_drag_n=float(curve.right[drag].mean()) * FORCE_UNIT_N,
        left_max_n=left_max * FORCE_UNIT_N,
        right_max_n=right_max * FORCE_UNIT_N,
        rise_diff_n=diff * FORCE_UNIT_N,
    )


def judge_axle(
    axle: int,
    left_load_kg: float,
    right_load_kg: float,
    curve: BrakeCurve,
    vehicle: Vehicle,
    inspection_type: InspectionType,
    limits: BrakeLimits,
    left_locked: bool = False,
    right_locked: bool = False,
) -> ItemResult:
    """Judge one axle's service-brake run: item f"B{axle}"."""
    code = f"B{axle}"
    raw = {"curve": curve.as_array()}
    upstream = curve.to_upstream()
    values: dict[str, Any] = {
        "left_load_kg": _plain(left_load_kg),
        "right_load_kg": _plain(right_load_kg),
    }
    if left_locked:
        values["left_locked"] = True
    if right_locked:
        values["right_locked"] = True

    if not _good_load(left_load_kg) or not _good_load(right_load_kg):
        # A wheel load of 0 (or nonsense) means the scale did not weigh this axle:
        # no percentage of it can be trusted.
        return _untrusted(code, INVALID_LOAD, values, raw, upstream)
    forces = run_forces(curve, limits)
    if forces is None:
        values["duration_s"] = round(len(curve) * curve.period_ms / 1000.0, 3)
        return _untrusted(code, CURVE_TOO_SHORT, values, raw, upstream)

    g = limits.g_m_s2
    axle_load_n = (left_load_kg + right_load_kg) * g
    rate = reported((forces.left_max_n + forces.right_max_n) / axle_load_n * 100, PCT_DIGITS)
    larger_max = max(forces.left_max_n, forces.right_max_n)
    if rate >= limits.imbalance_branch_rate_pct:
        branch = "of_max_force"
        imbalance = reported(forces.rise_diff_n / larger_max * 100, PCT_DIGITS)
    else:
        branch = "of_axle_load"
        imbalance = reported(forces.rise_diff_n / axle_load_n * 100, PCT_DIGITS)
    left_drag_pct = reported(forces.left_drag_n / (left_load_kg * g) * 100, PCT_DIGITS)
    right_drag_pct = reported(forces.right_drag_n / (right_load_kg * g) * 100, PCT_DIGITS)

    column = limits.imbalance.of(inspection_type)
    if axle == 1:
        imbalance_max = column.front_axle_max_pct
    elif branch == "of_max_force":
        imbalance_max = column.other_axle_max_pct
    else:
        imbalance_max = column.other_axle_low_rate_max_pct
    rate_min = axle_rate_min_pct(axle, vehicle, limits)

    values.update(
        left_max_n=forces.left_max_n,
        right_max_n=forces.right_max_n,
        left_drag_n=reported(forces.left_drag_n, 0),
        right_drag_n=reported(forces.right_drag_n, 0),
        axle_rate_pct=rate,
        imbalance_pct=imbalance,
        imbalance_diff_n=forces.rise_diff_n,
        imbalance_branch=branch,
        left_drag_pct=left_drag_pct,
        right_drag_pct=right_drag_pct,
    )
    item_limits = {
        "axle_rate_pct": limit_value(rate_min),
        "imbalance_pct": limit_value(imbalance_max),
        "drag_pct": limit_value(limits.drag_max_pct),
    }
    if (left_locked or right_locked) and rate < rate_min:
        # The wheel slipped before the axle proved its rate, so the rollers cannot
        # show what the brake can do: the station retests on the road or a plate.
        # A lock after the rate was reached changes nothing (standards.md).
        return ItemResult(
            code,
            Verdict.NOT_JUDGED,
            values,
            item_limits,
            reason=LOCKED_WHEEL,
            raw=raw,
            curve=upstream,
        )
    ok = (
        rate >= rate_min
        and imbalance <= imbalance_max
        and left_drag_pct <= limits.drag_max_pct
        and right_drag_pct <= limits.drag_max_pct
    )
    return ItemResult(
        code, Verdict.PASS if ok else Verdict.FAIL, values, item_limits, raw=raw, curve=upstream
    )


def parking_min_pct(vehicle: Vehicle, limits: BrakeLimits) -> float:
    """20 %, or the reduced 15 % when gross mass < 1.2 x curb mass (defaults)."""
    if vehicle.gross_mass_kg < limits.parking_reduced_below_gross_to_curb * vehicle.curb_mass_kg:
        return limits.parking_reduced_min_pct
    return limits.parking_min_pct


def judge_parking(
    runs: list[tuple[int, BrakeCurve, bool]],
    total_load_kg: float,
    vehicle: Vehicle,
    limits: BrakeLimits,
) -> ItemResult:
    """Judge the parking brake, item B0, from one run per parking axle.

    `runs` holds (axle, curve, locked) with locked true when either wheel slipped.
    `total_load_kg` is the vehicle weight: the sum of every axle's static load.
    """
    code = "B0"
    if not runs:
        raise ValueError("judge_parking needs at least one parking run")
    axles = [a for a, _, _ in runs]
    stray = sorted(set(axles) - set(vehicle.parking_axles))
    if stray:
        raise ValueError(
            f"parking run on axle(s) {stray}, not a parking axle of this vehicle "
            f"{list(vehicle.parking_axles)}"
        )
    if len(set(axles)) != len(axles):
        raise ValueError(f"more than one parking run on one axle: {axles}")

    single = len(runs) == 1
    raw = {("curve" if single else f"curve_axle{a}"): c.as_array() for a, c, _ in runs}
    # One run fits the upstream curve field; several runs have no single P@L#R
    # string, so they stay in raw only.
    upstream = runs[0][1].to_upstream() if single else None
    values: dict[str, Any] = {"vehicle_load_kg": _plain(total_load_kg)}
    min_pct = parking_min_pct(vehicle, limits)
    item_limits = {"parking_rate_pct": limit_value(min_pct)}

    if not _good_load(total_load_kg):
        return _untrusted(code, INVALID_LOAD, values, raw, upstream)
    missing = sorted(set(vehicle.parking_axles) - set(axles))
    if missing:
        values["missing_axles"] = missing
        return _untrusted(code, MISSING_AXLES, values, raw, upstream)

    total_n = 0
    locked = False
    for axle, curve, run_locked in sorted(runs, key=lambda r: r[0]):
        forces = run_forces(curve, limits)
        if forces is None:
            values[f"axle{axle}_duration_s"] = round(len(curve) * curve.period_ms / 1000.0, 3)
            return _untrusted(code, CURVE_TOO_SHORT, values, raw, upstream)
        values[f"axle{axle}_left_max_n"] = forces.left_max_n
        values[f"axle{axle}_right_max_n"] = forces.right_max_n
        if run_locked:
            values[f"axle{axle}_locked"] = True
        total_n += forces.left_max_n + forces.right_max_n
        locked = locked or run_locked
    rate = reported(total_n / (total_load_kg * limits.g_m_s2) * 100, PCT_DIGITS)
    values.update(sum_max_n=total_n, parking_rate_pct=rate)
    if rate >= min_pct:
        verdict = Verdict.PASS
    elif locked:
        # Standards.md is silent on a lock during the parking run. The same reasoning
        # as on a service run: a wheel that slipped before the limit was reached
        # hides what the parking brake could hold, so it is not judged, not failed.
        return ItemResult(
            code,
            Verdict.NOT_JUDGED,
            values,
            item_limits,
            reason=LOCKED_WHEEL,
            raw=raw,
            curve=upstream,
        )
    else:
        verdict = Verdict.FAIL
    return ItemResult(code, verdict, values, item_limits, raw=raw, curve=upstream)


_AXLE_CODE_VALUES = ("left_load_kg", "right_load_kg", "left_max_n", "right_max_n")


def judge_total(
    axles: list[ItemResult], limits: BrakeLimits, vehicle: Vehicle | None = None
) -> ItemResult:
    """Judge the whole vehicle, item BT, from the axle items' values.

    BT = sum of every wheel's max force / sum of static axle loads. An axle item
    that is not judged for a reason that makes its forces untrustworthy (device
    fault, overrun, short curve, bad load, aborted, ...) leaves BT not judged
    with that reason. An axle not judged for `locked_wheel` has trustworthy but
    low forces (the wheel slipped before its brake gave all): BT is judged pass
    when it passes even so, and otherwise not judged `locked_wheel`, never
    failed. With `vehicle`, every axle 1..vehicle.axles must be there, else BT
    is not judged `missing_axles`.
    """
    code = "BT"
    if not axles:
        raise ValueError("judge_total needs the axle items")
    item_limits = {"vehicle_rate_pct": limit_value(limits.vehicle_min_pct)}
    codes = [a.code for a in axles]
    if vehicle is not None:
        missing = [f"B{n}" for n in range(1, vehicle.axles + 1) if f"B{n}" not in codes]
        if missing:
            result = not_judged(code, MISSING_AXLES, missing_axles=missing)
            result.limits = item_limits
            return result

    locked: list[str] = []
    for a in axles:
        trusted_values = all(k in a.values for k in _AXLE_CODE_VALUES)
        if a.verdict is Verdict.NOT_JUDGED and (a.reason != LOCKED_WHEEL or not trusted_values):
            result = not_judged(code, a.reason or "not_judged", untrusted_axle=a.code)
            result.limits = item_limits
            return result
        if a.reason == LOCKED_WHEEL:
            locked.append(a.code)

    load_kg = sum(float(a.values["left_load_kg"]) + float(a.values["right_load_kg"]) for a in axles)
    force_n = sum(int(a.values["left_max_n"]) + int(a.values["right_max_n"]) for a in axles)
    rate = reported(force_n / (load_kg * limits.g_m_s2) * 100, PCT_DIGITS)
    values: dict[str, Any] = {
        "vehicle_load_kg": reported(load_kg, 1),
        "sum_max_n": force_n,
        "vehicle_rate_pct": rate,
    }
    if locked:
        values["locked_axles"] = locked
    if rate >= limits.vehicle_min_pct:
        return ItemResult(code, Verdict.PASS, values, item_limits)
    if locked:
        return ItemResult(code, Verdict.NOT_JUDGED, values, item_limits, reason=LOCKED_WHEEL)
    return ItemResult(code, Verdict.FAIL, values, item_limits)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _good_load(kg: float) -> bool:
    return (
        isinstance(kg, numbers.Real) and not isinstance(kg, bool) and math.isfinite(kg) and kg > 0
    )


def _plain(x: float) -> float | int:
    """A load as JSON takes it (numpy scalars from a driver included)."""
    return int(x) if isinstance(x, numbers.Integral) else float(x)


def _untrusted(
    code: str,
    reason: str,
    values: dict[str, Any],
    raw: dict[str, np.ndarray],
    upstream: str | None,
) -> ItemResult:
    return ItemResult(code, Verdict.NOT_JUDGED, values, reason=reason, raw=raw, curve=upstream)
