"""`linectl judge`: re-judge one measurement document offline with the current limits.

This module owns the measurement document of standards.md ("The linectl judge
contract"): its validation, field by field, and its judgement through the
same functions the station procedures call (linectl.stations.*_judge). An
invalid document is refused with `InvalidField` naming the field (a dotted
path such as `brake.axles[1].curve`); the command prints that as one line on
stderr and exits 2. Only the sections present are judged.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from linectl.cli import CliError
from linectl.config import DEFAULT_LIMITS_DIR
from linectl.items import ALL_ITEMS, ItemResult, inspection_verdict, not_judged
from linectl.payload import loads_bounded
from linectl.stations.brake_judge import MISSING_AXLES, judge_axle, judge_parking, judge_total
from linectl.stations.curve import BrakeCurve
from linectl.stations.emission_judge import (
    FREE_ACCELERATION_FUELS,
    TWO_SPEED_IDLE_FUELS,
    GasReading,
    judge_free_acceleration,
    judge_two_speed_idle,
)
from linectl.stations.headlamp_judge import (
    BEAM_POSITION_MODES,
    BEAMS,
    LAMPS,
    TWO_LAMP_LAMPS,
    LampReading,
    judge_headlamps,
)
from linectl.stations.limits import LIMIT_SETS, Limits, LimitsError, load_limits
from linectl.vehicle import (
    MAX_MASS_KG,
    Fuel,
    InspectionType,
    InvalidField,
    Vehicle,
    parse_inspection_type,
    parse_vehicle,
    shown,
)

SECTIONS = ("inspection_type", "limit_set", "vehicle", "brake", "headlamps", "emission")
METHODS = {"two_speed_idle": TWO_SPEED_IDLE_FUELS, "free_acceleration": FREE_ACCELERATION_FUELS}
_GAS_KEYS = ("rpm", "co_pct", "hc_ppm", "lambda", "co2_pct", "o2_pct", "no_ppm")
# What an instrument can report, with room to spare: a number outside is no
# measurement, and one far outside (say 1e300) would carry the judgement into
# inf and NaN, which no verdict can be made from.
_GAS_RANGES = {
    "rpm": 20_000.0,
    "co_pct": 100.0,
    "hc_ppm": 1e6,
    "lambda": 100.0,
    "co2_pct": 100.0,
    "o2_pct": 100.0,
    "no_ppm": 1e6,
}
MAX_LOAD_KG = float(MAX_MASS_KG)  # one wheel
MAX_INTENSITY_CD = 1e7
MAX_OFFSET_MM = 1e6  # beam offsets at 10 m, either way
MAX_HEIGHT_MM = 1e5
MAX_K_PER_M = 1000.0
# A document is read whole; a measurement document is a few kilobytes.
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
_OPTIONAL_GAS_KEYS = ("lambda", "co2_pct", "o2_pct", "no_ppm")


# ---------------------------------------------------------------- field checks


def _object(v: Any, field: str, known: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
    if not isinstance(v, dict):
        raise InvalidField(
            "invalid_type", field or "document", f"must be an object, got {_kind(v)}"
        )
    unknown = [k for k in v if k not in known]
    if unknown:
        raise InvalidField(
            "unknown_field",
            _at(field, unknown[0]),
            f"unknown key (expected {', '.join(known)})",
        )
    for k in required:
        if k not in v:
            raise InvalidField("missing_field", _at(field, k), f"{k} is required")
    return v


def _list(v: Any, field: str, *, non_empty: bool = True) -> list:
    if not isinstance(v, list):
        raise InvalidField("invalid_type", field, f"must be a list, got {_kind(v)}")
    if non_empty and not v:
        raise InvalidField("invalid_value", field, "must not be empty")
    return v


def _number(
    obj: dict,
    key: str,
    field: str,
    *,
    at_most: float,
    at_least: float | None = None,
    positive: bool = False,
    non_negative: bool = False,
) -> float:
    """A number of the document within its range: [-at_most, at_most] unless
    `at_least`, `positive` or `non_negative` narrow the bottom."""
    f = _at(field, key)
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int | float) or not _finite(v):
        raise InvalidField("invalid_type", f, f"must be a number, got {_kind(v)}")
    if positive and v <= 0:
        raise InvalidField("invalid_value", f, f"must be > 0, got {v}")
    if non_negative and v < 0:
        raise InvalidField("invalid_value", f, f"must not be negative, got {v}")
    if at_least is not None and v < at_least:
        raise InvalidField("invalid_value", f, f"must be at least {at_least:g}, got {v}")
    if not -at_most <= v <= at_most:
        raise InvalidField("invalid_value", f, f"must be at most {at_most:g} in size, got {v:.6g}")
    return v


def _finite(v: int | float) -> bool:
    # A JSON integer has no size limit: math.isfinite(10**400) raises OverflowError.
    return abs(v) < 1e15 if isinstance(v, int) else math.isfinite(v)


def _int(obj: dict, key: str, field: str) -> int:
    v = obj[key]
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidField(
            "invalid_type", _at(field, key), f"must be a whole number, got {shown(v)}"
        )
    return v


def _bool(obj: dict, key: str, field: str) -> bool:
    v = obj.get(key, False)
    if not isinstance(v, bool):
        raise InvalidField(
            "invalid_type", _at(field, key), f"must be true or false, got {shown(v)}"
        )
    return v


def _at(field: str, key: str) -> str:
    return f"{field}.{key}" if field else key


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    # shown(), not repr(): a number of 400 digits is not quoted back whole.
    return {dict: "an object", list: "a list", str: "a string"}.get(type(v)) or shown(v)


# ---------------------------------------------------------------- brake


def _axle_number(obj: dict, field: str, vehicle: Vehicle) -> int:
    n = _int(obj, "axle", field)
    if not 1 <= n <= vehicle.axles:
        raise InvalidField(
            "invalid_axle",
            _at(field, "axle"),
            f"axle {n} outside the vehicle's axles 1..{vehicle.axles}",
        )
    return n


def _curve(obj: dict, field: str) -> BrakeCurve:
    try:
        return BrakeCurve.from_upstream(obj["curve"])
    except ValueError as e:
        raise InvalidField("invalid_curve", _at(field, "curve"), str(e)) from None


def _brake(
    sec: Any, vehicle: Vehicle, inspection_type: InspectionType, limits: Limits
) -> list[ItemResult]:
    sec = _object(sec, "brake", ("axles", "parking"), ("axles",))
    axle_keys = ("axle", "left_load_kg", "right_load_kg", "curve", "left_locked", "right_locked")
    axle_items: list[ItemResult] = []
    loads: dict[int, float] = {}
    for i, a in enumerate(_list(sec["axles"], "brake.axles")):
        f = f"brake.axles[{i}]"
        a = _object(a, f, axle_keys, axle_keys[:4])
        n = _axle_number(a, f, vehicle)
        if n in loads:
            raise InvalidField("invalid_axle", f"{f}.axle", f"axle {n} given twice")
        # A wheel of less than a kilogram is no vehicle, and a rate divided by it
        # would leave the finite numbers.
        left = _number(a, "left_load_kg", f, at_least=1.0, at_most=MAX_LOAD_KG)
        right = _number(a, "right_load_kg", f, at_least=1.0, at_most=MAX_LOAD_KG)
        loads[n] = left + right
        axle_items.append(
            judge_axle(
                n,
                left,
                right,
                _curve(a, f),
                vehicle,
                inspection_type,
                limits.brake,
                left_locked=_bool(a, "left_locked", f),
                right_locked=_bool(a, "right_locked", f),
            )
        )
    items = [*axle_items, judge_total(axle_items, limits.brake, vehicle)]

    if "parking" in sec:
        parking = sec["parking"]
        many = isinstance(parking, list)
        runs_in = _list(parking, "brake.parking") if many else [parking]
        run_keys = ("axle", "curve", "left_locked", "right_locked")
        runs: list[tuple[int, BrakeCurve, bool]] = []
        for i, r in enumerate(runs_in):
            f = f"brake.parking[{i}]" if many else "brake.parking"
            r = _object(r, f, run_keys, run_keys[:2])
            n = _axle_number(r, f, vehicle)
            if n not in vehicle.parking_axles:
                raise InvalidField(
                    "invalid_axle",
                    f"{f}.axle",
                    f"axle {n} is not a parking axle of this vehicle "
                    f"(vehicle.parking_axles {list(vehicle.parking_axles)})",
                )
            if any(n == m for m, _, _ in runs):
                raise InvalidField("invalid_axle", f"{f}.axle", f"parking axle {n} given twice")
            locked = _bool(r, "left_locked", f) | _bool(r, "right_locked", f)
            runs.append((n, _curve(r, f), locked))
        missing = [n for n in range(1, vehicle.axles + 1) if n not in loads]
        if missing:
            # B0 is a share of the vehicle weight, the sum of every axle's static
            # load: without every axle weighed there is nothing to divide by.
            items.append(not_judged("B0", MISSING_AXLES, missing_axles=[f"B{n}" for n in missing]))
        else:
            items.append(judge_parking(runs, sum(loads.values()), vehicle, limits.brake))
    return items


# ---------------------------------------------------------------- headlamps


def _headlamps(
    sec: Any, vehicle: Vehicle, inspection_type: InspectionType, limits: Limits, beam_position: str
) -> list[ItemResult]:
    keys = ("lamp", "beam", "intensity_cd", "h_mm", "v_mm", "height_mm")
    allowed = LAMPS if vehicle.headlamp_system == 4 else TWO_LAMP_LAMPS
    seen: set[tuple[str, str]] = set()
    readings: list[LampReading] = []
    for i, r in enumerate(_list(sec, "headlamps")):
        f = f"headlamps[{i}]"
        r = _object(r, f, keys, keys)
        lamp, beam = r["lamp"], r["beam"]
        if lamp not in LAMPS:
            raise InvalidField(
                "invalid_lamp",
                f"{f}.lamp",
                f"lamp {shown(lamp)} does not exist ({', '.join(LAMPS)})",
            )
        if lamp not in allowed:
            raise InvalidField(
                "invalid_lamp",
                f"{f}.lamp",
                f"lamp {lamp} on a {vehicle.headlamp_system}-lamp system "
                f"(vehicle.headlamp_system; lamps {', '.join(allowed)})",
            )
        if not isinstance(beam, str) or beam not in BEAMS:
            raise InvalidField(
                "invalid_beam", f"{f}.beam", f"beam {shown(beam)} does not exist (H high, L low)"
            )
        if (lamp, beam) in seen:
            raise InvalidField("invalid_lamp", f, f"lamp {lamp} beam {beam} given twice")
        seen.add((lamp, beam))
        readings.append(
            LampReading(
                lamp,
                beam,
                _number(r, "intensity_cd", f, non_negative=True, at_most=MAX_INTENSITY_CD),
                _number(r, "h_mm", f, at_most=MAX_OFFSET_MM),
                _number(r, "v_mm", f, at_most=MAX_OFFSET_MM),
                _number(r, "height_mm", f, at_least=1.0, at_most=MAX_HEIGHT_MM),
            )
        )
    return judge_headlamps(
        readings, vehicle, inspection_type, limits.headlamp, beam_position=beam_position
    )


# ---------------------------------------------------------------- emission


def _gas_reading(r: Any, f: str) -> GasReading:
    r = _object(r, f, _GAS_KEYS, ("rpm", "co_pct", "hc_ppm"))
    got = {
        k: _number(r, k, f, non_negative=True, at_most=_GAS_RANGES[k])
        for k in _GAS_KEYS
        if k in r and (k not in _OPTIONAL_GAS_KEYS or r[k] is not None)
    }
    return GasReading(
        rpm=got["rpm"],
        co_pct=got["co_pct"],
        hc_ppm=got["hc_ppm"],
        lambda_=got.get("lambda"),
        co2_pct=got.get("co2_pct"),
        o2_pct=got.get("o2_pct"),
        no_ppm=got.get("no_ppm"),
    )


def _emission(sec: Any, vehicle: Vehicle, limits: Limits, limit_set: str) -> ItemResult:
    if not isinstance(sec, dict):
        raise InvalidField("invalid_type", "emission", f"must be an object, got {_kind(sec)}")
    method = sec.get("method")
    # Not hashed before it is known to be a string: a list would raise TypeError.
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidField(
            "invalid_method",
            "emission.method",
            f"method {shown(method)} is not one of {', '.join(METHODS)}",
        )
    if vehicle.fuel not in METHODS[method]:
        fits = next(m for m, fuels in METHODS.items() if vehicle.fuel in fuels)
        raise InvalidField(
            "invalid_method",
            "emission.method",
            f"{method} does not fit a {vehicle.fuel} vehicle (vehicle.fuel): use {fits}",
        )
    if method == "free_acceleration":
        sec = _object(sec, "emission", ("method", "peaks_k"), ("method", "peaks_k"))
        peaks = _list(sec["peaks_k"], "emission.peaks_k", non_empty=False)
        ks = [_peak(k, i) for i, k in enumerate(peaks)]
        needed = limits.emission.measured_accelerations
        if len(ks) > needed:
            raise InvalidField(
                "invalid_value",
                "emission.peaks_k",
                f"{len(ks)} peaks: the result is the mean of exactly {needed} measured "
                "accelerations; leave out the purge accelerations",
            )
        return judge_free_acceleration(ks, limits.emission, limit_set)
    sec = _object(sec, "emission", ("method", "high_idle", "idle"), ("method", "high_idle", "idle"))
    phases = {
        name: [
            _gas_reading(r, f"emission.{name}[{i}]")
            for i, r in enumerate(_list(sec[name], f"emission.{name}", non_empty=False))
        ]
        for name in ("high_idle", "idle")
    }
    return judge_two_speed_idle(
        phases["high_idle"], phases["idle"], vehicle, limits.emission, limit_set
    )


def _peak(k: Any, i: int) -> float:
    key = f"peaks_k[{i}]"
    return _number({key: k}, key, "emission", non_negative=True, at_most=MAX_K_PER_M)


# ---------------------------------------------------------------- the document


def judge_document(
    doc: dict,
    limits: Limits,
    *,
    limit_set: str = "a",
    beam_position: str = "record",
) -> dict:
    """Judge a measurement document: {"verdict", "items"} with items in item order.

    `limit_set` is the configured emission limit set; the document's own
    `limit_set` overrides it. Raises `InvalidField` for an invalid document.
    """
    if beam_position not in BEAM_POSITION_MODES:
        raise ValueError(f"beam_position must be record or judge, got {beam_position!r}")
    doc = _object(doc, "", SECTIONS, ("vehicle",))
    inspection_type = parse_inspection_type(doc.get("inspection_type", "periodic"))
    limit_set = doc.get("limit_set", limit_set)
    if limit_set not in LIMIT_SETS:
        raise InvalidField(
            "invalid_limit_set",
            "limit_set",
            f"limit set {limit_set!r} is not one of {', '.join(LIMIT_SETS)}",
        )
    vehicle = parse_vehicle(doc["vehicle"])

    items: list[ItemResult] = []
    if "brake" in doc:
        items += _brake(doc["brake"], vehicle, inspection_type, limits)
    if "headlamps" in doc:
        items += _headlamps(doc["headlamps"], vehicle, inspection_type, limits, beam_position)
    # standards.md: "emission gives EX, except for electric vehicles".
    if "emission" in doc and vehicle.fuel is not Fuel.ELECTRIC:
        items.append(_emission(doc["emission"], vehicle, limits, limit_set))

    order = {c: i for i, c in enumerate(ALL_ITEMS)}
    items.sort(key=lambda it: order[it.code])
    return {
        "verdict": str(inspection_verdict(it.verdict for it in items)),
        "items": [it.to_json() for it in items],
    }


# ---------------------------------------------------------------- the command


def _read(file: str) -> str:
    try:
        if file == "-":
            return sys.stdin.read()
        return Path(file).read_text(encoding="utf-8")
    except OSError as e:
        raise CliError(f"{file}: cannot read: {e.strerror or e}", 2) from None
    except UnicodeDecodeError as e:
        raise CliError(f"{file}: not UTF-8 text: {e.reason} at byte {e.start}", 2) from None


def cli(args: argparse.Namespace) -> int:
    """`linectl judge FILE`: the judgement as JSON on stdout; exit 2 for an invalid document."""
    try:
        limits = load_limits(args.limits or DEFAULT_LIMITS_DIR)
    except LimitsError as e:
        raise CliError(str(e), 1) from None
    name = "stdin" if args.file == "-" else args.file
    text = _read(args.file)
    if len(text) > MAX_DOCUMENT_BYTES:
        raise CliError(
            f"{name}: over {MAX_DOCUMENT_BYTES // 2**20} MiB: not a measurement document", 2
        )
    try:
        doc = loads_bounded(text, "the document")
    except InvalidField as e:
        raise CliError(f"{name}: {e.message.removeprefix('the document is ')}", 2) from None
    try:
        result = judge_document(
            doc,
            limits,
            limit_set=args.limit_set or "a",
            beam_position=args.beam_position or "record",
        )
    except InvalidField as e:
        raise CliError(f"{name}: {e}", 2) from None
    if isinstance(doc, dict) and "emission" in doc and doc["vehicle"].get("fuel") == "electric":
        print(
            f"linectl judge: {name}: emission ignored: electric vehicles have no EX item",
            file=sys.stderr,
        )
    print(json.dumps(result, ensure_ascii=False, indent=2))
    return 0
