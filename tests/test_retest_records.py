"""Retest in the store and its rules, on SQLite and PostgreSQL: a retest's row and its
queued inspection, attempts numbered on across visits, each revision published and
kept byte for byte, the visit's own draw; results published before the migration
taken over from the outbox; default items and every refusal of linectl.ops.retest."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import store_fixtures
from alembic import command
from sqlalchemy import create_engine, text
from store_fixtures import T0, at, brake_result, make_vehicle

from linectl.cli import main
from linectl.items import Verdict, not_judged
from linectl.ops.retest import RetestRequest, check_retest, default_items
from linectl.report.published import published_results as report_history
from linectl.report.published import retested_items, verification_code
from linectl.store import db
from linectl.store.base import DuplicateRequest
from linectl.store.records import InspectionRecord, InspectionState
from linectl.store.repo import Store
from linectl.store.retests import NotRetestable
from linectl.vehicle import InspectionType, InvalidField

SITE = "zc01"

db_url = store_fixtures.db_url
store = store_fixtures.store


def attempt(s: Store, iid: str, code: str, verdict: Verdict, minute: float) -> int:
    result = brake_result(code, verdict) if code.startswith("B") else not_judged(code, "x")
    return s.record_attempt(
        inspection_id=iid,
        result=result,
        station="brake" if code.startswith("B") else "headlamp",
        device=None,
        started_at=at(minute),
        finished_at=at(minute + 0.5),
    )


def failed_inspection(s: Store) -> str:
    """B2 failed, H1 not judged, B1 passed; drawn D3; completed (revision 1)."""
    s.sync_proxy_drivers("L1", [("D1", "Wang Wei", True), ("D3", "Zhang Min", True)], T0)
    iid = s.create_inspection(
        site=SITE,
        vehicle=make_vehicle(),
        inspection_type=InspectionType.PERIODIC,
        items=["B1", "B2", "BT", "H1"],
        at=at(0),
        request_id="r-1",
        line="L1",
    )
    s.record_draw(line="L1", inspection_id=iid, candidates=["D1", "D3"], chosen="D3", at=at(1))
    s.set_state(iid, "in_progress", at(2))
    attempt(s, iid, "B1", Verdict.PASS, 3)
    attempt(s, iid, "B2", Verdict.FAIL, 4)
    attempt(s, iid, "BT", Verdict.PASS, 5)
    attempt(s, iid, "H1", Verdict.NOT_JUDGED, 6)
    s.complete_inspection(iid, at=at(8))
    return iid


def retest_of(s: Store, iid: str, rid: str, items: list[str], minute: float) -> int:
    return s.create_retest(
        inspection_id=iid,
        request_id=rid,
        items=items,
        line="L1",
        at=at(minute),
        reply_for=lambda rev: {"request_id": rid, "accepted": True, "revision": rev},
    ).revision


def test_a_retest_is_the_next_revision_of_the_same_inspection(store: Store) -> None:
    iid = failed_inspection(store)
    assert retest_of(store, iid, "r-2", ["B2", "H1"], 20) == 2
    rec = store.inspection(iid)
    # Registered again for its line (the site then queues it, as a new registration);
    # verdict and revision still the last result's.
    assert (rec.state, rec.line, rec.verdict, rec.revision) == ("registered", "L1", "fail", 1)
    assert rec.visit_items() == ["B2", "H1"] and rec.started_at is None
    assert rec.draw is None and rec.proxy_driver_id is None  # no driver for this visit yet
    assert [u.id for u in store.unfinished_inspections()] == [iid]
    assert store.registration_reply("r-2") == {"request_id": "r-2", "accepted": True, "revision": 2}
    with pytest.raises(NotRetestable):
        retest_of(store, iid, "r-3", ["B2"], 21)
    with pytest.raises(DuplicateRequest):
        retest_of(store, iid, "r-1", ["B2"], 21)  # the first registration's request_id

    store.record_draw(line="L1", inspection_id=iid, candidates=["D1", "D3"], chosen="D1", at=at(22))
    store.set_state(iid, "in_progress", at(23))
    assert attempt(store, iid, "B2", Verdict.PASS, 24) == 2
    assert attempt(store, iid, "H1", Verdict.NOT_JUDGED, 25) == 2
    rec = store.complete_inspection(iid, at=at(26))
    assert (rec.revision, rec.verdict, rec.state) == (2, "incomplete", "completed")
    assert rec.started_at == at(23) and rec.finished_at == at(26)

    published = store.published_results(iid)
    assert [(p.revision, p.at) for p in published] == [(1, at(8)), (2, at(26))]
    outbox = store.outbox(iid)
    assert [p.payload for p in published] == [o.payload.encode("utf-8") for o in outbox]
    first, second = (p.document() for p in published)
    assert second["request_id"] == "r-2" and second["retested_items"] == ["B2", "H1"]
    assert "retested_items" not in first and first["request_id"] == "r-1"
    assert (first["proxy_driver"]["id"], second["proxy_driver"]["id"]) == ("D3", "D1")
    attempts = {i["code"]: (i["verdict"], i["attempt"]) for i in second["items"]}
    assert attempts == {
        "B1": ("pass", 1),
        "B2": ("pass", 2),
        "BT": ("pass", 1),
        "H1": ("not_judged", 2),
    }


def test_results_shows_the_revisions(
    db_url: str, store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    iid = failed_inspection(store)
    retest_of(store, iid, "r-2", ["B2"], 20)
    store.record_draw(line="L1", inspection_id=iid, candidates=["D1", "D3"], chosen="D1", at=at(22))
    attempt(store, iid, "B2", Verdict.PASS, 24)
    store.complete_inspection(iid, at=at(26))
    retest_of(store, iid, "r-3", ["H1"], 30)  # queued, not yet done
    store.set_state(iid, "queued", at(31))

    assert main(["results", iid, "--db", db_url]) == 0
    out = capsys.readouterr().out
    history = out.split("Revisions (")[1].split("\n\n")[0].splitlines()[2:]
    assert [row.split()[:4] for row in history] == [
        ["1", "first", "2026-11-27", "09:08:00Z"],
        ["2", "retest", "2026-11-27", "09:26:00Z"],
        ["3", "retest", "queued", "-"],
    ]
    assert history[0].split()[4:7] == ["fail", "D3", "r-1"]
    assert history[1].split()[4:] == ["incomplete", "D1", "r-2", "B2", "pass", "(#2)"]
    assert history[2].split()[-1] == "H1"

    assert main(["results", iid, "--json", "--db", db_url]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(h["revision"], h["state"], h["items_tested"]) for h in doc["revisions"]] == [
        (1, "completed", ["B1", "B2", "BT", "H1"]),
        (2, "completed", ["B2"]),
        (3, "queued", ["H1"]),
    ]
    assert doc["revision"] == 2 and doc["request_id"] == "r-2"


def test_every_revision_outlives_the_pruned_outbox(store: Store) -> None:
    iid = failed_inspection(store)
    retest_of(store, iid, "r-2", ["B2"], 20)
    attempt(store, iid, "B2", Verdict.PASS, 24)
    store.complete_inspection(iid, at=at(26))
    sent = [o.payload.encode("utf-8") for o in store.outbox(iid)]
    store.mark_delivered([o.id for o in store.outbox(iid)], at(27))
    assert store.prune_outbox(at(28)) == 2 and store.outbox(iid) == []
    assert [p.payload for p in store.published_results(iid)] == sent
    # The report's history and verification codes still come from them.
    history = report_history(store, iid)
    assert [(h.revision, h.code) for h in history] == [
        (n, verification_code(payload)) for n, payload in enumerate(sent, start=1)
    ]
    assert retested_items(history) == [["B1", "B2", "BT", "H1"], ["B2"]]


def test_a_retest_aborted_in_the_queue_has_no_driver(store: Store) -> None:
    iid = failed_inspection(store)
    retest_of(store, iid, "r-2", ["B2"], 20)
    rec = store.complete_inspection(iid, at=at(21), abort_reason="owner left")
    assert (rec.state, rec.revision, rec.verdict) == ("aborted", 2, "fail")
    doc = store.published_results(iid)[1].document()
    assert doc["proxy_driver"] is None and doc["aborted"] == "owner left"
    # An aborted visit may be retested again, and the abort is forgotten by the next one.
    assert retest_of(store, iid, "r-3", ["B2"], 22) == 3
    assert store.inspection(iid).abort_reason is None


def test_results_published_before_the_migration_are_kept(db_url: str) -> None:
    engine = create_engine(db_url)
    try:
        cfg = db.alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003_accounts")
            conn.execute(
                text(
                    "INSERT INTO inspections (id, site, inspection_type, vehicle, plate, vin, "
                    "items, state, revision, created_at) VALUES ('zc01-20261127-0001', 'zc01', "
                    "'periodic', '{}', 'P', 'V', '[]', 'completed', 1, :t)"
                ),
                {"t": T0},
            )
            payload = json.dumps({"inspection_id": "zc01-20261127-0001", "plate": "鲁G12345"})
            conn.execute(
                text(
                    "INSERT INTO outbox (kind, inspection_id, revision, payload, created_at, "
                    "attempts) VALUES ('result', 'zc01-20261127-0001', 1, :p, :t, 1)"
                ),
                {"p": payload, "t": T0 + timedelta(minutes=5)},
            )
    finally:
        engine.dispose()
    s = Store(db_url)
    try:
        s.upgrade()
        [kept] = s.published_results("zc01-20261127-0001")
        assert (kept.revision, kept.at, kept.payload) == (
            1,
            T0 + timedelta(minutes=5),
            payload.encode("utf-8"),
        )
    finally:
        s.close()


# --- the rules ------------------------------------------------------------------------


def request(rec: InspectionRecord, items: object = None, vin: object = None) -> RetestRequest:
    return RetestRequest("r-x", rec.id, rec.vin if vin is None else vin, items)


def refusal(rec: InspectionRecord, req: RetestRequest, **kw: object) -> tuple[str, str]:
    args = {"site_id": SITE, "now": at(100), "deadline": None} | kw
    with pytest.raises(InvalidField) as e:
        check_retest(req, rec, **args)  # type: ignore[arg-type]
    return e.value.code, e.value.field


def test_default_items_and_every_refusal(store: Store) -> None:
    rec = store.inspection(failed_inspection(store))
    # Failed and not judged; BT passed here, so no axle is added for it.
    assert default_items(rec) == ["B2", "H1"]
    plan = check_retest(request(rec), rec, site_id=SITE, now=at(100), deadline=None)
    assert (plan.items, plan.items_given, plan.revision) == (["B2", "H1"], False, 2)
    given = check_retest(request(rec, ["H1", "B1"]), rec, site_id=SITE, now=at(9), deadline=at(10))
    assert given.items == ["B1", "H1"] and given.items_given

    assert refusal(rec, request(rec), site_id="zc02") == ("unknown_inspection", "retest_of")
    assert refusal(rec, request(rec, vin="LSVAU218XN2183295")) == ("vin_mismatch", "vehicle.vin")
    assert refusal(rec, request(rec), deadline=at(99)) == ("retest_expired", "retest_of")
    for bad in ([], "B2", ["B2", "EX"], [3]):
        assert refusal(rec, request(rec, bad)) == ("invalid_items", "items"), bad

    # BT failing brings every axle along.
    iid = store.create_inspection(
        site=SITE,
        vehicle=make_vehicle(7, plate="京AD12345", axles=3, parking_axles=(2, 3)),
        inspection_type=InspectionType.PERIODIC,
        items=["B1", "B2", "B3", "BT"],
        at=at(30),
    )
    for code, verdict in (("B1", "pass"), ("B2", "pass"), ("B3", "pass"), ("BT", "fail")):
        attempt(store, iid, code, Verdict(verdict), 31)
    rec3 = store.complete_inspection(iid, at=at(32))
    assert default_items(rec3) == ["B1", "B2", "B3", "BT"]

    # Not retestable: passed, running, already being retested.
    ok = store.create_inspection(
        site=SITE,
        vehicle=make_vehicle(8, plate="京AD54321"),
        inspection_type=InspectionType.PERIODIC,
        items=["B1"],
        at=at(40),
    )
    assert refusal(store.inspection(ok), request(store.inspection(ok))) == (
        "not_retestable",
        "retest_of",
    )
    attempt(store, ok, "B1", Verdict.PASS, 41)
    passed = store.complete_inspection(ok, at=at(42))
    assert refusal(passed, request(passed)) == ("not_retestable", "retest_of")
    retest_of(store, rec.id, "r-2", ["B2"], 50)
    store.set_state(rec.id, "queued", at(51))
    again = store.inspection(rec.id)
    assert again.state is InspectionState.QUEUED
    assert refusal(again, request(again)) == ("not_retestable", "retest_of")


def registry_entry(action: str, outcome: str = "ok") -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A `journal_for` as linectl.ops gives it: the entry of an accepted request."""
    return lambda reply: {
        "at": at(30),
        "user": "registry",
        "role": "registry",
        "via": "mqtt",
        "action": action,
        "outcome": outcome,
        "target": f"inspection:{reply['inspection_id']}",
        "changes": {"request_id": reply["request_id"]},
    }


