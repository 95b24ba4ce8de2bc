"""The store API on SQLite and PostgreSQL: schema, ids, idempotent registration,
attempts and raw arrays, verdicts and the outbox, the draw chain, proxy drivers."""

from __future__ import annotations

import asyncio
import json
import math
import threading
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
import store_fixtures
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, create_engine, text
from store_fixtures import ITEMS, T0, at, brake_curve, brake_result, make_vehicle

from linectl.items import InspectionVerdict, ItemResult, Verdict, not_judged
from linectl.store.blobs import BlobError, pack_arrays, unpack_arrays
from linectl.store.db import head_revision
from linectl.store.models import Base
from linectl.store.records import (
    RESULT_SCHEMA,
    DriverState,
    InspectionState,
    default_result_document,
)
from linectl.store.repo import AsyncStore, DuplicateRequest, NotFound, Store, StoreError
from linectl.vehicle import InspectionType

db_url = store_fixtures.db_url
store = store_fixtures.store
raw_engine = store_fixtures.raw_engine

PERIODIC = InspectionType.PERIODIC


def new_inspection(s: Store, minutes: float = 0, **kw: object) -> str:
    args: dict[str, object] = {
        "site": "zc01",
        "vehicle": make_vehicle(),
        "inspection_type": PERIODIC,
        "items": ITEMS,
        "at": at(minutes),
    }
    args.update(kw)
    return s.create_inspection(**args)  # type: ignore[arg-type]


def count(engine: Engine, table: str) -> int:
    with engine.connect() as c:
        return int(c.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


# -- schema ----------------------------------------------------------------------


def test_migrations_reach_head_on_an_empty_database_and_match_the_models(db_url: str) -> None:
    s = Store(db_url)
    try:
        assert s.current_revision() is None
        s.upgrade()
        assert s.current_revision() == head_revision()
        s.upgrade()  # idempotent: already at head
        assert s.check_schema() == head_revision()
    finally:
        s.close()
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            diffs = compare_metadata(
                MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata
            )
    finally:
        engine.dispose()
    assert diffs == []


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path) -> None:
    s = Store(f"sqlite:///{tmp_path / 'x.db'}")
    try:
        s.upgrade()
        with s._engine.connect() as c:
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000
    finally:
        s.close()


def test_a_database_without_schema_is_named_as_such(db_url: str) -> None:
    s = Store(db_url)
    try:
        with pytest.raises(StoreError, match="linectl db upgrade"):
            s.check_schema()
        with pytest.raises(StoreError, match="linectl db upgrade"):
            s.list_inspections()
    finally:
        s.close()


# -- ids and times -----------------------------------------------------------------


def test_inspection_ids_count_per_site_and_utc_day(store: Store) -> None:
    assert new_inspection(store) == "zc01-20261127-0001"
    assert new_inspection(store, 5) == "zc01-20261127-0002"
    # 07:00 in UTC+8 on the 28th is still the 27th in UTC.
    beijing = timezone(timedelta(hours=8))
    assert (
        new_inspection(store, at=datetime(2026, 11, 28, 7, 0, tzinfo=beijing))
        == "zc01-20261127-0003"
    )
    assert new_inspection(store, at=T0 + timedelta(days=1)) == "zc01-20261128-0001"
    assert new_inspection(store, site="zc02") == "zc02-20261127-0001"
    assert new_inspection(store, 6) == "zc01-20261127-0004"


def test_times_come_back_aware_utc_and_naive_ones_are_refused(store: Store) -> None:
    beijing = timezone(timedelta(hours=8))
    local = datetime(2026, 11, 27, 17, 30, 0, 123456, tzinfo=beijing)
    iid = new_inspection(store, at=local)
    rec = store.inspection(iid)
    assert rec.created_at == local
    assert rec.created_at.tzinfo is UTC and rec.created_at.hour == 9
    with pytest.raises(ValueError, match="naive"):
        new_inspection(store, at=datetime(2026, 11, 27, 9, 0))


# -- registration ------------------------------------------------------------------


