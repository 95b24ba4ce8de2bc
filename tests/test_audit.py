"""`linectl audit`: the draw chain verifies on a fresh database and names the record
that was altered by hand; the fairness report compares shares with chance."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import store_fixtures
from sqlalchemy import Engine, text
from store_fixtures import T0, make_vehicle

from linectl.audit import chi_square_sf, fairness
from linectl.store.records import DrawRecord
from linectl.store.repo import Store
from linectl.vehicle import InspectionType

db_url = store_fixtures.db_url
store = store_fixtures.store
raw_engine = store_fixtures.raw_engine

DRIVERS = ["D1", "D2", "D3", "D4"]


def audit(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linectl", "audit", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def fill(s: Store, n: int) -> None:
    s.sync_proxy_drivers("L1", [(d, d, True) for d in DRIVERS], at=T0)
    rng = random.Random(4)
    for i in range(n):
        iid = s.create_inspection(
            site="zc01",
            vehicle=make_vehicle(1000 + i, plate=f"鲁G{10000 + i}"),
            inspection_type=InspectionType.PERIODIC,
            items=["B1"],
            at=T0,
        )
        cands = sorted(rng.sample(DRIVERS, rng.randint(1, 4)))
        s.record_draw(
            line="L1", inspection_id=iid, candidates=cands, chosen=rng.choice(cands), at=T0
        )


def test_verify_passes_then_names_the_altered_record(
    store: Store, db_url: str, raw_engine: Engine
) -> None:
    p = audit("verify", "--db", db_url)
    assert p.returncode == 0 and "0 record(s)" in p.stdout  # a fresh database
    fill(store, 6)
    p = audit("verify", "--db", db_url)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "intact: 6 record(s)" in p.stdout and "head: seq 6" in p.stdout
    with raw_engine.begin() as c:  # someone rewrites who drove vehicle 4
        c.execute(text("UPDATE draws SET chosen = 'D1', candidates = '[\"D1\"]' WHERE seq = 4"))
    p = audit("verify", "--db", db_url, "--json")
    report = json.loads(p.stdout)
    assert p.returncode == 1
    assert report["ok"] is False and report["first_bad_seq"] == 4
    p = audit("verify", "--db", db_url)
    assert "BROKEN at record seq 4" in p.stdout


def test_a_deleted_record_is_named(store: Store, db_url: str, raw_engine: Engine) -> None:
    fill(store, 5)
    with raw_engine.begin() as c:
        c.execute(text("DELETE FROM draws WHERE seq = 5"))
        c.execute(text("DELETE FROM draws WHERE seq = 3"))
    p = audit("verify", "--db", db_url)
    assert p.returncode == 1 and "seq 3" in p.stdout


def test_fairness_report(store: Store, db_url: str) -> None:
    fill(store, 40)
    p = audit("fairness", "--db", db_url, "--json")
    (line,) = json.loads(p.stdout)
    assert line["draws"] == 40
    assert sum(d["drawn"] for d in line["drivers"]) == 40
    assert abs(sum(d["expected"] for d in line["drivers"]) - 40) < 0.05


def _draw(seq: int, cands: list[str], chosen: str) -> DrawRecord:
    return DrawRecord(seq, "L1", f"I{seq}", cands, chosen, T0, "", "")


def test_expected_shares_follow_the_candidates() -> None:
    # Two draws among D1/D2 and one where D3 was alone: D3 is expected exactly once.
    (f,) = fairness(
        [_draw(1, ["D1", "D2"], "D1"), _draw(2, ["D1", "D2"], "D2"), _draw(3, ["D3"], "D3")]
    )
    assert {s.driver: s.expected for s in f.shares} == {"D1": 1.0, "D2": 1.0, "D3": 1.0}
    assert f.p_value is None  # far too few draws to judge


def test_a_driver_who_always_wins_is_flagged() -> None:
    draws = [_draw(i, DRIVERS, "D2") for i in range(40)]
    (f,) = fairness(draws)
    assert f.suspicious and f.p_value is not None and f.p_value < 1e-6
    assert chi_square_sf(f.chi_square, 3) == f.p_value
