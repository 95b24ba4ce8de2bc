"""The draw record with the vehicles each draw chose among: hashed in the chain,
tampering named, and records from before the column (migration 0005) still verify."""

from __future__ import annotations

import json

import pytest
import store_fixtures
from alembic import command
from sqlalchemy import Engine, create_engine, text
from store_fixtures import T0, make_vehicle

from linectl.store import db
from linectl.store.records import GENESIS_HASH, DrawRecord
from linectl.store.repo import Store
from linectl.vehicle import InspectionType

db_url = store_fixtures.db_url
store = store_fixtures.store
raw_engine = store_fixtures.raw_engine


def inspections(s: Store, n: int) -> list[str]:
    s.sync_proxy_drivers("L1", [(d, d, True) for d in ("D1", "D2")], at=T0)
    return [
        s.create_inspection(
            site="zc01",
            vehicle=make_vehicle(2000 + i, plate=f"鲁G2{i:04d}"),
            inspection_type=InspectionType.PERIODIC,
            items=["B1"],
            at=T0,
        )
        for i in range(n)
    ]


def test_the_window_is_hashed_and_tampering_with_it_is_named(
    store: Store, raw_engine: Engine
) -> None:
    ids = inspections(store, 3)
    store.record_draw(
        line="L1", inspection_id=ids[1], candidates=["D1", "D2"], chosen="D2", at=T0,
        vehicles=ids,
    )  # fmt: skip
    store.record_draw(line="L1", inspection_id=ids[0], candidates=["D1"], chosen="D1", at=T0)
    with pytest.raises(ValueError, match="not among"):
        store.record_draw(
            line="L1", inspection_id=ids[2], candidates=["D1"], chosen="D1", at=T0,
            vehicles=ids[:2],
        )  # fmt: skip
    first, second = store.draws()
    assert first.vehicles == ids and second.vehicles is None
    assert store.verify_draws().ok
    # Someone narrows the window afterwards, as if the car had been the only one.
    with raw_engine.begin() as c:
        c.execute(text("UPDATE draws SET vehicles = :v WHERE seq = 1"), {"v": json.dumps(ids[1:2])})
    report = store.verify_draws()
    assert not report.ok and report.first_bad_seq == 1 and "altered" in (report.problem or "")


def test_draws_recorded_before_the_column_still_verify(db_url: str) -> None:
    # A draw as 0004 stored it: its hash over the content without `vehicles`.
    old = DrawRecord(1, "L1", "zc01-20261127-0001", ["D1", "D2"], "D2", T0, GENESIS_HASH, "")
    old_hash = old.content_hash()
    engine = create_engine(db_url)
    try:
        cfg = db.alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0004_retests")
            conn.execute(
                text(
                    "INSERT INTO inspections (id, site, inspection_type, vehicle, plate, vin, "
                    "items, state, revision, created_at) VALUES ('zc01-20261127-0001', 'zc01', "
                    "'periodic', '{}', 'P', 'V', '[]', 'completed', 1, :t)"
                ),
                {"t": T0},
            )
            conn.execute(
                text(
                    "INSERT INTO draws (seq, line, inspection_id, candidates, chosen, drawn_at, "
                    "prev_hash, hash) VALUES (1, 'L1', 'zc01-20261127-0001', :c, 'D2', :t, :p, :h)"
                ),
                {"c": json.dumps(["D1", "D2"]), "t": T0, "p": GENESIS_HASH, "h": old_hash},
            )
    finally:
        engine.dispose()
    s = Store(db_url)
    try:
        s.upgrade()
        [kept] = s.draws()
        assert kept.vehicles is None and kept.hash == old_hash
        assert s.verify_draws().ok
    finally:
        s.close()