def test_a_repeated_request_id_gets_the_same_reply_and_no_second_inspection(
    db_url: str, store: Store, raw_engine: Engine
) -> None:
    def reply_for(new_id: str) -> dict:
        return {"request_id": "r-1", "accepted": True, "inspection_id": new_id, "line": "L1"}

    iid = new_inspection(store, request_id="r-1", reply_for=reply_for, line="L1")
    first = store.registration_reply("r-1")
    assert first == reply_for(iid)
    with pytest.raises(DuplicateRequest) as dup:
        new_inspection(store, 1, request_id="r-1", reply_for=reply_for)
    assert dup.value.reply == first
    assert count(raw_engine, "inspections") == 1

    # A restart: a new Store on the same database still knows the request.
    store.close()
    again = Store(db_url)
    try:
        with pytest.raises(DuplicateRequest) as dup2:
            new_inspection(again, 2, request_id="r-1", reply_for=reply_for)
        assert dup2.value.reply == first
        assert again.refuse_registration("r-1", {"accepted": False}, at(3)) == first
        assert count(raw_engine, "inspections") == 1
        assert again.inspection(iid).request_id == "r-1"
        assert again.inspection(iid).line == "L1"
    finally:
        again.close()


def test_a_refusal_is_kept_and_repeated(store: Store, raw_engine: Engine) -> None:
    refusal = {
        "request_id": "r-bad",
        "accepted": False,
        "error": {"code": "invalid_vin", "field": "vehicle.vin", "message": "VIN 鲁 bad"},
    }
    assert store.refuse_registration("r-bad", refusal, T0) == refusal
    other = {**refusal, "error": {"code": "other", "field": "x", "message": "y"}}
    assert store.refuse_registration("r-bad", other, at(1)) == refusal
    assert store.registration_reply("r-bad") == refusal
    assert store.registration_reply("r-unknown") is None
    with pytest.raises(DuplicateRequest) as dup:
        new_inspection(store, request_id="r-bad")
    assert dup.value.reply == refusal
    assert count(raw_engine, "inspections") == 0


def test_a_failing_reply_builder_leaves_nothing_behind(store: Store, raw_engine: Engine) -> None:
    def broken(new_id: str) -> dict:
        raise RuntimeError("reply builder failed")

    with pytest.raises(RuntimeError):
        new_inspection(store, request_id="r-2", reply_for=broken)
    assert count(raw_engine, "inspections") == 0
    assert store.registration_reply("r-2") is None
    assert new_inspection(store, request_id="r-2") == "zc01-20261127-0001"


# -- attempts ----------------------------------------------------------------------


def test_attempts_are_numbered_per_item_and_raw_arrays_round_trip_compactly(
    store: Store, raw_engine: Engine
) -> None:
    iid = new_inspection(store)
    first = brake_result("B1", Verdict.FAIL)
    assert len(first.raw["left"]) == 1000
    n1 = store.record_attempt(
        inspection_id=iid,
        result=first,
        station="brake",
        device="rbt-1",
        started_at=at(1),
        finished_at=at(2),
    )
    n2 = store.record_attempt(
        inspection_id=iid,
        result=brake_result("B1", Verdict.PASS),
        station="brake",
        device="rbt-1",
        started_at=at(3),
        finished_at=at(4),
    )
    n3 = store.record_attempt(
        inspection_id=iid,
        result=not_judged("H1", "device_fault"),
        station="headlamp",
        device=None,
        started_at=at(5),
        finished_at=at(6),
    )
    assert (n1, n2, n3) == (1, 2, 1)

    rec = store.inspection(iid)
    b1 = [a for a in rec.attempts if a.item_code == "B1"]
    assert [(a.attempt_no, a.verdict, a.latest) for a in b1] == [
        (1, Verdict.FAIL, False),
        (2, Verdict.PASS, True),
    ]
    assert b1[0].values == first.values and b1[0].limits == first.limits
    assert b1[0].curve == first.curve and b1[0].device == "rbt-1"
    h1 = rec.latest_attempts()["H1"]
    assert (h1.verdict, h1.reason, h1.device, h1.raw_bytes) == (
        Verdict.NOT_JUDGED,
        "device_fault",
        None,
        0,
    )
    assert store.attempt_raw(h1.id) == {}

    raw = store.attempt_raw(b1[0].id)
    assert list(raw) == ["left", "right"]
    for name in ("left", "right"):
        assert raw[name].dtype == np.int16
        np.testing.assert_array_equal(raw[name], first.raw[name])

    # One blob per attempt, never one row per sample: 2 x 1000 int16 samples are
    # 4000 bytes; the stored blob is no bigger than that plus a small header.
    with raw_engine.connect() as c:
        stored = c.execute(
            text("SELECT length(raw) FROM attempts WHERE id = :id"), {"id": b1[0].id}
        ).scalar_one()
    assert stored == b1[0].raw_bytes
    assert 0 < stored <= 4000 + 128
    assert count(raw_engine, "attempts") == 3

    with pytest.raises(NotFound, match="no attempt 999"):
        store.attempt_raw(999)
    with pytest.raises(NotFound, match="no inspection"):
        store.record_attempt(
            inspection_id="zc01-20000101-0001",
            result=first,
            station="brake",
            device="rbt-1",
            started_at=at(1),
            finished_at=at(2),
        )


