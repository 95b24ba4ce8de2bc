"""What the report calls each item, value, limit, reason and verdict, and with which unit.

The names of the published result document (mqtt.md) are the keys; the words
are English msgids for the catalogue (linectl/locale), translated when the
report is rendered. Each value that a limit applies to says which limit key
it is compared with, how (at least, at most, a range, or a side-to-side
window) and in which table of the limits files that limit lives, so the
report prints the standard the limits data names. A key this module does not
know is still printed, under its own name: a report never hides a value.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from linectl.i18n import N_
from linectl.items import ITEM_LAMPS


@dataclass(frozen=True)
class Msg:
    """A catalogue msgid and the %-arguments it is formatted with once translated."""

    msgid: str
    args: Mapping[str, Any] = field(default_factory=dict)


Text = Msg | str  # a str is shown as it is (a plate, a device id, a number)

LimitKind = Literal["min", "max", "range", "sides"]


@dataclass(frozen=True)
class LimitSpec:
    kind: LimitKind
    keys: tuple[str, ...]  # min/max: (key,); range: (min, max); sides: (left, right)
    table: str  # limits table of the source: "brake.rate", "emission.two_speed_idle.{set}"


@dataclass(frozen=True)
class FieldSpec:
    pattern: str  # a value key, or a regular expression with one group (axle{n}_...)
    label: str  # msgid; %(n)s is the group of the pattern
    unit: str | None = None  # msgid
    limit: LimitSpec | None = None
    group: str | None = None  # msgid of the heading the row sits under


# -- items -----------------------------------------------------------------------

VERDICT_WORDS = {
    "pass": N_("Pass"),
    "fail": N_("Fail"),
    "not_judged": N_("Not judged"),
    "incomplete": N_("Incomplete"),
    "pending": N_("Pending"),
}
# A verdict must read without colour: each has its own symbol.
VERDICT_SYMBOLS = {
    "pass": "✓",
    "fail": "✗",
    "not_judged": "?",
    "incomplete": "?",
    "pending": "…",
}

FUELS = {
    "petrol": N_("Petrol"),
    "diesel": N_("Diesel"),
    "electric": N_("Electric"),
    "hybrid": N_("Hybrid"),
    "gas": N_("Gas"),
}
INSPECTION_TYPES = {
    "new": N_("Registration inspection (new vehicle)"),
    "periodic": N_("Periodic inspection"),
}
STATES = {
    "registered": N_("Registered"),
    "queued": N_("Queued"),
    "in_progress": N_("In progress"),
    "completed": N_("Completed"),
    "aborted": N_("Aborted"),
}

_LAMP_NAMES_TWO = {"L": N_("Left headlamp"), "R": N_("Right headlamp")}
_LAMP_NAMES_FOUR = {
    "L": N_("Left outer headlamp"),
    "LI": N_("Left inner headlamp"),
    "RI": N_("Right inner headlamp"),
    "R": N_("Right outer headlamp"),
}
EMISSION_METHODS = {
    "two_speed_idle": N_("Exhaust emissions, two-speed idle"),
    "free_acceleration": N_("Exhaust smoke, free acceleration"),
}


def item_name(code: str, *, headlamp_system: int = 2, method: str | None = None) -> Msg:
    """The item's name as printed: "Axle 1 service brake", "Parking brake", ..."""
    if re.fullmatch(r"B[1-9]", code):
        return Msg(N_("Axle %(n)s service brake"), {"n": int(code[1:])})
    if code == "B0":
        return Msg(N_("Parking brake"))
    if code == "BT":
        return Msg(N_("Whole-vehicle service brake"))
    if code in ITEM_LAMPS:
        names = _LAMP_NAMES_FOUR if headlamp_system == 4 else _LAMP_NAMES_TWO
        lamp = ITEM_LAMPS[code]
        return Msg(names.get(lamp, _LAMP_NAMES_FOUR[lamp]))
    if code == "EX":
        return Msg(EMISSION_METHODS.get(method or "", N_("Exhaust emissions")))
    return Msg(code)


# -- why an item was not judged -------------------------------------------------------

REASONS = {
    "locked_wheel": N_(
        "a wheel locked before the axle reached its limit: the rate cannot be proven on rollers"
    ),
    "overrun": N_("the brake tester's buffer overran: samples were lost"),
    "guide_late": N_("the APPLY prompt reached the display too late"),
    "device_fault": N_("device fault"),
    "invalid_load": N_("the axle scale gave no valid load"),
    "curve_too_short": N_("the brake curve ended before the braking phase"),
    "missing_axles": N_("a parking axle was not measured"),
    "invalid_phase": N_("an idle phase was not valid (too few readings or rpm out of band)"),
    "no_lambda": N_("the analyser gave no lambda at high idle"),
    "too_few_peaks": N_("fewer than three measured accelerations"),
    "too_few_readings": N_("too few readings"),
    "rpm_out_of_band": N_("engine speed left its band"),
    "garbled_data": N_("garbled data on the instrument's line"),
    "no_lamp_found": N_("the headlamp tester found no lamp"),
    "vehicle_not_in_position": N_("the vehicle was not in position"),
    "device_busy": N_("the instrument was busy"),
    "no_measurement": N_("the instrument gave no measurement"),
    "not_measured": N_("not measured"),
    "not_tested": N_("not tested"),
    "no_exhaust": N_("this vehicle has no exhaust item"),
    "aborted": N_("the inspection was aborted"),
    "not_judged": N_("an axle it depends on was not judged"),
}


