"""`linectl db` and `linectl results` on SQLite and PostgreSQL, through linectl's
own argument parsing and dispatch (and once through the installed command)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import store_fixtures
from store_fixtures import T0, at, brake_result, make_vehicle

from linectl.cli import main
from linectl.items import Verdict, not_judged
from linectl.store.db import head_revision
from linectl.store.records import default_result_document
from linectl.store.repo import Store
from linectl.vehicle import InspectionType

db_url = store_fixtures.db_url
store = store_fixtures.store

HEAD = head_revision()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def touch(url: str) -> None:
    """Connect once: an empty database, also as an (empty) SQLite file."""
    s = Store(url)
    try:
        assert s.current_revision() is None
    finally:
        s.close()


# -- linectl db ------------------------------------------------------------------


def test_db_upgrade_is_idempotent_and_current_shows_the_head(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "db", "upgrade", "--db", db_url)
    assert code == 0 and f"schema upgraded from (empty) to {HEAD}" in out
    code, out, _ = run(capsys, "db", "upgrade", "--db", db_url)
    assert code == 0 and f"schema {HEAD} is current, nothing to do" in out
    code, out, _ = run(capsys, "db", "current", "--db", db_url)
    assert (code, out.strip().endswith(f"schema {HEAD} (head)")) == (0, True)
    s = Store(db_url)
    try:
        assert s.current_revision() == head_revision() == HEAD
    finally:
        s.close()


def test_db_current_on_a_database_without_schema(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    touch(db_url)
    code, out, _ = run(capsys, "db", "current", "--db", db_url)
    assert code == 1 and "no linectl schema (run `linectl db upgrade`)" in out


def test_db_upgrade_takes_the_url_from_the_site_config(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "site.toml"
    config.write_text(
        f"""