def test_numpy_values_and_nan_are_stored_as_plain_json(store: Store) -> None:
    iid = new_inspection(store)
    result = ItemResult(
        "EX",
        Verdict.NOT_JUDGED,
        values={"co_pct": np.float64(0.31), "rpm": np.int64(820), "k": math.nan},
        limits={"co_pct": 0.6},
        reason="invalid_phase",
        raw={"rpm": np.array([800, 820, 810], dtype=np.int32)},
    )
    store.record_attempt(
        inspection_id=iid,
        result=result,
        station="emission",
        device="nha503",
        started_at=at(1),
        finished_at=at(2),
    )
    a = store.inspection(iid).attempts[0]
    assert a.values == {"co_pct": 0.31, "rpm": 820, "k": None}
    assert type(a.values["rpm"]) is int


def test_blobs_keep_dtype_and_shape_and_refuse_what_is_not_numeric() -> None:
    arrays = {
        "flags": np.array([True, False, True]),
        "grid": np.arange(12, dtype=">f4").reshape(3, 4),  # big-endian in, native out
        "z": np.array([1 + 2j], dtype=np.complex128),
        "empty": np.zeros((0,), dtype=np.uint16),
    }
    out = unpack_arrays(pack_arrays(arrays))
    assert list(out) == list(arrays)
    for name, a in arrays.items():
        assert out[name].shape == a.shape
        assert out[name].dtype.kind == a.dtype.kind
        np.testing.assert_array_equal(out[name], a)
    out["grid"][0, 0] = 99.0  # a private, writable copy
    noisy = {"x": np.random.default_rng(1).standard_normal(100)}
    assert len(pack_arrays(noisy)) <= 100 * 8 + 64  # stored uncompressed when zlib won't help
    with pytest.raises(BlobError, match="not numeric"):
        pack_arrays({"s": np.array(["a"], dtype=object)})
    with pytest.raises(BlobError, match="bad magic"):
        unpack_arrays(b"nope")
    with pytest.raises(BlobError, match="corrupt"):
        unpack_arrays(pack_arrays(brake_curve())[:-10])


# -- verdicts and the outbox ----------------------------------------------------------


def attempt(s: Store, iid: str, result: ItemResult, minutes: float) -> int:
    return s.record_attempt(
        inspection_id=iid,
        result=result,
        station="brake" if result.code.startswith("B") else "headlamp",
        device="rbt-1" if result.code.startswith("B") else "hlt-1",
        started_at=at(minutes),
        finished_at=at(minutes + 1),
    )


def test_the_verdict_comes_from_the_latest_attempts_and_a_retest_is_the_next_revision(
    store: Store,
) -> None:
    iid = new_inspection(store, items=["B1", "B2", "H1"], request_id="r-7")
    store.set_state(iid, InspectionState.IN_PROGRESS, at(1))
    attempt(store, iid, brake_result("B1", Verdict.PASS), 2)
    attempt(store, iid, brake_result("B2", Verdict.FAIL), 3)
    attempt(store, iid, ItemResult("H1", Verdict.PASS, values={"intensity_cd": 21000}), 4)
    rec1 = store.complete_inspection(iid, at=at(5))
    assert (rec1.verdict, rec1.revision, rec1.state) == (
        InspectionVerdict.FAIL,
        1,
        InspectionState.COMPLETED,
    )
    assert rec1.finished_at == at(5) and rec1.started_at == at(1)

    # Retest of the failed item only; started_at stays the first start.
    store.set_state(iid, InspectionState.IN_PROGRESS, at(10))
    assert attempt(store, iid, brake_result("B2", Verdict.PASS), 11) == 2
    rec2 = store.complete_inspection(iid, at=at(12))
    assert (rec2.verdict, rec2.revision) == (InspectionVerdict.PASS, 2)
    assert rec2.started_at == at(1) and rec2.finished_at == at(12)
    assert rec2.latest_attempts()["B2"].attempt_no == 2
    assert rec2.attempt_numbers("B2") == [1, 2]

    payloads = [json.loads(o.payload) for o in store.outbox(iid)]
    assert [(p["revision"], p["verdict"]) for p in payloads] == [(1, "fail"), (2, "pass")]
    b2 = next(i for i in payloads[1]["items"] if i["code"] == "B2")
    assert (b2["attempt"], b2["verdict"]) == (2, "pass")
    assert payloads[1]["request_id"] == "r-7"


