"""The vehicle as the registry describes it, and its validation.

One parser serves every door a vehicle comes in by: an MQTT registration, the
console, `linectl judge`, the simulator. A bad field raises `InvalidField`
naming the field (dotted path, as in mqtt.md's refusal `error.field`), a
stable machine code and a sentence a person can act on.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date
from enum import StrEnum
from typing import Any


class InvalidField(ValueError):
    """One refused field: `code` for machines, `field` and `message` for people."""

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.code = code
        self.field = field
        self.message = message

    def as_error(self) -> dict[str, str]:
        return {"code": self.code, "field": self.field, "message": self.message}


class Fuel(StrEnum):
    PETROL = "petrol"
    DIESEL = "diesel"
    ELECTRIC = "electric"
    HYBRID = "hybrid"
    GAS = "gas"


class InspectionType(StrEnum):
    NEW = "new"
    PERIODIC = "periodic"


VEHICLE_CLASSES = ("M1", "M2", "M3", "N1", "N2", "N3", "O1", "O2", "O3", "O4")
TRAILER_CLASSES = ("O1", "O2", "O3", "O4")
# Far above any road vehicle; numbers past these are errors or attacks, and a
# database integer column must never see them.
MAX_MASS_KG = 100_000
MAX_SPEED_KMH = 400

# ISO 3779 / GB 16735: letters I, O, Q are never used.
_VIN_VALUES = {
    **{str(d): d for d in range(10)},
    **dict(zip("ABCDEFGH", range(1, 9), strict=True)),
    **dict(zip("JKLMN", range(1, 6), strict=True)),
    "P": 7,
    "R": 9,
    **dict(zip("STUVWXYZ", range(2, 10), strict=True)),
}
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_SERIAL = "[A-HJ-NP-Z0-9]"  # plate serials skip I and O, like VINs
_PLATE_PATTERNS = (
    # ordinary plate: province, issuing-office letter, five letters/digits
    re.compile(rf"^[{PROVINCES}][A-Z]{_SERIAL}{{5}}$"),
    # new-energy small car: D/F (or the 2022 A..K series letters) then five
    re.compile(rf"^[{PROVINCES}][A-Z][A-HJ-K]{_SERIAL}\d{{4}}$"),
    # new-energy large vehicle: five digits then D/F
    re.compile(rf"^[{PROVINCES}][A-Z]\d{{5}}[DF]$"),
)


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def vin_check_digit(vin: str) -> str:
    """The check character (position 9) that ISO 3779 gives for `vin`."""
    total = sum(_VIN_VALUES[c] * w for c, w in zip(vin, _VIN_WEIGHTS, strict=True))
    rem = total % 11
    return "X" if rem == 10 else str(rem)


def check_vin(vin: Any, field: str = "vehicle.vin") -> str:
    if not isinstance(vin, str):
        raise InvalidField("invalid_vin", field, "VIN must be a string of 17 characters")
    if len(vin) != 17:
        raise InvalidField("invalid_vin", field, f"VIN must have 17 characters, got {len(vin)}")
    bad = sorted({c for c in vin if c not in _VIN_VALUES})
    if bad:
        raise InvalidField(
            "invalid_vin",
            field,
            f"VIN has characters outside the VIN alphabet (0-9, A-Z without I, O, Q): "
            f"{shown(''.join(bad))}",
        )
    expected = vin_check_digit(vin)
    if vin[8] != expected:
        raise InvalidField(
            "invalid_vin", field, f"VIN check digit (position 9) is {vin[8]}, should be {expected}"
        )
    return vin


def check_plate(plate: Any, field: str = "vehicle.plate") -> str:
    if not isinstance(plate, str) or not any(p.match(plate) for p in _PLATE_PATTERNS):
        raise InvalidField(
            "invalid_plate",
            field,
            f"plate {shown(plate)} is not a province character, a letter and 5 letters/digits "
            "(6 on new-energy plates)",
        )
    return plate


@dataclass(frozen=True)
class Vehicle:
    vin: str
    plate: str
    vehicle_class: str
    fuel: Fuel
    axles: int
    parking_axles: tuple[int, ...]
    curb_mass_kg: int
    gross_mass_kg: int
    headlamp_system: int
    max_design_speed_kmh: int
    registration_date: str | None = None

    @property
    def is_m1(self) -> bool:
        return self.vehicle_class == "M1"

    @property
    def is_bus(self) -> bool:
        return self.vehicle_class in ("M2", "M3")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["fuel"] = str(self.fuel)
        d["parking_axles"] = list(self.parking_axles)
        if d["registration_date"] is None:
            del d["registration_date"]
        return d

    @classmethod
    def from_dict(cls, obj: Any, prefix: str = "vehicle") -> Vehicle:
        return parse_vehicle(obj, prefix)


def shown(value: Any, limit: int = 40) -> str:
    """`repr(value)` cut short: a refusal quotes what it got, never a whole attack."""
    text = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_of(value: Any, allowed: tuple[str, ...] | frozenset[str]) -> bool:
    # A list or an object is not hashable: `in` on a dict or set would raise
    # TypeError instead of refusing it.
    return isinstance(value, str) and value in allowed


def _req(obj: dict[str, Any], key: str, prefix: str) -> Any:
    if key not in obj or obj[key] is None:
        raise InvalidField("missing_field", f"{prefix}.{key}", f"{key} is required")
    return obj[key]


def _int(obj: dict[str, Any], key: str, prefix: str, code: str) -> int:
    v = _req(obj, key, prefix)
    if isinstance(v, bool) or not isinstance(v, int):
        raise InvalidField(code, f"{prefix}.{key}", f"{key} must be a whole number, got {shown(v)}")
    return v


def parse_vehicle(obj: Any, prefix: str = "vehicle") -> Vehicle:
    """Validate the vehicle object of mqtt.md; raise `InvalidField` on the first bad field."""
    if not isinstance(obj, dict):
        raise InvalidField("invalid_shape", prefix, "vehicle must be an object")
    vin = check_vin(_req(obj, "vin", prefix), f"{prefix}.vin")
    plate = check_plate(_req(obj, "plate", prefix), f"{prefix}.plate")

    vclass = _req(obj, "vehicle_class", prefix)
    if not _one_of(vclass, VEHICLE_CLASSES):
        raise InvalidField(
            "invalid_vehicle_class",
            f"{prefix}.vehicle_class",
            f"vehicle class {shown(vclass)} is not one of {', '.join(VEHICLE_CLASSES)}",
        )
    if vclass in TRAILER_CLASSES:
        raise InvalidField(
            "unsupported_vehicle_class",
            f"{prefix}.vehicle_class",
            f"trailers ({vclass}) and vehicle trains are not inspected on this line yet",
        )

    fuel = _req(obj, "fuel", prefix)
    if not _one_of(fuel, tuple(Fuel)):
        raise InvalidField(
            "invalid_fuel",
            f"{prefix}.fuel",
            f"fuel {shown(fuel)} is not one of {', '.join(f.value for f in Fuel)}",
        )

    axles = _int(obj, "axles", prefix, "invalid_axles")
    if not 2 <= axles <= 6:
        raise InvalidField(
            "invalid_axles", f"{prefix}.axles", f"axles must be 2..6, got {shown(axles)}"
        )

    pa = obj.get("parking_axles", [])
    if not isinstance(pa, list) or any(isinstance(a, bool) or not isinstance(a, int) for a in pa):
        raise InvalidField(
            "invalid_parking_axles",
            f"{prefix}.parking_axles",
            "parking_axles must be a list of axle numbers",
        )
    outside = [a for a in pa if not 1 <= a <= axles]
    if outside:
        raise InvalidField(
            "invalid_parking_axles",
            f"{prefix}.parking_axles",
            f"parking axle(s) {', '.join(shown(a, 12) for a in outside[:4])}{', ...' if len(outside) > 4 else ''} outside the vehicle's axles 1..{axles}",
        )
    if len(set(pa)) != len(pa):
        raise InvalidField(
            "invalid_parking_axles", f"{prefix}.parking_axles", "parking axles listed twice"
        )

    curb = _int(obj, "curb_mass_kg", prefix, "invalid_mass")
    gross = _int(obj, "gross_mass_kg", prefix, "invalid_mass")
    if not 0 < curb <= MAX_MASS_KG:
        raise InvalidField(
            "invalid_mass",
            f"{prefix}.curb_mass_kg",
            f"curb mass must be 1..{MAX_MASS_KG} kg, got {shown(curb)}",
        )
    if gross > MAX_MASS_KG:
        raise InvalidField(
            "invalid_mass",
            f"{prefix}.gross_mass_kg",
            f"gross mass must be at most {MAX_MASS_KG} kg, got {shown(gross)}",
        )
    if gross < curb:
        raise InvalidField(
            "invalid_mass",
            f"{prefix}.gross_mass_kg",
            f"gross mass {gross} kg is below the curb mass {curb} kg",
        )

    hs = _int(obj, "headlamp_system", prefix, "invalid_headlamp_system")
    if hs not in (2, 4):
        raise InvalidField(
            "invalid_headlamp_system",
            f"{prefix}.headlamp_system",
            f"headlamp system must be 2 or 4 lamps, got {shown(hs)}",
        )

    speed = obj.get("max_design_speed_kmh", 120)
    if isinstance(speed, bool) or not isinstance(speed, int) or not 0 < speed <= MAX_SPEED_KMH:
        raise InvalidField(
            "invalid_speed",
            f"{prefix}.max_design_speed_kmh",
            f"max design speed must be a whole number of km/h, 1..{MAX_SPEED_KMH}",
        )

    reg_date = obj.get("registration_date")
    if reg_date is not None:
        try:
            # Only the form mqtt.md shows: fromisoformat would take "20190520" too.
            if not isinstance(reg_date, str) or not _DATE.fullmatch(reg_date):
                raise ValueError(reg_date)
            date.fromisoformat(reg_date)
        except (TypeError, ValueError):
            raise InvalidField(
                "invalid_date",
                f"{prefix}.registration_date",
                f"registration date {shown(reg_date)} is not YYYY-MM-DD",
            ) from None

    return Vehicle(
        vin=vin,
        plate=plate,
        vehicle_class=vclass,
        fuel=Fuel(fuel),
        axles=axles,
        parking_axles=tuple(pa),
        curb_mass_kg=curb,
        gross_mass_kg=gross,
        headlamp_system=hs,
        max_design_speed_kmh=speed,
        registration_date=reg_date,
    )


def parse_inspection_type(value: Any, field: str = "inspection_type") -> InspectionType:
    if not _one_of(value, tuple(InspectionType)):
        raise InvalidField(
            "invalid_inspection_type",
            field,
            f"inspection_type must be new or periodic, got {shown(value)}",
        )
    return InspectionType(value)
