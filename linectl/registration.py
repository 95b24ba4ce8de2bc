"""A request for an inspection, validated: the door every vehicle comes in by.

The registry's MQTT message, the operator console and the simulator all
build the same `Registration` through `parse_registration`, so one set of
rules (mqtt.md, "Registry -> daemon") refuses a bad request the same way
everywhere, naming the field. The reply documents of mqtt.md are built here
too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linectl.items import check_items, derive_items
from linectl.vehicle import (
    InspectionType,
    InvalidField,
    Vehicle,
    parse_inspection_type,
    parse_vehicle,
)

REQUEST_ID_MAX = 128
# The request_id becomes a topic level of its reply: no level separator, no wildcards.
REQUEST_ID_FORBIDDEN = "/+#"


@dataclass(frozen=True)
class Registration:
    request_id: str | None
    inspection_type: InspectionType
    vehicle: Vehicle
    items: list[str]
    items_given: bool


def read_request_id(obj: Any) -> str | None:
    """The request_id of a payload, if one can be read at all (for a refusal's reply)."""
    if isinstance(obj, dict):
        rid = obj.get("request_id")
        if (
            isinstance(rid, str)
            and 0 < len(rid) <= REQUEST_ID_MAX
            and rid.isprintable()
            and not any(c in rid for c in REQUEST_ID_FORBIDDEN)
        ):
            return rid
    return None


def parse_registration(obj: Any, *, require_request_id: bool = False) -> Registration:
    if not isinstance(obj, dict):
        raise InvalidField("invalid_shape", "(payload)", "a registration must be a JSON object")
    rid = obj.get("request_id")
    if rid is None:
        if require_request_id:
            raise InvalidField("missing_field", "request_id", "request_id is required")
    elif read_request_id(obj) is None:
        raise InvalidField(
            "invalid_request_id",
            "request_id",
            f"request_id must be 1..{REQUEST_ID_MAX} printable characters without '/', '+' or '#'",
        )
    itype = parse_inspection_type(obj.get("inspection_type"))
    if "vehicle" not in obj:
        raise InvalidField("missing_field", "vehicle", "vehicle is required")
    vehicle = parse_vehicle(obj["vehicle"])
    items_given = obj.get("items") is not None
    items = check_items(obj["items"], vehicle) if items_given else derive_items(vehicle)
    return Registration(rid, itype, vehicle, items, items_given)


def accepted_reply(request_id: str | None, inspection_id: str, line: str) -> dict[str, Any]:
    return {
        "request_id": request_id,
        "accepted": True,
        "inspection_id": inspection_id,
        "line": line,
    }


def refused_reply(request_id: str | None, error: InvalidField) -> dict[str, Any]:
    return {"request_id": request_id, "accepted": False, "error": error.as_error()}