def test_an_item_without_attempt_leaves_the_inspection_incomplete(store: Store) -> None:
    iid = new_inspection(store, items=["B1", "H1"])
    attempt(store, iid, brake_result("B1", Verdict.PASS), 1)
    rec = store.complete_inspection(iid, at=at(2))
    assert rec.verdict is InspectionVerdict.INCOMPLETE
    assert rec.item_verdicts() == {"B1": Verdict.PASS, "H1": Verdict.NOT_JUDGED}
    h1 = next(i for i in default_result_document(rec)["items"] if i["code"] == "H1")
    assert h1 == {
        "code": "H1",
        "verdict": "not_judged",
        "attempt": 0,
        "station": None,
        "device": None,
        "values": {},
        "limits": {},
        "curve": None,
        "reason": "not_tested",
    }


def test_the_outbox_row_is_committed_with_the_result_and_only_with_it(
    db_url: str, store: Store, raw_engine: Engine
) -> None:
    iid = new_inspection(store, items=["B1"])
    attempt(store, iid, brake_result("B1", Verdict.PASS), 1)

    def broken(record) -> dict:
        # Called after the verdict and revision were written in the transaction.
        assert record.revision == 1 and record.verdict is InspectionVerdict.PASS
        raise RuntimeError("document builder failed")

    with pytest.raises(RuntimeError):
        store.complete_inspection(iid, at=at(2), result_document=broken)
    with raw_engine.connect() as c:
        row = c.execute(text("SELECT state, revision, verdict, finished_at FROM inspections")).one()
    assert tuple(row) == ("registered", 0, None, None)
    assert count(raw_engine, "outbox") == 0

    rec = store.complete_inspection(
        iid, at=at(3), result_document=lambda r: {"custom": r.id, "revision": r.revision}
    )
    # Seen from another connection (as after a crash and restart): both are there.
    other = Store(db_url)
    try:
        (pending,) = other.pending_outbox()
        assert json.loads(pending.payload) == {"custom": iid, "revision": 1}
        assert (pending.kind, pending.inspection_id, pending.revision) == ("result", iid, 1)
        assert pending.created_at == at(3)
        assert other.inspection(iid).revision == rec.revision == 1
    finally:
        other.close()


def test_pending_outbox_is_oldest_first_until_delivered(store: Store) -> None:
    ids = []
    for k in range(3):
        iid = new_inspection(store, k, items=["B1"])
        attempt(store, iid, brake_result("B1", Verdict.PASS), k + 0.5)
        store.complete_inspection(iid, at=at(k + 0.8))
        ids.append(iid)
    pending = store.pending_outbox()
    assert [p.inspection_id for p in pending] == ids
    assert [p.id for p in pending] == sorted(p.id for p in pending)
    assert store.outbox_backlog() == 3
    assert [p.inspection_id for p in store.pending_outbox(limit=2)] == ids[:2]

    store.note_outbox_failure(pending[0].id, "broker unreachable")
    store.note_outbox_failure(pending[0].id, "timeout")
    head = store.pending_outbox()[0]
    assert (head.attempts, head.last_error, head.delivered_at) == (2, "timeout", None)

    store.mark_delivered([pending[0].id, pending[2].id], at(10))
    assert [p.inspection_id for p in store.pending_outbox()] == [ids[1]]
    assert store.outbox_backlog() == 1
    store.mark_delivered([pending[0].id], at(20))  # a late second ack keeps the first time
    assert store.outbox(ids[0])[0].delivered_at == at(10)
    store.mark_delivered([], at(30))
    assert store.outbox_backlog() == 1


