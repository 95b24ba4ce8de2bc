"""Fuzz: registration payloads, valid, invalid and hostile, through the intake.

Valid registrations are drawn field by field (a VIN with its check digit, a
plate of each pattern, any class, fuel, axles, masses, lamps, items); then
one field, or the whole document, may be swapped for something hostile: deep
nesting, numbers past any range, wrong types, control characters and lone
surrogates in strings, long strings; and the bytes may be cut, spliced with
invalid UTF-8 or replaced by noise. Two levels:
- `decode` and `parse_registration`: a Registration or an `InvalidField`,
  and the refusal's reply encodes as UTF-8 JSON with a short message;
- the intake's `answer` against a real site and its SQLite store: every
  payload gets a reply (or none, when no request_id can be read), never an
  `internal_error` (which would mean one of these payloads hit a bug), and a
  valid registration is accepted.
"""

from __future__ import annotations

import json
import string
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from site_fixtures import offline_config

from linectl.clock import Clock
from linectl.daemon import Site, open_store
from linectl.demo import demo_config
from linectl.ops.operations import Operations
from linectl.registration import Registration, parse_registration, refused_reply
from linectl.store.db import json_text
from linectl.upstream.intake import Intake, decode
from linectl.upstream.publisher import to_json
from linectl.upstream.topics import Topics
from linectl.vehicle import (
    PROVINCES,
    TRAILER_CLASSES,
    VEHICLE_CLASSES,
    Fuel,
    InvalidField,
    vin_check_digit,
)

VIN_CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"
SERIAL = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789".replace("Q", "")


@st.composite
def vins(draw: st.DrawFn) -> str:
    body = draw(st.text(st.sampled_from(VIN_CHARS), min_size=17, max_size=17))
    return body[:8] + vin_check_digit(body) + body[9:]


plates = st.one_of(
    # ordinary: province, office letter, five letters or digits
    st.builds(
        lambda p, o, s: p + o + s,
        st.sampled_from(PROVINCES),
        st.sampled_from(string.ascii_uppercase),
        st.text(st.sampled_from(SERIAL), min_size=5, max_size=5),
    ),
    # new-energy small car: a series letter, then five digits
    st.builds(
        lambda p, o, s, d: p + o + s + d,
        st.sampled_from(PROVINCES),
        st.sampled_from(string.ascii_uppercase),
        st.sampled_from("ABCDEFGHJK"),
        st.text(st.sampled_from(string.digits), min_size=5, max_size=5),
    ),
)


@st.composite
def registrations(draw: st.DrawFn) -> dict[str, Any]:
    axles = draw(st.integers(2, 6))
    curb = draw(st.integers(500, 40_000))
    vehicle: dict[str, Any] = {
        "vin": draw(vins()),
        "plate": draw(plates),
        "vehicle_class": draw(
            st.sampled_from([c for c in VEHICLE_CLASSES if c not in TRAILER_CLASSES])
        ),
        "fuel": draw(st.sampled_from([f.value for f in Fuel])),
        "axles": axles,
        "parking_axles": draw(st.lists(st.integers(1, axles), unique=True, max_size=axles)),
        "curb_mass_kg": curb,
        "gross_mass_kg": draw(st.integers(curb, min(100_000, 3 * curb))),
        "headlamp_system": draw(st.sampled_from([2, 4])),
        "max_design_speed_kmh": draw(st.integers(20, 220)),
    }
    if draw(st.booleans()):
        vehicle["registration_date"] = draw(st.dates()).isoformat()
    reg: dict[str, Any] = {
        "request_id": draw(
            st.text(string.ascii_letters + string.digits + "-_.", min_size=1, max_size=40)
        ),
        "inspection_type": draw(st.sampled_from(["new", "periodic"])),
        "vehicle": vehicle,
    }
    return reg


def nested(depth: int, leaf: Any = 1) -> Any:
    for _ in range(depth):
        leaf = [leaf]
    return leaf


# Characters that have broken parsers, topics, encoders and databases.
NASTY = ["\ud800", "\udfff", "\x00", "\x1b", "\x7f", "\u202e", "\ufeff", "/", "#", "+", "\\", '"']
hostile_strings = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=40),  # lone surrogates too
    st.lists(st.sampled_from([*NASTY, "B1", "a", "鲁"]), min_size=1, max_size=8).map("".join),
    st.text(st.characters(max_codepoint=0x1F), max_size=12),
    st.just("鲁G1\x0034"),
    st.just("\ud800"),
    st.integers(1000, 70_000).map(lambda n: "x" * n),
)
hostile = st.one_of(
    hostile_strings,
    st.integers(),
    st.integers(10**15, 10**400),
    st.integers(-(10**400), -(10**15)),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([True, False, None, [], {}, [[]], {"": {}}, 0, -1, 1.5]),
    st.integers(20, 200).map(nested),
    st.lists(st.integers(), max_size=50),
    st.lists(hostile_strings, min_size=1, max_size=5),
    st.dictionaries(st.text(max_size=8), st.integers(), max_size=5),
)
FIELDS = (
    "request_id",
    "inspection_type",
    "vehicle",
    "items",
    "vehicle.vin",
    "vehicle.plate",
    "vehicle.vehicle_class",
    "vehicle.fuel",
    "vehicle.axles",
    "vehicle.parking_axles",
    "vehicle.curb_mass_kg",
    "vehicle.gross_mass_kg",
    "vehicle.headlamp_system",
    "vehicle.max_design_speed_kmh",
    "vehicle.registration_date",
)


