"""Fixtures and builders for the store tests, on SQLite and PostgreSQL alike.

`db_url` is parametrized over both backends: a fresh SQLite file, and a fresh
PostgreSQL schema (created here, dropped afterwards) on the server named by
LINECTL_TEST_POSTGRES_URL, reached through the URL's search_path so the code
under test sees nothing but its own tables. Without that variable the
PostgreSQL cases are skipped, saying why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import psycopg
import pytest
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url

from linectl.items import ItemResult, Verdict
from linectl.store.repo import Store
from linectl.vehicle import Fuel, Vehicle, vin_check_digit

PG_ENV = "LINECTL_TEST_POSTGRES_URL"
PG_URL = os.environ.get(PG_ENV, "")

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param(
        "postgresql",
        id="postgresql",
        marks=pytest.mark.skipif(not PG_URL, reason=f"{PG_ENV} is not set"),
    ),
]

# A fixed instant, so ids and days are known: 2026-11-27 09:00 UTC.
T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)


def _pg_schema_url(schema: str) -> str:
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def _pg_admin() -> psycopg.Connection:
    conninfo = make_url(PG_URL).set(drivername="postgresql").render_as_string(hide_password=False)
    return psycopg.connect(conninfo, autocommit=True)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database (no schema yet) on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'linectl.db'}"
        return
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with _pg_admin() as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield _pg_schema_url(schema)
    finally:
        with _pg_admin() as admin:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A Store on an upgraded database."""
    s = Store(db_url)
    s.upgrade()
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def raw_engine(db_url: str) -> Iterator[Engine]:
    """A plain engine on the same database, to look at or tamper with rows by SQL."""
    engine = create_engine(db_url)
    try:
        yield engine
    finally:
        engine.dispose()


def make_vin(serial: int) -> str:
    """A VIN with a valid check digit, distinct per serial."""
    body = f"LSVAU218?N2{serial:06d}"
    return body.replace("?", vin_check_digit(body.replace("?", "0")))


def make_vehicle(serial: int = 183294, plate: str = "鲁G12345", **changes: object) -> Vehicle:
    fields: dict[str, object] = {
        "vin": make_vin(serial),
        "plate": plate,
        "vehicle_class": "M1",
        "fuel": Fuel.PETROL,
        "axles": 2,
        "parking_axles": (2,),
        "curb_mass_kg": 1320,
        "gross_mass_kg": 1750,
        "headlamp_system": 2,
        "max_design_speed_kmh": 180,
        "registration_date": "2019-05-20",
    }
    fields.update(changes)
    return Vehicle(**fields)  # type: ignore[arg-type]


ITEMS = ["B1", "B2", "B0", "BT", "H1", "H4", "EX"]


def brake_curve(samples: int = 1000, peak_n: float = 3100.0) -> dict[str, np.ndarray]:
    """A left/right brake curve in 10 N units (int16), as the roller tester sends it."""
    t = np.arange(samples) / 100.0
    rise = np.clip((t - 1.5) / 2.0, 0, 1)
    left = (6 + rise * peak_n / 10).astype(np.int16)
    right = (5 + rise * peak_n * 0.95 / 10).astype(np.int16)
    return {"left": left, "right": right}


def brake_result(code: str, verdict: Verdict, **extra: object) -> ItemResult:
    raw = brake_curve()
    curve = "1@" + "$".join(f"{a}#{b}" for a, b in zip(raw["left"], raw["right"], strict=True))
    return ItemResult(
        code,
        verdict,
        values={"axle_rate_pct": 69.2 if verdict is Verdict.PASS else 41.0, "imbalance_pct": 6.1},
        limits={"axle_rate_pct": 60, "imbalance_pct": 24},
        raw=raw,
        curve=curve,
        **extra,  # type: ignore[arg-type]
    )


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)
