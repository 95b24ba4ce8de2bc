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


def test_choice_per_draw_counts_drivers_and_vehicles() -> None:
    from linectl.audit import Choice

    draws = [
        DrawRecord(1, "L1", "I1", ["D1"], "D1", T0, "", ""),  # the old record: one of one
        DrawRecord(2, "L1", "I2", ["D1", "D2"], "D2", T0, "", "", vehicles=["I2", "I3"]),
        DrawRecord(3, "L1", "I3", ["D3"], "D3", T0, "", "", vehicles=["I3"]),
    ]
    c = Choice.of(draws)
    assert c.draws == 3
    assert c.bits_per_draw == (0 + 2 + 0) / 3
    assert c.single_candidate_share == 2 / 3
    (f,) = fairness(draws)
    assert f.to_json()["bits_per_draw"] == round(2 / 3, 3)
    assert f.to_json()["single_candidate_share"] == round(2 / 3, 3)
    assert [d["draws"] for d in f.to_json()["days"]] == [3]


def test_a_driver_who_gets_one_region_far_beyond_chance_is_flagged() -> None:
    rng = random.Random(9)
    draws, vehicles = [], {}
    for i in range(400):
        region = "鲁G" if i % 5 == 0 else "鲁B"
        iid = f"I{i}"
        vehicles[iid] = (f"{region}{10000 + i}", f"VIN{i:014d}")
        # D1 gets every 鲁G vehicle though all four were candidates; the rest fair.
        chosen = "D1" if region == "鲁G" else rng.choice(DRIVERS)
        draws.append(DrawRecord(i + 1, "L1", iid, DRIVERS, chosen, T0, "", "", vehicles=[iid]))
    (f,) = fairness(draws, vehicles)
    flagged = [c for c in f.clusters if c.flagged]
    assert f.clustered and flagged[0].driver == "D1" and flagged[0].value == "鲁G"
    assert flagged[0].drawn == 80 and abs(flagged[0].expected - 20) < 1e-9
    # The same draws, fair: nothing flagged (a fixed seed; Bonferroni keeps it quiet).
    fair = [
        DrawRecord(d.seq, "L1", d.inspection_id, DRIVERS, rng.choice(DRIVERS), T0, "", "")
        for d in draws
    ]
    (g,) = fairness(fair, vehicles)
    assert not g.clustered and g.to_json()["clustering"]["flagged"] is False


def test_fairness_cli_prints_the_choice_and_clustering(store: Store, db_url: str) -> None:
    fill(store, 20)
    p = audit("fairness", "--db", db_url)
    assert p.returncode == 0, p.stderr
    assert "bits per draw" in p.stdout and "single candidate" in p.stdout
    assert "clustering:" in p.stdout or "CLUSTERED" in p.stdout
    (line,) = json.loads(audit("fairness", "--db", db_url, "--json").stdout)
    assert {"draws", "bits_per_draw", "single_candidate_share"} <= set(line)
    assert line["draws"] == 20 and 0 <= line["single_candidate_share"] <= 1