def test_the_default_result_document_has_every_field_of_the_contract(store: Store) -> None:
    store.sync_proxy_drivers("L1", [("D1", "Wang Wei", True), ("D3", "Zhang Min", True)], T0)
    iid = new_inspection(store, items=["B1", "H1"], request_id="r-20261127-0001", line="L1")
    store.record_draw(line="L1", inspection_id=iid, candidates=["D1", "D3"], chosen="D3", at=at(1))
    store.set_state(iid, "in_progress", at(2))
    attempt(store, iid, brake_result("B1", Verdict.PASS), 3)
    attempt(store, iid, not_judged("H1", "device_fault"), 5)
    store.complete_inspection(iid, at=at(7))
    (row,) = store.outbox(iid)
    doc = json.loads(row.payload)
    assert set(doc) >= {
        "schema",
        "inspection_id",
        "request_id",
        "revision",
        "site",
        "line",
        "inspection_type",
        "vehicle",
        "proxy_driver",
        "started_at",
        "finished_at",
        "verdict",
        "items",
    }
    assert doc["schema"] == RESULT_SCHEMA
    assert (doc["inspection_id"], doc["request_id"], doc["revision"]) == (iid, "r-20261127-0001", 1)
    assert (doc["site"], doc["line"], doc["inspection_type"]) == ("zc01", "L1", "periodic")
    assert doc["vehicle"]["vin"] == make_vehicle().vin and doc["vehicle"]["plate"] == "鲁G12345"
    draw = store.draws()[-1]
    assert doc["proxy_driver"] == {
        "id": "D3",
        "assigned_at": "2026-11-27T09:01:00.000Z",
        "candidates": ["D1", "D3"],
        # the vehicles drawn among (issue 15): this one alone, its draw named it
        "vehicles": [iid],
        # anchors of the draw chain for the registry (fields added to mqtt.md's)
        "draw_seq": draw.seq,
        "draw_hash": draw.hash,
    }
    assert (doc["started_at"], doc["finished_at"]) == (
        "2026-11-27T09:02:00.000Z",
        "2026-11-27T09:07:00.000Z",
    )
    assert doc["verdict"] == "incomplete"
    b1, h1 = doc["items"]
    assert set(b1) == {
        "code",
        "verdict",
        "attempt",
        "station",
        "device",
        "values",
        "limits",
        "curve",
    }
    assert (b1["code"], b1["verdict"], b1["attempt"], b1["station"], b1["device"]) == (
        "B1",
        "pass",
        1,
        "brake",
        "rbt-1",
    )
    assert b1["limits"] == {"axle_rate_pct": 60, "imbalance_pct": 24}
    assert b1["curve"].startswith("1@6#5$")
    assert (h1["verdict"], h1["reason"], h1["curve"]) == ("not_judged", "device_fault", None)


# -- inspections lifecycle and lists ----------------------------------------------------


def test_states_lists_and_unfinished_inspections(store: Store) -> None:
    a = new_inspection(store, 0, items=["B1", "H1"])
    b = new_inspection(store, 1, items=["B1"])
    c = new_inspection(store, 2, items=["B1"])
    store.assign_line(a, "L1")
    store.assign_line(b, "L2")
    store.set_state(a, "queued", at(3))
    store.set_state(a, "in_progress", at(4))
    store.set_state(a, "queued", at(5))
    store.set_state(a, "in_progress", at(6))
    attempt(store, a, brake_result("B1", Verdict.FAIL), 7)
    store.set_state(c, "aborted", at(8), reason="vehicle left the line")
    with pytest.raises(ValueError, match="complete_inspection"):
        store.set_state(b, "completed", at(9))
    with pytest.raises(ValueError):
        store.set_state(b, "parked", at(9))
    with pytest.raises(NotFound, match="no inspection nope"):
        store.set_state("nope", "queued", at(9))

    ra = store.inspection(a)
    assert (ra.state, ra.started_at, ra.line) == (InspectionState.IN_PROGRESS, at(4), "L1")
    rc = store.inspection(c)
    assert (rc.state, rc.abort_reason, rc.finished_at) == (
        InspectionState.ABORTED,
        "vehicle left the line",
        at(8),
    )

    assert [r.id for r in store.unfinished_inspections()] == [a, b]
    listed = store.list_inspections()
    assert [r.id for r in listed] == [c, b, a]
    # Before completion an item without an attempt is pending, not "not judged".
    assert (listed[2].failed_items, listed[2].not_judged_items) == (["B1"], [])
    assert [r.id for r in store.list_inspections(limit=2)] == [c, b]
    assert [r.id for r in store.list_inspections(line="L1")] == [a]
    assert [r.id for r in store.list_inspections(state="aborted")] == [c]

    store.complete_inspection(a, at=at(10))
    done = store.list_inspections(state=InspectionState.COMPLETED)[0]
    assert (done.verdict, done.failed_items, done.not_judged_items) == (
        InspectionVerdict.FAIL,
        ["B1"],
        ["H1"],
    )