site_id = "zc01"
[database]
url = "{db_url}"
[[lines]]
id = "L1"
proxy_drivers = ["D1", "D2"]
io = {{ id = "io-L1", model = "lineio-modbus", transport = {{ kind = "tcp", port = 15021 }} }}
[[lines.stations]]
id = "brake"
kind = "brake"
devices = [{{ id = "rbt-L1", model = "rbt-modbus", transport = {{ kind = "tcp", port = 15020 }} }}]
""",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "db", "upgrade", "--config", str(config))
    assert code == 0 and HEAD in out
    code, out, _ = run(capsys, "db", "current", "--config", str(config))
    assert code == 0 and f"{HEAD} (head)" in out


def test_the_installed_command_upgrades(db_url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "linectl", "db", "upgrade", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert f"to {HEAD}" in done.stdout


def test_bad_or_unreachable_databases_end_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nothing-here.db"
    cases = [
        (("results", "--db", f"sqlite:///{missing}"), "no such file"),
        (("db", "current", "--db", f"sqlite:///{missing}"), "no such file"),
        (("results", "--db", "postgresql+psycopg://u:pw@127.0.0.1:1/x"), "Connection refused"),
        (("db", "upgrade", "--db", "not a url"), "not a valid URL"),
    ]
    for argv, words in cases:
        code, out, err = run(capsys, *argv)
        assert code == 2, (argv, out, err)
        assert err.count("\n") == 1 and words in err and "Traceback" not in err, err
        assert err.startswith(f"linectl {argv[0]}: ")
        assert "pw@" not in err
    assert not missing.exists()  # a reading command creates no database


# -- linectl results ---------------------------------------------------------------


@pytest.fixture
def populated(store: Store) -> Iterator[tuple[str, str, str]]:
    """Three inspections: a retested fail, an incomplete one, a fresh registration."""
    store.sync_proxy_drivers("L1", [("D1", "Wang Wei", True), ("D3", "Zhang Min", True)], T0)
    kw = {"site": "zc01", "inspection_type": InspectionType.PERIODIC}
    a = store.create_inspection(
        vehicle=make_vehicle(),
        items=["B1", "B2", "H1"],
        at=at(0),
        request_id="r-1",
        line="L1",
        **kw,
    )
    store.record_draw(line="L1", inspection_id=a, candidates=["D1", "D3"], chosen="D3", at=at(1))
    store.set_state(a, "in_progress", at(2))
    for code, verdict, minute in (
        ("B1", Verdict.PASS, 3),
        ("B2", Verdict.FAIL, 4),
        ("B2", Verdict.FAIL, 5),
    ):
        store.record_attempt(
            inspection_id=a,
            result=brake_result(code, verdict),
            station="brake",
            device="rbt-L1",
            started_at=at(minute),
            finished_at=at(minute + 0.5),
        )
    store.record_attempt(
        inspection_id=a,
        result=not_judged("H1", "device_fault"),
        station="headlamp",
        device="hlt-L1",
        started_at=at(6),
        finished_at=at(7),
    )
    store.complete_inspection(a, at=at(8))

    b = store.create_inspection(
        vehicle=make_vehicle(7, plate="京AD12345"), items=["B1", "H1"], at=at(10), line="L1", **kw
    )
    store.record_attempt(
        inspection_id=b,
        result=brake_result("B1", Verdict.PASS),
        station="brake",
        device="rbt-L1",
        started_at=at(11),
        finished_at=at(12),
    )
    store.complete_inspection(b, at=at(13))
    c = store.create_inspection(
        vehicle=make_vehicle(8, plate="粤B12345F"), items=["B1"], at=at(20), **kw
    )
    yield a, b, c


def test_results_lists_newest_first(
    db_url: str, populated: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    a, b, c = populated
    code, out, _ = run(capsys, "results", "--db", db_url)
    assert code == 0
    header, *rows = out.strip().splitlines()
    assert header.split()[:6] == ["ID", "PLATE", "LINE", "DRIVER", "STATE", "VERDICT"]
    assert [r.split()[0] for r in rows] == [c, b, a]
    assert rows[2].split() == [
        a,
        "鲁G12345",
        "L1",
        "D3",
        "completed",
        "fail",
        "B2",
        "H1",
        "2026-11-27",
        "09:08:00Z",
    ]
    assert rows[1].split()[4:8] == ["completed", "incomplete", "-", "H1"]
    assert rows[0].split()[1:6] == ["粤B12345F", "-", "-", "registered", "-"]
    # Wide plate characters take two columns: the columns still line up.
    assert len({r.index("completed") for r in rows[1:]}) == 1

    code, out, _ = run(capsys, "results", "--db", db_url, "--limit", "1")
    assert [r.split()[0] for r in out.strip().splitlines()[1:]] == [c]


def test_results_shows_one_inspection_in_full(
    db_url: str, populated: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    a, _, _ = populated
    code, out, _ = run(capsys, "results", a, "--db", db_url)
    assert code == 0
    assert f"Inspection {a}: verdict fail (state completed, revision 1)" in out
    assert "鲁G12345" in out and make_vehicle().vin in out
    assert "D3, drawn 2026-11-27 09:01:00Z from D1, D3 (draw seq 1)" in out
    items = out.split("Items (the latest attempt counts)")[1].split("Attempts")[0]
    assert "B2  fail        attempt 2 of 2  brake / rbt-L1" in items
    assert "values  axle_rate_pct=41.0  imbalance_pct=6.1" in items
    assert "limits  axle_rate_pct=60  imbalance_pct=24" in items
    assert "H1  not_judged  attempt 1 of 1  headlamp / hlt-L1" in items
    assert "reason  device_fault" in items
    attempts = out.split("\nAttempts\n")[1].splitlines()[1:]
    assert [(r.split()[0], r.split()[1], r.split()[2]) for r in attempts] == [
        ("B1", "1", "pass"),
        ("B2", "1", "fail"),
        ("B2", "2", "fail"),
        ("H1", "1", "not_judged"),
    ]


def test_results_json(
    db_url: str,
    store: Store,
    populated: tuple[str, str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    a, b, c = populated
    code, out, _ = run(capsys, "results", a, "--json", "--db", db_url)
    assert code == 0
    doc = json.loads(out)
    [revision] = doc.pop("revisions")  # the history: one result published
    assert doc == default_result_document(store.inspection(a))
    assert doc == json.loads(store.outbox(a)[0].payload)  # what was published
    [published] = store.published_results(a)
    assert published.payload == store.outbox(a)[0].payload.encode("utf-8")
    assert revision["revision"] == 1 and revision["verdict"] == doc["verdict"] == "fail"
    assert revision["sha256"] == published.sha256() and not revision["retest"]
    assert doc["schema"] == "linectl.result/1" and doc["proxy_driver"]["id"] == "D3"

    code, out, _ = run(capsys, "results", "--json", "--db", db_url)
    listed = json.loads(out)
    assert [r["inspection_id"] for r in listed] == [c, b, a]
    assert listed[2]["failed_items"] == ["B2"] and listed[2]["not_judged_items"] == ["H1"]
    assert listed[0]["verdict"] is None and listed[0]["plate"] == "粤B12345F"


def test_results_for_an_unknown_id(
    db_url: str, populated: tuple[str, str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(capsys, "results", "zc01-19990101-0001", "--db", db_url)
    assert (code, out) == (1, "")
    assert err.startswith("linectl results: no inspection zc01-19990101-0001")
    assert err.count("\n") == 1
    code, out, err = run(capsys, "results", "zc01-19990101-0001", "--json", "--db", db_url)
    assert (code, out) == (1, "")


def test_results_on_a_database_without_schema(
    db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    touch(db_url)
    code, _, err = run(capsys, "results", "--db", db_url)
    assert code == 2 and "run `linectl db upgrade`" in err