def set_field(reg: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(reg))
    parent, _, key = path.rpartition(".")
    target = out[parent] if parent else out
    if isinstance(target, dict):
        target[key] = value
    return out


def encode(obj: Any) -> bytes:
    # Lone surrogates escaped, so json.dumps can write them: they come back on decode.
    return json.dumps(obj, ensure_ascii=True).encode()


@st.composite
def payloads(draw: st.DrawFn) -> tuple[bytes, bool]:
    """(payload bytes, whether it is a valid registration)."""
    reg = draw(registrations())
    how = draw(
        st.sampled_from(["valid", "field", "string", "items", "drop", "whole", "bytes", "noise"])
    )
    if how == "valid":
        if draw(st.booleans()):
            reg["items"] = draw(st.sampled_from([["B1"], ["B1", "B2", "BT"], ["BT"]]))
        return encode(reg), True
    if how == "string":
        strings = ["request_id", "inspection_type", "vehicle.vin", "vehicle.plate", "vehicle.fuel"]
        return encode(set_field(reg, draw(st.sampled_from(strings)), draw(hostile_strings))), False
    if how == "items":
        codes = st.one_of(st.sampled_from(["B1", "B2", "BT", "H1", "EX", "B0"]), hostile_strings)
        return encode({**reg, "items": draw(st.lists(codes, max_size=6))}), False
    if how == "field":
        return encode(set_field(reg, draw(st.sampled_from(FIELDS)), draw(hostile))), False
    if how == "drop":
        key = draw(st.sampled_from(FIELDS))
        parent, _, leaf = key.rpartition(".")
        target = reg[parent] if parent else reg
        target.pop(leaf, None)
        return encode(reg), False
    if how == "whole":
        return encode(draw(hostile)), False
    if how == "bytes":
        raw = bytearray(encode(reg))
        at = draw(st.integers(0, len(raw)))
        junk = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"]]]]", b'"']))
        cut = draw(st.integers(0, len(raw)))
        return bytes(raw[:at] + junk + raw[at:cut]), False
    return draw(st.binary(max_size=300)), False


def check_refusal(rid: str | None, e: InvalidField) -> None:
    assert isinstance(e.code, str) and isinstance(e.field, str)
    assert len(e.message) < 300, "a refusal never quotes the attack"
    wire = to_json(refused_reply(rid, e))
    back = json.loads(wire.decode("utf-8"))
    assert back["accepted"] is False and back["error"]["code"] == e.code
    json_text(back)  # storable as the reply of this request_id


@given(case=payloads())
def test_decode_and_validate(case: tuple[bytes, bool]) -> None:
    payload, valid = case
    obj, rid, err = decode(payload)
    if err is not None:
        assert not valid
        check_refusal(rid, err)
        return
    try:
        reg = parse_registration(obj)
    except InvalidField as e:
        assert not valid, e
        check_refusal(rid, e)
        return
    assert isinstance(reg, Registration)
    assert valid or reg.request_id == rid


@pytest.fixture
async def intake(tmp_path: Path) -> AsyncIterator[Intake]:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    cfg = offline_config(demo_config("fz", 2, url, tmp_path / "tty"))
    store = await open_store(url)
    site = Site(cfg, Clock(100), store)
    try:
        yield Intake(Operations(site), Topics("linectl", "fz"))
    finally:
        await store.aclose()


SEEN: set[str] = set()


@given(case=payloads())
async def test_intake_answers_every_payload(intake: Intake, case: tuple[bytes, bool]) -> None:
    payload, valid = case
    answer = await intake.answer(payload)
    if answer is None:
        assert not valid, "a valid registration always has a request_id to answer on"
        return
    rid, reply = answer
    assert reply["request_id"] == rid
    json.loads(to_json(reply).decode("utf-8"))
    again = rid in SEEN  # the stored reply of the first payload with this request_id
    SEEN.add(rid)
    if not reply["accepted"]:
        assert reply["error"]["code"] != "internal_error", reply
    assert reply["accepted"] or not valid or again, reply
