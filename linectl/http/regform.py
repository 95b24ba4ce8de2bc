"""The registration form: its fields to a registration payload of mqtt.md, and back.

The form is one more door to the one `register` operation: what the operator
typed becomes the same JSON object the registry sends over MQTT (numbers that
are whole numbers become numbers, anything else is passed on as typed, for
the validation to refuse with its own words), and the operation's reply is
the MQTT reply. No field names a proxy driver.

The operation refuses at the first bad field, as over MQTT. So that an
operator sees every bad field at once, `field_errors` asks the same
validation (linectl.registration) about each field alone, put into a
registration known to be good; fields that depend on each other (axles and
parking axles, curb and gross mass) are asked about together.
"""

from __future__ import annotations

import copy
import re
import secrets
from collections.abc import Mapping
from typing import Any

from linectl.items import ALL_ITEMS
from linectl.registration import parse_registration
from linectl.vehicle import VEHICLE_CLASSES, Fuel, InvalidField

VEHICLE_FIELDS = (
    "plate",
    "vin",
    "vehicle_class",
    "fuel",
    "axles",
    "parking_axles",
    "curb_mass_kg",
    "gross_mass_kg",
    "headlamp_system",
    "max_design_speed_kmh",
    "registration_date",
)
INT_FIELDS = ("axles", "curb_mass_kg", "gross_mass_kg", "headlamp_system", "max_design_speed_kmh")
# Asked about together: the validation compares them with each other.
GROUPS: tuple[tuple[str, ...], ...] = (
    ("vin",),
    ("plate",),
    ("vehicle_class",),
    ("fuel",),
    ("axles", "parking_axles"),
    ("curb_mass_kg", "gross_mass_kg"),
    ("headlamp_system",),
    ("max_design_speed_kmh",),
    ("registration_date",),
)
GOOD: dict[str, Any] = {
    "request_id": "form-check",
    "inspection_type": "periodic",
    "vehicle": {
        "vin": "LSVAU218XN2183294",
        "plate": "京A12345",
        "vehicle_class": "M1",
        "fuel": "petrol",
        "axles": 2,
        "parking_axles": [2],
        "curb_mass_kg": 1300,
        "gross_mass_kg": 1800,
        "headlamp_system": 2,
        "max_design_speed_kmh": 160,
    },
}
WHOLE = re.compile(r"^\s*-?\d{1,9}\s*$")
CLASSES = tuple(c for c in VEHICLE_CLASSES if not c.startswith("O"))
FUELS = tuple(f.value for f in Fuel)
ITEMS = ALL_ITEMS


def new_request_id() -> str:
    return f"console-{secrets.token_hex(8)}"


def _number(text: str) -> Any:
    return int(text) if WHOLE.match(text) else text


def to_payload(form: Mapping[str, Any], items: list[str]) -> dict[str, Any]:
    """The registration payload of what the form holds; empty fields are left out."""
    vehicle: dict[str, Any] = {}
    for name in VEHICLE_FIELDS:
        raw = form.get(name)
        text = raw.strip() if isinstance(raw, str) else ""
        if not text:
            continue
        if name in ("vin", "plate"):
            vehicle[name] = text.upper()
        elif name in INT_FIELDS:
            vehicle[name] = _number(text)
        elif name == "parking_axles":
            vehicle[name] = [_number(t) for t in re.split(r"[\s,;，]+", text) if t]
        else:
            vehicle[name] = text
    payload: dict[str, Any] = {
        "request_id": str(form.get("request_id") or ""),
        "inspection_type": str(form.get("inspection_type") or ""),
        "vehicle": vehicle,
    }
    if items:
        payload["items"] = items
    return payload


def field_errors(payload: dict[str, Any], first: InvalidField | None) -> dict[str, InvalidField]:
    """Every refused field of `payload`, by dotted field name (`vehicle.vin`)."""
    errors: dict[str, InvalidField] = {}
    if first is not None:
        errors[first.field] = first
    vehicle = payload.get("vehicle") if isinstance(payload.get("vehicle"), dict) else {}
    assert isinstance(vehicle, dict)
    for group in GROUPS:
        probe = copy.deepcopy(GOOD)
        for name in group:
            if name in vehicle:
                probe["vehicle"][name] = vehicle[name]
            else:
                probe["vehicle"].pop(name, None)
        _ask(probe, errors, {f"vehicle.{n}" for n in group})
    probe = copy.deepcopy(GOOD)
    probe["inspection_type"] = payload.get("inspection_type")
    _ask(probe, errors, {"inspection_type"})
    if not any(f.startswith("vehicle") for f in errors) and "items" in payload:
        probe = copy.deepcopy(payload)
        probe["request_id"] = GOOD["request_id"]
        _ask(probe, errors, {"items"})
    return errors


def _ask(probe: dict[str, Any], errors: dict[str, InvalidField], fields: set[str]) -> None:
    try:
        parse_registration(probe, require_request_id=True)
    except InvalidField as e:
        if e.field in fields or e.field.split("[")[0] in fields:
            errors.setdefault(e.field, e)
