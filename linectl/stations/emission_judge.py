"""Emission judgement: gas-analyser and opacimeter readings into the item EX.

Pure functions over readings and `EmissionLimits` (standards.md "Emissions"):
the rpm bands of the two-speed idle test, whether a phase is valid (enough
readings, every measured one inside the band) so the procedure knows to
repeat it, the phase means against limit set a or b, and the mean of the
three measured peak K values of a diesel's free acceleration. Electric
vehicles have no EX item; the caller does not ask.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from linectl.items import ItemResult, Verdict
from linectl.stations.limits import EmissionLimits
from linectl.stations.rounding import limit_value, reported
from linectl.vehicle import Fuel, Vehicle

CODE = "EX"
TWO_SPEED_IDLE_FUELS = (Fuel.PETROL, Fuel.HYBRID, Fuel.GAS)
FREE_ACCELERATION_FUELS = (Fuel.DIESEL,)

# PhaseResult reasons
TOO_FEW_READINGS = "too_few_readings"
RPM_OUT_OF_BAND = "rpm_out_of_band"
# EX not_judged reasons
INVALID_PHASE = "invalid_phase"  # a phase to repeat; values say which and why
NO_LAMBDA = "no_lambda"  # the analyser gave no lambda at high idle
TOO_FEW_PEAKS = "too_few_peaks"

# columns of GasReading.as_row() and the raw arrays, and the keys of PhaseResult.mean
READING_COLUMNS = ("rpm", "co_pct", "hc_ppm", "lambda", "co2_pct", "o2_pct", "no_ppm")
# reported precision of each gas, as the analysers resolve them (devices.md)
_DIGITS = {
    "rpm": 0,
    "co_pct": 2,
    "hc_ppm": 0,
    "lambda": 2,
    "co2_pct": 2,
    "o2_pct": 2,
    "no_ppm": 0,
}
K_DIGITS = 2  # the opacimeter resolves K to 0.01 m^-1


@dataclass(frozen=True)
class GasReading:
    """One reading of the gas analyser, taken once a second."""

    rpm: float
    co_pct: float
    hc_ppm: float
    lambda_: float | None = None
    co2_pct: float | None = None
    o2_pct: float | None = None
    no_ppm: float | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None and f.default is None:
                continue
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
                raise ValueError(f"{_name(f.name)} must be a number, got {v!r}")
            if v < 0:
                raise ValueError(f"{_name(f.name)} must not be negative, got {v!r}")
        if self.lambda_ == 0:
            # The analyser sends lambda 0 when it cannot compute one (as in air):
            # that is "no lambda", not a lambda of zero.
            object.__setattr__(self, "lambda_", None)

    def as_row(self) -> list[float]:
        """The reading in READING_COLUMNS order, NaN for what the analyser did not give."""
        return [
            math.nan if v is None else float(v)
            for v in (getattr(self, f.name) for f in fields(self))
        ]


def _name(field_name: str) -> str:
    return "lambda" if field_name == "lambda_" else field_name


@dataclass(frozen=True)
class PhaseResult:
    """One phase (high idle or idle) of a two-speed idle test.

    `mean` holds the mean of every quantity all measured readings carry (keys as
    in READING_COLUMNS), `n` how many readings went into it (0 when too few),
    `out_of_band` how many measured readings left the rpm band.
    """

    valid: bool
    reason: str | None
    mean: dict[str, float]
    n: int
    out_of_band: int = 0


def evaluate_phase(
    readings: list[GasReading], band: tuple[float, float], settle: int, measure: int
) -> PhaseResult:
    """Ignore the first `settle` readings, average the next `measure` ones.

    Not valid with fewer than settle + measure readings, or when any measured
    reading's rpm is outside `band` (inclusive): the procedure repeats the
    phase. Readings after the measured ones are not used.
    """
    if len(readings) < settle + measure:
        return PhaseResult(False, TOO_FEW_READINGS, {}, 0)
    measured = readings[settle : settle + measure]
    lo, hi = band
    out = sum(not lo <= r.rpm <= hi for r in measured)
    table = np.array([r.as_row() for r in measured], dtype=float)
    mean = {
        name: float(col.mean())
        for name, col in zip(READING_COLUMNS, table.T, strict=True)
        if not np.isnan(col).any()
    }
    if out:
        return PhaseResult(False, RPM_OUT_OF_BAND, mean, len(measured), out)
    return PhaseResult(True, None, mean, len(measured))


def high_idle_band(vehicle: Vehicle, limits: EmissionLimits) -> tuple[float, float]:
    """2500 +/- 200 rpm, or 1800 +/- 200 over 3500 kg gross (defaults)."""
    if vehicle.gross_mass_kg > limits.heavy_gross_mass_kg:
        rpm, tol = limits.heavy_high_idle_rpm, limits.heavy_high_idle_tolerance_rpm
    else:
        rpm, tol = limits.high_idle_rpm, limits.high_idle_tolerance_rpm
    return (rpm - tol, rpm + tol)


def idle_band(
    limits: EmissionLimits, override: tuple[float, float] | None = None
) -> tuple[float, float]:
    """The idle band: the site's override (config emission.idle_band_rpm) or the limits'."""
    if override is None:
        return (limits.idle_min_rpm, limits.idle_max_rpm)
    lo, hi = override
    if not 0 <= lo < hi:
        raise ValueError(f"idle band must be low < high rpm, got {override!r}")
    return (float(lo), float(hi))


_idle_band = idle_band  # judge_two_speed_idle's parameter of the same name hides it


def _check_limit_set(limit_set: str, known: Any) -> None:
    if limit_set not in known:
        raise ValueError(f"limit set {limit_set!r} is not one of {', '.join(known)}")


def _phase_values(prefix: str, phase: PhaseResult) -> dict[str, Any]:
    return {
        f"{prefix}_{name}": reported(phase.mean[name], _DIGITS[name])
        for name in READING_COLUMNS
        if name in phase.mean
    }


def judge_two_speed_idle(
    high_idle: list[GasReading],
    idle: list[GasReading],
    vehicle: Vehicle,
    limits: EmissionLimits,
    limit_set: str,
    idle_band: tuple[float, float] | None = None,
) -> ItemResult:
    """GB 18285 two-speed idle (petrol, hybrid, gas): item EX."""
    if vehicle.fuel not in TWO_SPEED_IDLE_FUELS:
        raise ValueError(f"two-speed idle is for petrol, hybrid and gas, not {vehicle.fuel}")
    _check_limit_set(limit_set, limits.two_speed_idle)
    lim = limits.two_speed_idle[limit_set]
    hi_band = high_idle_band(vehicle, limits)
    lo_band = _idle_band(limits, idle_band)
    settle, measure = limits.settle_readings, limits.measure_readings
    hi = evaluate_phase(high_idle, hi_band, settle, measure)
    lo = evaluate_phase(idle, lo_band, settle, measure)

    raw = {
        "high_idle": np.array([r.as_row() for r in high_idle], dtype=float).reshape(
            -1, len(READING_COLUMNS)
        ),
        "idle": np.array([r.as_row() for r in idle], dtype=float).reshape(-1, len(READING_COLUMNS)),
    }
    item_limits = {
        "high_idle_co_pct": limit_value(lim.high_idle_co_max_pct),
        "high_idle_hc_ppm": limit_value(lim.high_idle_hc_max_ppm),
        "high_idle_lambda_min": limit_value(lim.high_idle_lambda_min),
        "high_idle_lambda_max": limit_value(lim.high_idle_lambda_max),
        "idle_co_pct": limit_value(lim.idle_co_max_pct),
        "idle_hc_ppm": limit_value(lim.idle_hc_max_ppm),
        "high_idle_rpm_min": limit_value(hi_band[0]),
        "high_idle_rpm_max": limit_value(hi_band[1]),
        "idle_rpm_min": limit_value(lo_band[0]),
        "idle_rpm_max": limit_value(lo_band[1]),
    }
    values: dict[str, Any] = {
        "method": "two_speed_idle",
        "limit_set": limit_set,
        "high_idle_readings": len(high_idle),
        "idle_readings": len(idle),
    }
    values |= _phase_values("high_idle", hi) | _phase_values("idle", lo)

    bad = [(name, p) for name, p in (("high_idle", hi), ("idle", lo)) if not p.valid]
    if bad:
        for name, p in bad:
            values[f"{name}_phase"] = p.reason
            if p.out_of_band:
                values[f"{name}_out_of_band"] = p.out_of_band
        return ItemResult(
            CODE, Verdict.NOT_JUDGED, values, item_limits, reason=INVALID_PHASE, raw=raw
        )
    if "lambda" not in hi.mean:
        return ItemResult(CODE, Verdict.NOT_JUDGED, values, item_limits, reason=NO_LAMBDA, raw=raw)

    ok = (
        values["high_idle_co_pct"] <= lim.high_idle_co_max_pct
        and values["high_idle_hc_ppm"] <= lim.high_idle_hc_max_ppm
        and lim.high_idle_lambda_min <= values["high_idle_lambda"] <= lim.high_idle_lambda_max
        and values["idle_co_pct"] <= lim.idle_co_max_pct
        and values["idle_hc_ppm"] <= lim.idle_hc_max_ppm
    )
    return ItemResult(CODE, Verdict.PASS if ok else Verdict.FAIL, values, item_limits, raw=raw)


def judge_free_acceleration(
    peaks_k: list[float], limits: EmissionLimits, limit_set: str
) -> ItemResult:
    """GB 3847 free acceleration (diesel): item EX from the measured peak K values, m^-1."""
    _check_limit_set(limit_set, limits.k_max_per_m)
    needed = limits.measured_accelerations
    for k in peaks_k:
        if isinstance(k, bool) or not isinstance(k, numbers.Real) or not math.isfinite(k) or k < 0:
            raise ValueError(f"peak K must be a number >= 0, got {k!r}")
    if len(peaks_k) > needed:
        raise ValueError(
            f"{len(peaks_k)} peak K values: a result is the mean of exactly {needed} measured "
            "accelerations (purge accelerations are not measured)"
        )
    k_max = limits.k_max_per_m[limit_set]
    item_limits = {"k_per_m": limit_value(k_max)}
    values: dict[str, Any] = {"method": "free_acceleration", "limit_set": limit_set}
    values |= {f"peak{i}_k_per_m": reported(k, K_DIGITS) for i, k in enumerate(peaks_k, 1)}
    raw = {"peaks_k": np.array(peaks_k, dtype=float)}
    if len(peaks_k) < needed:
        return ItemResult(
            CODE, Verdict.NOT_JUDGED, values, item_limits, reason=TOO_FEW_PEAKS, raw=raw
        )
    k = reported(sum(float(p) for p in peaks_k) / needed, K_DIGITS)
    values["k_per_m"] = k
    return ItemResult(
        CODE, Verdict.PASS if k <= k_max else Verdict.FAIL, values, item_limits, raw=raw
    )