def reason_text(reason: str | None) -> Text | None:
    """A stored reason ("device_fault: no answer") as printed: the known part
    translated, any detail after the colon kept as it is."""
    if not reason:
        return None
    code, sep, detail = reason.partition(":")
    known = REASONS.get(code.strip())
    if known is None:
        return reason
    if sep and detail.strip():
        return Msg(N_("%(reason)s (%(detail)s)"), {"reason": Msg(known), "detail": detail.strip()})
    return Msg(known)


# -- values ------------------------------------------------------------------------------

ENUM_VALUES = {
    "of_max_force": N_("of the larger maximum"),
    "of_axle_load": N_("of the axle load"),
    "two_speed_idle": N_("two-speed idle"),
    "free_acceleration": N_("free acceleration"),
    "record": N_("recorded, not judged"),
    "judge": N_("judged with the intensity"),
    "too_few_readings": N_("too few readings"),
    "rpm_out_of_band": N_("engine speed left its band"),
}

_PCT, _N, _KG, _S, _MM = N_("%"), N_("N"), N_("kg"), N_("s"), N_("mm")

_RATE = "brake.rate"
_BRAKE_FIELDS = (
    FieldSpec("left_load_kg", N_("Left wheel load"), _KG),
    FieldSpec("right_load_kg", N_("Right wheel load"), _KG),
    FieldSpec("left_max_n", N_("Left wheel maximum braking force"), _N),
    FieldSpec("right_max_n", N_("Right wheel maximum braking force"), _N),
    FieldSpec(
        "axle_rate_pct",
        N_("Axle braking rate"),
        _PCT,
        LimitSpec("min", ("axle_rate_pct",), _RATE),
    ),
    FieldSpec(
        "imbalance_pct",
        N_("Left-right imbalance"),
        _PCT,
        LimitSpec("max", ("imbalance_pct",), "brake.imbalance"),
    ),
    FieldSpec("imbalance_branch", N_("Imbalance taken")),
    FieldSpec("imbalance_diff_n", N_("Largest difference while rising"), _N),
    FieldSpec("left_drag_n", N_("Left wheel drag force"), _N),
    FieldSpec("right_drag_n", N_("Right wheel drag force"), _N),
    FieldSpec(
        "left_drag_pct",
        N_("Left wheel drag / wheel load"),
        _PCT,
        LimitSpec("max", ("drag_pct",), "brake.drag"),
    ),
    FieldSpec(
        "right_drag_pct",
        N_("Right wheel drag / wheel load"),
        _PCT,
        LimitSpec("max", ("drag_pct",), "brake.drag"),
    ),
    FieldSpec("left_locked", N_("Left wheel locked"), None),
    FieldSpec("right_locked", N_("Right wheel locked"), None),
    FieldSpec("apply_s", N_("APPLY prompt shown at"), _S),
    FieldSpec("duration_s", N_("Length of the brake curve"), _S),
    FieldSpec("vehicle_load_kg", N_("Vehicle weight (sum of axle loads)"), _KG),
    FieldSpec(r"axle(\d+)_left_max_n", N_("Axle %(n)s left wheel maximum force"), _N),
    FieldSpec(r"axle(\d+)_right_max_n", N_("Axle %(n)s right wheel maximum force"), _N),
    FieldSpec(r"axle(\d+)_locked", N_("Axle %(n)s wheel locked"), None),
    FieldSpec(r"axle(\d+)_apply_s", N_("Axle %(n)s APPLY prompt shown at"), _S),
    FieldSpec(r"axle(\d+)_duration_s", N_("Axle %(n)s length of the brake curve"), _S),
    FieldSpec("sum_max_n", N_("Sum of maximum braking forces"), _N),
    FieldSpec(
        "parking_rate_pct",
        N_("Parking braking rate"),
        _PCT,
        LimitSpec("min", ("parking_rate_pct",), "brake.parking"),
    ),
    FieldSpec(
        "vehicle_rate_pct",
        N_("Whole-vehicle braking rate"),
        _PCT,
        LimitSpec("min", ("vehicle_rate_pct",), _RATE),
    ),
    FieldSpec("missing_axles", N_("Parking axles not measured")),
    FieldSpec("locked_axles", N_("Axles with a locked wheel")),
    FieldSpec("untrusted_axle", N_("Axle not judged")),
)

