"""A request for an inspection, validated: the door every vehicle comes in by.

The registry's MQTT message, the operator console and the simulator all
build the same `Registration` through `parse_registration`, so one set of
rules (mqtt.md, "Registry -> daemon") refuses a bad request the same way
everywhere, naming the field. `decode_registration` is the one way raw bytes
become a request (bounded by linectl.payload), for every door. The reply
documents of mqtt.md are built here too.

No request may name a proxy driver: the driver is drawn at random when the
vehicle is called. A registration that carries a driver field anyway
(`proxy_driver` and its look-alikes, at the top or in `vehicle`) is refused
with `not_allowed` rather than silently ignored, so whoever tried learns
that it does not work, and the refusal is kept and journalled.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from linectl.items import check_items, derive_items
from linectl.payload import decode_json, peek_request_id
from linectl.vehicle import (
    InspectionType,
    InvalidField,
    Vehicle,
    parse_inspection_type,
    parse_vehicle,
)

# mqtt.md: a registration over 64 KiB is refused (the HTTP API keeps the same bound).
MAX_REGISTRATION_BYTES = 64 * 1024
REQUEST_ID_MAX = 128
# Names under which a request might try to choose its proxy driver.
DRIVER_FIELDS = ("proxy_driver", "proxy_driver_id", "driver", "driver_id")
# The request_id becomes a topic level of its reply: no level separator, no wildcards.
REQUEST_ID_FORBIDDEN = "/+#"


@dataclass(frozen=True)
class Registration:
    request_id: str | None
    inspection_type: InspectionType
    vehicle: Vehicle
    items: list[str]
    items_given: bool
    # A retest (linectl.ops.retest): the inspection it repeats items of.
    retest_of: str | None = None


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


def decode_registration(payload: bytes) -> tuple[Any, str | None, InvalidField | None]:
    """The JSON value of a payload (None if it was not decoded), the request_id to
    answer (None if none can be read), and what is wrong with the payload as such.

    A payload that cannot be decoded (oversized ones are not even tried) has its
    request_id looked for near its start, so that its refusal can still be addressed.
    """
    try:
        obj = decode_json(payload, MAX_REGISTRATION_BYTES, "registration")
    except InvalidField as e:
        return None, read_request_id({"request_id": peek_request_id(payload)}), e
    return obj, read_request_id(obj), None


def refuse_driver_choice(obj: dict[str, Any]) -> None:
    for where, fields in (("", obj), ("vehicle.", obj.get("vehicle"))):
        if not isinstance(fields, dict):
            continue
        for name in DRIVER_FIELDS:
            if name in fields:
                raise InvalidField(
                    "not_allowed",
                    f"{where}{name}",
                    "the proxy driver is drawn at random when the vehicle is called; "
                    "no request may name one",
                )


def check_request_id(obj: dict[str, Any], *, required: bool) -> str | None:
    """The request's request_id; `InvalidField` when it is unusable (or missing and required)."""
    rid = obj.get("request_id")
    if rid is None:
        if required:
            raise InvalidField("missing_field", "request_id", "request_id is required")
        return None
    checked = read_request_id(obj)
    if checked is None:
        raise InvalidField(
            "invalid_request_id",
            "request_id",
            f"request_id must be 1..{REQUEST_ID_MAX} printable characters without '/', '+' or '#'",
        )
    return checked


def parse_registration(obj: Any, *, require_request_id: bool = False) -> Registration:
    if not isinstance(obj, dict):
        raise InvalidField("invalid_shape", "(payload)", "a registration must be a JSON object")
    refuse_driver_choice(obj)
    rid = check_request_id(obj, required=require_request_id)
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


def retest_reply(
    request_id: str, inspection_id: str, line: str, revision: int, items: list[str]
) -> dict[str, Any]:
    """mqtt.md: a registration's reply plus `retest_of` and `revision` (the revision its
    result will carry); `items` (added) says what will be tested again."""
    return {
        **accepted_reply(request_id, inspection_id, line),
        "retest_of": inspection_id,
        "revision": revision,
        "items": list(items),
    }


def refused_reply(request_id: str | None, error: InvalidField) -> dict[str, Any]:
    return {"request_id": request_id, "accepted": False, "error": error.as_error()}
