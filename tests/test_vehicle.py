"""Vehicle and registration validation: every refusal names its field and a stable code."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from linectl.items import derive_items
from linectl.registration import parse_registration, read_request_id
from linectl.vehicle import InvalidField, check_plate, check_vin, parse_vehicle, vin_check_digit

GOOD_VIN = (
    "LSVAU2180N2183294"[:8] + "X" + "N2183294"
)  # mqtt.md's example with its check digit fixed

VEHICLE: dict[str, Any] = {
    "vin": GOOD_VIN,
    "plate": "鲁G12345",
    "vehicle_class": "M1",
    "fuel": "petrol",
    "axles": 2,
    "parking_axles": [2],
    "curb_mass_kg": 1320,
    "gross_mass_kg": 1750,
    "headlamp_system": 2,
    "max_design_speed_kmh": 180,
    "registration_date": "2019-05-20",
}


def test_check_digit_worked_by_hand() -> None:
    # ISO 3779 weights 8 7 6 5 4 3 2 10 0 9 8 7 6 5 4 3 2 over the transliterated VIN:
    # L3 S2 V5 A1 U4 2 1 8 (9th ignored) N5 2 1 8 3 2 9 4
    values = [3, 2, 5, 1, 4, 2, 1, 8, 0, 5, 2, 1, 8, 3, 2, 9, 4]
    weights = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2]
    total = sum(v * w for v, w in zip(values, weights, strict=True))
    assert total % 11 == 10  # remainder 10 is written X
    assert vin_check_digit("LSVAU2180N2183294") == "X"
    assert check_vin(GOOD_VIN) == GOOD_VIN


@pytest.mark.parametrize(
    ("vin", "fragment"),
    [
        ("LSVAU2180N2183294", "check digit"),  # the contract's example as printed
        ("LSVAU218XN218329", "17 characters"),
        ("LSVAU218XN21832I4", "VIN alphabet"),
        ("LSVAU218XN21832O4", "VIN alphabet"),
        ("LSVAU218XN21832Q4", "VIN alphabet"),
        (12345, "string"),
    ],
)
def test_bad_vins(vin: Any, fragment: str) -> None:
    with pytest.raises(InvalidField) as e:
        check_vin(vin)
    assert e.value.code == "invalid_vin"
    assert e.value.field == "vehicle.vin"
    assert fragment in e.value.message


@pytest.mark.parametrize("plate", ["鲁G12345", "京AD12345", "粤B12345F", "沪C8K2L9", "浙AF12345"])
def test_good_plates(plate: str) -> None:
    assert check_plate(plate) == plate


@pytest.mark.parametrize(
    "plate", ["沪A1234", "鲁GI2345", "XG12345", "鲁g12345", "鲁G1234567", "", None]
)
def test_bad_plates(plate: Any) -> None:
    with pytest.raises(InvalidField) as e:
        check_plate(plate)
    assert (e.value.code, e.value.field) == ("invalid_plate", "vehicle.plate")


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"vehicle_class": "M9"}, "invalid_vehicle_class", "vehicle.vehicle_class"),
        ({"vehicle_class": "O2"}, "unsupported_vehicle_class", "vehicle.vehicle_class"),
        ({"fuel": "coal"}, "invalid_fuel", "vehicle.fuel"),
        ({"axles": 1}, "invalid_axles", "vehicle.axles"),
        ({"axles": 7}, "invalid_axles", "vehicle.axles"),
        ({"axles": "2"}, "invalid_axles", "vehicle.axles"),
        ({"parking_axles": [3]}, "invalid_parking_axles", "vehicle.parking_axles"),
        ({"parking_axles": [2, 2]}, "invalid_parking_axles", "vehicle.parking_axles"),
        ({"parking_axles": "2"}, "invalid_parking_axles", "vehicle.parking_axles"),
        ({"curb_mass_kg": 0}, "invalid_mass", "vehicle.curb_mass_kg"),
        ({"gross_mass_kg": 1000}, "invalid_mass", "vehicle.gross_mass_kg"),
        ({"headlamp_system": 3}, "invalid_headlamp_system", "vehicle.headlamp_system"),
        ({"registration_date": "2019-13-01"}, "invalid_date", "vehicle.registration_date"),
        ({"vin": None}, "missing_field", "vehicle.vin"),
    ],
)
def test_bad_vehicle_fields(change: dict[str, Any], code: str, field: str) -> None:
    v = {**VEHICLE, **change}
    with pytest.raises(InvalidField) as e:
        parse_vehicle(v)
    assert (e.value.code, e.value.field) == (code, field)


def test_vehicle_round_trip() -> None:
    v = parse_vehicle(VEHICLE)
    assert parse_vehicle(v.to_dict()) == v


def test_derived_items() -> None:
    v = parse_vehicle(VEHICLE)
    assert derive_items(v) == ["B1", "B2", "B0", "BT", "H1", "H4", "EX"]
    ev = parse_vehicle(
        {**VEHICLE, "fuel": "electric", "headlamp_system": 4, "axles": 3, "parking_axles": []}
    )
    assert derive_items(ev) == ["B1", "B2", "B3", "BT", "H1", "H2", "H3", "H4"]


def test_registration_items_must_fit_the_vehicle() -> None:
    req = {
        "request_id": "r-1",
        "inspection_type": "periodic",
        "vehicle": VEHICLE,
        "items": ["B1", "B3"],
    }
    with pytest.raises(InvalidField) as e:
        parse_registration(req)
    assert e.value.field == "items" and "B3" in e.value.message
    req["items"] = ["B1", "EX", "B1"]
    assert parse_registration(req).items == ["B1", "EX"]
    ev = copy.deepcopy(req)
    ev["vehicle"]["fuel"] = "electric"
    with pytest.raises(InvalidField) as e:
        parse_registration(ev)
    assert "EX" in e.value.message


@pytest.mark.parametrize(
    ("req", "field"),
    [
        ([], "(payload)"),
        ({"request_id": "r", "inspection_type": "yearly", "vehicle": VEHICLE}, "inspection_type"),
        ({"request_id": "r", "inspection_type": "new"}, "vehicle"),
        ({"request_id": "a/b", "inspection_type": "new", "vehicle": VEHICLE}, "request_id"),
        ({"request_id": "r", "inspection_type": "new", "vehicle": VEHICLE, "items": "B1"}, "items"),
        (
            {"request_id": "r", "inspection_type": "new", "vehicle": VEHICLE, "items": ["B9"]},
            "items",
        ),
    ],
)
def test_bad_registrations(req: Any, field: str) -> None:
    with pytest.raises(InvalidField) as e:
        parse_registration(req)
    assert e.value.field == field


def test_request_id_readable_only_when_sane() -> None:
    assert read_request_id({"request_id": "r-1"}) == "r-1"
    assert read_request_id({"request_id": "x" * 500}) is None
    assert read_request_id({"request_id": 5}) is None
    assert read_request_id("nope") is None