_INTENSITY = "headlamp.intensity"
_HIGH, _LOW = N_("High beam"), N_("Low beam")


def _beam(prefix: str, group: str, table: str) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec(
            f"{prefix}_h_mm",
            N_("Horizontal offset at 10 m (- left, + right)"),
            _MM,
            LimitSpec("sides", (f"{prefix}_h_left_mm", f"{prefix}_h_right_mm"), table),
            group,
        ),
        FieldSpec(f"{prefix}_v_mm", N_("Vertical offset at 10 m"), _MM, None, group),
        FieldSpec(
            f"{prefix}_height_ratio",
            N_("Beam height at 10 m, of the lamp height (H+v)/H"),
            None,
            LimitSpec(
                "range",
                (f"{prefix}_height_ratio_min", f"{prefix}_height_ratio_max"),
                table,
            ),
            group,
        ),
        FieldSpec(f"{prefix}_position_ok", N_("Aim within its window"), None, None, group),
    )


_HEADLAMP_FIELDS = (
    FieldSpec(
        "intensity_cd",
        N_("High-beam intensity"),
        N_("cd"),
        LimitSpec("min", ("intensity_cd",), _INTENSITY),
    ),
    FieldSpec("passed_by_pair", N_("Passed with its symmetric pair")),
    FieldSpec("height_mm", N_("Lamp-centre height H"), _MM),
    FieldSpec("beam_position", N_("How the beam aim counts")),
    FieldSpec("lamp", N_("Lamp")),
    *_beam("high", _HIGH, "headlamp.beam_position.high_beam"),
    FieldSpec("low_intensity_cd", N_("Low-beam intensity"), N_("cd"), None, _LOW),
    FieldSpec("low_height_mm", N_("Lamp-centre height H"), _MM, None, _LOW),
    *_beam("low", _LOW, "headlamp.beam_position.low_beam"),
)

_TSI = "emission.two_speed_idle.{set}"
_RPM = N_("r/min")


def _phase(prefix: str, group: str) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec(
            f"{prefix}_rpm",
            N_("Engine speed, mean"),
            _RPM,
            LimitSpec("range", (f"{prefix}_rpm_min", f"{prefix}_rpm_max"), _TSI),
            group,
        ),
        FieldSpec(
            f"{prefix}_co_pct",
            N_("CO"),
            N_("% vol"),
            LimitSpec("max", (f"{prefix}_co_pct",), _TSI),
            group,
        ),
        FieldSpec(
            f"{prefix}_hc_ppm",
            N_("HC"),
            N_("ppm"),
            LimitSpec("max", (f"{prefix}_hc_ppm",), _TSI),
            group,
        ),
        FieldSpec(
            f"{prefix}_lambda",
            N_("Excess air ratio λ"),
            None,
            LimitSpec("range", (f"{prefix}_lambda_min", f"{prefix}_lambda_max"), _TSI),
            group,
        ),
        FieldSpec(f"{prefix}_co2_pct", N_("CO₂"), N_("% vol"), None, group),
        FieldSpec(f"{prefix}_o2_pct", N_("O₂"), N_("% vol"), None, group),
        FieldSpec(f"{prefix}_no_ppm", N_("NO"), N_("ppm"), None, group),
        FieldSpec(f"{prefix}_readings", N_("Readings taken"), None, None, group),
        FieldSpec(f"{prefix}_phase", N_("Phase not valid"), None, None, group),
        FieldSpec(
            f"{prefix}_out_of_band", N_("Measured readings out of the band"), None, None, group
        ),
    )


_FA = "emission.free_acceleration.{set}"
_K = N_("m⁻¹")
_EMISSION_FIELDS = (
    FieldSpec("method", N_("Method")),
    FieldSpec("limit_set", N_("Limit set")),
    *_phase("high_idle", N_("High idle")),
    *_phase("idle", N_("Idle")),
    FieldSpec(r"peak(\d+)_k_per_m", N_("Peak %(n)s, light absorption coefficient"), _K),
    FieldSpec(
        "k_per_m",
        N_("Light absorption coefficient k, mean of the peaks"),
        _K,
        LimitSpec("max", ("k_per_m",), _FA),
    ),
)


def fields_of(code: str) -> tuple[FieldSpec, ...]:
    if code.startswith("B"):
        return _BRAKE_FIELDS
    if code.startswith("H"):
        return _HEADLAMP_FIELDS
    if code == "EX":
        return _EMISSION_FIELDS
    return ()


def match(code: str, key: str) -> tuple[int, FieldSpec, dict[str, Any]] | None:
    """The spec of value `key` of item `code`, its place in the item's order, and
    the arguments its label takes; None when the key is unknown."""
    for i, spec in enumerate(fields_of(code)):
        if spec.pattern == key:
            return i, spec, {}
        m = re.fullmatch(spec.pattern, key) if "(" in spec.pattern else None
        if m:
            return i, spec, {"n": int(m.group(1))}
    return None