def test_a_registration_its_reply_and_its_entry_are_kept_together_or_not_at_all(
    store: Store,
) -> None:
    iid = failed_inspection(store)
    kept = (len(store.list_inspections(limit=50)), store.inspection(iid), store.journal())

    def register(rid: str, outcome: str) -> str:
        return store.create_inspection(
            site=SITE,
            vehicle=make_vehicle(plate="鲁G54321"),
            inspection_type=InspectionType.PERIODIC,
            items=["B1"],
            at=at(30),
            request_id=rid,
            reply_for=lambda i: {"request_id": rid, "accepted": True, "inspection_id": i},
            line="L1",
            journal_for=registry_entry("register", outcome),
        )

    def retest(rid: str, outcome: str) -> int:
        return store.create_retest(
            inspection_id=iid,
            request_id=rid,
            items=["B2"],
            line="L1",
            at=at(30),
            reply_for=lambda rev: {"request_id": rid, "inspection_id": iid, "revision": rev},
            journal_for=registry_entry("retest", outcome),
        ).revision

    # The journal entry is the last write of each transaction: refused there (an
    # outcome the journal does not know), the inspection, the retest and the reply
    # written before it in the same transaction are rolled back with it.
    with pytest.raises(ValueError, match="outcome"):
        register("r-5", "bogus")
    with pytest.raises(ValueError, match="outcome"):
        retest("r-6", "bogus")
    assert store.registration_reply("r-5") is None and store.registration_reply("r-6") is None
    assert (len(store.list_inspections(limit=50)), store.inspection(iid), store.journal()) == kept
    assert store.retests(iid) == []

    new = register("r-5", "ok")
    assert retest("r-6", "ok") == 2
    entries = store.journal()
    assert [(e.action, e.target, e.changes) for e in entries[:2]] == [
        ("retest", f"inspection:{iid}", {"request_id": "r-6"}),
        ("register", f"inspection:{new}", {"request_id": "r-5"}),
    ]
    assert entries[1].prev_hash == (kept[2][0].hash if kept[2] else "0" * 64)
    assert entries[0].prev_hash == entries[1].hash
    assert all(e.hash == e.content_hash() for e in entries)
    # A request_id known already: nothing written, the journal included.
    with pytest.raises(DuplicateRequest):
        register("r-5", "ok")
    assert len(store.journal()) == len(entries)