# -- draws --------------------------------------------------------------------------


def draw_some(s: Store, n: int) -> list[str]:
    s.sync_proxy_drivers("L1", [(f"D{k}", f"driver {k}", True) for k in range(1, 5)], T0)
    s.sync_proxy_drivers("L2", [(f"E{k}", f"driver {k}", True) for k in range(1, 5)], T0)
    ids = []
    for k in range(n):
        line = "L1" if k % 2 == 0 else "L2"
        pool = [f"{'D' if line == 'L1' else 'E'}{j}" for j in range(1, 5)]
        iid = new_inspection(s, k, line=line)
        ids.append(iid)
        rec = s.record_draw(
            line=line, inspection_id=iid, candidates=pool, chosen=pool[k % 4], at=at(k + 0.5)
        )
        assert rec.seq == k + 1
    return ids


def test_draws_chain_and_verify(store: Store) -> None:
    ids = draw_some(store, 5)
    chain = store.draws()
    assert [d.seq for d in chain] == [1, 2, 3, 4, 5]
    assert chain[0].prev_hash == "0" * 64
    assert all(chain[k].prev_hash == chain[k - 1].hash for k in range(1, 5))
    assert all(d.hash == d.content_hash() for d in chain)
    assert [d.seq for d in store.draws("L2")] == [2, 4]
    assert store.inspection(ids[1]).proxy_driver_id == "E2"
    assert store.inspection(ids[1]).draw == chain[1]
    report = store.verify_draws()
    assert (report.ok, report.checked, report.first_bad_seq, report.problem) == (
        True,
        5,
        None,
        None,
    )

    with pytest.raises(ValueError, match="not among"):
        store.record_draw(line="L1", inspection_id=ids[0], candidates=["D1"], chosen="D2", at=T0)
    with pytest.raises(NotFound, match="no proxy driver X9"):
        store.record_draw(line="L1", inspection_id=ids[0], candidates=["X9"], chosen="X9", at=T0)


def test_a_field_altered_by_hand_is_named(store: Store, raw_engine: Engine) -> None:
    draw_some(store, 4)
    with raw_engine.begin() as c:
        c.execute(text("UPDATE draws SET chosen = 'D4' WHERE seq = 3"))
    report = store.verify_draws()
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 3, 3)
    assert "seq 3" in report.problem and "altered" in report.problem


def test_a_deleted_record_is_named(store: Store, raw_engine: Engine) -> None:
    draw_some(store, 5)
    with raw_engine.begin() as c:
        c.execute(text("DELETE FROM draws WHERE seq = 2"))
    report = store.verify_draws()
    assert (report.ok, report.first_bad_seq) == (False, 2)
    assert "seq 2 missing" in report.problem

    with raw_engine.begin() as c:
        c.execute(text("DELETE FROM draws WHERE seq = 1"))
    report = store.verify_draws()
    assert (report.ok, report.first_bad_seq, report.checked) == (False, 1, 1)
    assert "seq 1..2 missing" in report.problem


def test_a_broken_link_is_named(store: Store, raw_engine: Engine) -> None:
    draw_some(store, 4)
    with raw_engine.begin() as c:
        c.execute(text("UPDATE draws SET prev_hash = :h WHERE seq = 4"), {"h": "f" * 64})
    report = store.verify_draws()
    assert (report.ok, report.first_bad_seq) == (False, 4)
    assert "prev_hash does not link to seq 3" in report.problem


# -- proxy drivers ------------------------------------------------------------------


