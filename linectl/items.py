"""Items, verdicts and the result of one judged attempt.

An inspection has items (B1..B6 per axle, B0 parking, BT whole vehicle,
H1..H4 per headlamp, EX emission); each item gets one or more attempts, each
attempt one `ItemResult`. This module owns the item codes, which items a
vehicle needs, and how item verdicts add up to the inspection's verdict
(standards.md, "Verdicts").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from linectl.vehicle import Fuel, InvalidField, Vehicle, shown


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_JUDGED = "not_judged"


class InspectionVerdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCOMPLETE = "incomplete"


# Headlamp items in lamp order; a two-lamp system uses the outer pair.
LAMP_ITEMS = {"L": "H1", "LI": "H2", "RI": "H3", "R": "H4"}
ITEM_LAMPS = {v: k for k, v in LAMP_ITEMS.items()}
ALL_ITEMS = (
    *(f"B{n}" for n in range(1, 7)),
    "B0",
    "BT",
    "H1",
    "H2",
    "H3",
    "H4",
    "EX",
)
# Which station kind measures which item.
STATION_OF_ITEM = {
    **{f"B{n}": "brake" for n in range(0, 7)},
    "BT": "brake",
    **{h: "headlamp" for h in ("H1", "H2", "H3", "H4")},
    "EX": "emission",
}


@dataclass
class ItemResult:
    """One attempt's judgement of one item.

    `values` and `limits` are flat JSON-able dicts (names as in mqtt.md);
    `raw` holds the acquired arrays (curves, readings) kept with the attempt.
    `reason` says why an item is `not_judged` (device_fault, overrun,
    locked_wheel, invalid_phase, aborted, ...).
    """

    code: str
    verdict: Verdict
    values: dict[str, Any] = field(default_factory=dict)
    limits: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    raw: dict[str, np.ndarray] = field(default_factory=dict)
    curve: str | None = None  # upstream P@L#R$... form for brake items

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "code": self.code,
            "verdict": str(self.verdict),
            "values": self.values,
            "limits": self.limits,
        }
        if self.reason:
            d["reason"] = self.reason
        if self.curve is not None:
            d["curve"] = self.curve
        return d


def not_judged(code: str, reason: str, **values: Any) -> ItemResult:
    return ItemResult(code, Verdict.NOT_JUDGED, values=dict(values), reason=reason)


def inspection_verdict(verdicts: Iterable[Verdict | str]) -> InspectionVerdict:
    """Any fail fails; otherwise any not-judged leaves it incomplete; else pass."""
    vs = [Verdict(v) for v in verdicts]
    if any(v is Verdict.FAIL for v in vs):
        return InspectionVerdict.FAIL
    if not vs or any(v is Verdict.NOT_JUDGED for v in vs):
        return InspectionVerdict.INCOMPLETE
    return InspectionVerdict.PASS


def latest_verdicts(attempts: Iterable[tuple[str, int, Verdict | str]]) -> dict[str, Verdict]:
    """From (code, attempt_no, verdict) rows, the verdict of each item's latest attempt."""
    best: dict[str, tuple[int, Verdict]] = {}
    for code, n, v in attempts:
        if code not in best or n > best[code][0]:
            best[code] = (n, Verdict(v))
    return {code: v for code, (_, v) in best.items()}


def derive_items(vehicle: Vehicle) -> list[str]:
    """The items a vehicle needs when the registration does not list them."""
    items = [f"B{n}" for n in range(1, vehicle.axles + 1)]
    if vehicle.parking_axles:
        items.append("B0")
    items.append("BT")
    lamps = ("L", "LI", "RI", "R") if vehicle.headlamp_system == 4 else ("L", "R")
    items += [LAMP_ITEMS[lamp] for lamp in lamps]
    if vehicle.fuel is not Fuel.ELECTRIC:
        items.append("EX")
    return sort_items(items)


def sort_items(codes: Iterable[str]) -> list[str]:
    order = {c: i for i, c in enumerate(ALL_ITEMS)}
    return sorted(set(codes), key=lambda c: order.get(c, len(order)))


def check_items(codes: Any, vehicle: Vehicle, field_name: str = "items") -> list[str]:
    """Validate a registration's item list against the vehicle."""
    if not isinstance(codes, list) or not all(isinstance(c, str) for c in codes) or not codes:
        raise InvalidField(
            "invalid_items", field_name, "items must be a non-empty list of item codes"
        )
    unknown = [c for c in codes if c not in ALL_ITEMS]
    if unknown:
        # Quoted, and only the first few: a refusal never carries the attack back
        # (nor a lone surrogate that no UTF-8 reply could encode).
        more = f" and {len(unknown) - 3} more" if len(unknown) > 3 else ""
        raise InvalidField(
            "invalid_items",
            field_name,
            f"unknown item code(s): {', '.join(shown(c, 16) for c in unknown[:3])}{more}",
        )
    fitting = set(derive_items(vehicle))
    misfit = [c for c in codes if c not in fitting]
    if misfit:
        raise InvalidField(
            "invalid_items",
            field_name,
            f"item(s) {', '.join(misfit)} do not fit this vehicle "
            f"({vehicle.axles} axles, parking axles {list(vehicle.parking_axles)}, "
            f"{vehicle.headlamp_system}-lamp system, fuel {vehicle.fuel})",
        )
    return sort_items(codes)


def items_by_station(codes: Iterable[str]) -> Mapping[str, list[str]]:
    out: dict[str, list[str]] = {}
    for c in sort_items(codes):
        out.setdefault(STATION_OF_ITEM[c], []).append(c)
    return out