def test_proxy_drivers_follow_the_config_and_every_change_is_logged(store: Store) -> None:
    store.sync_proxy_drivers("L1", [("D1", "Wang Wei", True), ("D2", "Li Na", False)], T0)
    assert [(d.id, d.name, d.state) for d in store.proxy_drivers("L1")] == [
        ("D1", "Wang Wei", DriverState.ON_DUTY),
        ("D2", "Li Na", DriverState.OFF_DUTY),
    ]
    store.set_driver_state("D1", DriverState.BREAK, at(1))
    store.set_driver_state("D1", "break", at(2))  # no change, no log entry
    # A restart with the same config keeps the break; D2 now on duty; D3 is new.
    store.sync_proxy_drivers(
        "L1", [("D1", "Wang Wei", True), ("D2", "Li Na", True), ("D3", "Zhang Min", True)], at(3)
    )
    # D3 dropped from the config: off duty but kept, since draws name it.
    store.sync_proxy_drivers("L1", [("D1", "Wang Wei", True), ("D2", "Li Na", True)], at(4))
    assert {d.id: d.state for d in store.proxy_drivers("L1")} == {
        "D1": DriverState.BREAK,
        "D2": DriverState.ON_DUTY,
        "D3": DriverState.OFF_DUTY,
    }
    log = [(e.driver_id, e.state, e.at) for e in store.duty_log()]
    assert log == [
        ("D1", DriverState.ON_DUTY, T0),
        ("D2", DriverState.OFF_DUTY, T0),
        ("D1", DriverState.BREAK, at(1)),
        ("D2", DriverState.ON_DUTY, at(3)),
        ("D3", DriverState.ON_DUTY, at(3)),
        ("D3", DriverState.OFF_DUTY, at(4)),
    ]
    assert [e.state for e in store.duty_log("D2")] == [DriverState.OFF_DUTY, DriverState.ON_DUTY]
    with pytest.raises(NotFound):
        store.set_driver_state("D9", "on_duty", at(5))


# -- the async front -------------------------------------------------------------------


async def test_async_store_runs_every_call_on_one_worker_thread(store: Store) -> None:
    astore = AsyncStore(store)
    threads: set[str] = set()

    def reply_for(new_id: str) -> dict:
        threads.add(threading.current_thread().name)
        return {"accepted": True, "inspection_id": new_id}

    loop_thread = threading.current_thread().name
    ids = await asyncio.gather(
        *(
            astore.create_inspection(
                site="zc01",
                vehicle=make_vehicle(k),
                inspection_type=PERIODIC,
                items=["B1"],
                at=at(k),
                request_id=f"r-{k}",
                reply_for=reply_for,
            )
            for k in range(20)
        )
    )
    assert sorted(ids) == [f"zc01-20261127-{k:04d}" for k in range(1, 21)]
    assert len(threads) == 1 and loop_thread not in threads
    assert next(iter(threads)).startswith("linectl-store")
    assert len(await astore.list_inspections(limit=100)) == 20
    assert await astore.registration_reply("r-3") == {"accepted": True, "inspection_id": ids[3]}
    await astore.aclose()
    await astore.aclose()


def test_two_writers_on_one_database_never_collide(db_url: str, store: Store) -> None:
    # Two Stores are two connection pools: the same contention as two processes.
    other = Store(db_url)
    store.sync_proxy_drivers("L1", [("D1", "", True), ("D2", "", True)], T0)
    errors: list[BaseException] = []

    def writer(s: Store, offset: int) -> None:
        try:
            for k in range(15):
                iid = new_inspection(s, offset + k, items=["B1"])
                attempt(s, iid, brake_result("B1", Verdict.PASS), offset + k)
                s.record_draw(
                    line="L1", inspection_id=iid, candidates=["D1", "D2"], chosen="D1", at=at(k)
                )
        except BaseException as e:
            errors.append(e)

    try:
        threads = [
            threading.Thread(target=writer, args=(s, 100 * n)) for n, s in enumerate((store, other))
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
    finally:
        other.close()
    assert errors == []
    ids = [r.id for r in store.list_inspections(limit=100)]
    assert sorted(ids) == [f"zc01-20261127-{k:04d}" for k in range(1, 31)]
    report = store.verify_draws()
    assert (report.ok, report.checked) == (True, 30)


# -- errors ----------------------------------------------------------------------------


def test_bad_urls_and_unreachable_databases_raise_one_line_store_errors(tmp_path) -> None:
    for url, words in [
        ("not a url", "not a valid URL"),
        ("nosuchdb://x/y", "nosuchdb"),
        (f"sqlite:///{tmp_path}/missing/dir/x.db", "unable to open database file"),
        ("postgresql+psycopg://u:secret@127.0.0.1:1/x", "127.0.0.1"),
    ]:
        with pytest.raises(StoreError) as e:
            s = Store(url)
            try:
                s.upgrade()
            finally:
                s.close()
        msg = str(e.value)
        assert words in msg and "\n" not in msg, msg
        assert "secret" not in msg
