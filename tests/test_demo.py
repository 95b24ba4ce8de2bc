"""`linectl demo` through its real entry point: progress, table, JSON summary, database."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx


def test_demo_runs_whole_inspections_and_writes_its_summary(tmp_path: Path) -> None:
    # Scale 25: every item judged as built needs the APPLY prompt within its 2 s of
    # slack, 80 ms of real time here (see site_fixtures.E2E_SCALE).
    db = tmp_path / "demo.db"
    summary = tmp_path / "summary.json"
    p = subprocess.run(
        [
            sys.executable, "-m", "linectl", "demo",
            "--vehicles", "3", "--time-scale", "25", "--seed", "4",
            "--db", f"sqlite:///{db}", "--summary-json", str(summary),
        ],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    out = p.stdout
    assert out.count("/3  L1") == 3  # one progress line per finished inspection
    assert "inspection" in out and "simulated fault" in out  # the table
    assert "3/3 as the simulated vehicles were built" in out
    # lifts, heads and analysers took their time and the daemon waited for every one
    assert "protocol violations seen by the simulated instruments: 0\n" in out
    doc = json.loads(summary.read_text(encoding="utf-8"))
    assert doc["protocol_violations"] == 0, doc["protocol_violations_by_kind"]
    assert len(doc["inspections"]) == 3
    for r in doc["inspections"]:
        assert set(r) >= {
            "inspection_id",
            "plate",
            "proxy_driver",
            "verdict",
            "items",
            "expected_faults",
        }
        assert r["verdict"] in ("pass", "fail", "incomplete")
        assert {"B1", "BT", "H1"} <= set(r["items"])
    (line,) = doc["lines"]
    assert line["line"] == "L1" and "bound_per_hour" in line and "vehicles_per_hour" in line
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT id, state, verdict, proxy_driver_id FROM inspections").fetchall()
        attempts = c.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        draws = c.execute("SELECT COUNT(*) FROM draws").fetchone()[0]
        outbox = c.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'result'").fetchone()[0]
    assert {r[0] for r in rows} == {r["inspection_id"] for r in doc["inspections"]}
    assert all(r[1] == "completed" and r[3] for r in rows)
    assert draws == 3 and outbox == 3
    assert attempts >= sum(len(r["items"]) for r in doc["inspections"])


def test_demo_sends_every_failed_vehicle_back_for_its_retest(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    summary = tmp_path / "summary.json"
    # Seed 2: two of the first four vehicles have a brake fault.
    p = subprocess.run(
        [
            sys.executable, "-m", "linectl", "demo", "--vehicles", "4", "--stations", "brake",
            "--time-scale", "100", "--seed", "2", "--retest-rate", "1", "--repair-rate", "1",
            "--http", "off", "--db", f"sqlite:///{db}", "--summary-json", str(summary),
        ],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Traceback" not in p.stderr
    doc = json.loads(summary.read_text(encoding="utf-8"))
    rows = doc["inspections"]
    assert len(rows) == 4
    failed = [r for r in rows if r["first_verdict"] != "pass"]
    assert len(failed) >= 2  # the two faulty ones at least
    for r in rows:
        # Every vehicle that did not pass came back once; the others did not.
        assert r["revisions"] == (2 if r in failed else 1), r
    for r in failed:
        if r["expected_faults"]:
            assert r["repaired_faults"] == r["expected_faults"]  # --repair-rate 1
    rates = doc["pass_rates"]
    assert rates["vehicles"] == 4 and rates["retested"] == len(failed)
    assert rates["first_time_pass"] == 4 - len(failed)
    assert rates["after_retest_pass"] == rates["first_time_pass"] + rates["passed_on_retest"]
    assert doc["retests"]["sent_back"] == doc["retests"]["retested"] == len(failed)
    out = p.stdout
    assert out.count(" retest  L1 ") == len(failed)  # one progress line per retest
    assert f"first-time pass rate {4 - len(failed)}/4" in out
    assert f"after retest {rates['after_retest_pass']}/4" in out
    with sqlite3.connect(db) as c:
        published = c.execute("SELECT COUNT(*) FROM published_results").fetchone()[0]
        draws = c.execute("SELECT COUNT(*) FROM draws").fetchone()[0]
        retests = c.execute("SELECT COUNT(*) FROM journal WHERE action = 'retest'").fetchone()[0]
    assert published == draws == 4 + len(failed)
    assert retests == len(failed)


def test_demo_refuses_an_unknown_station_kind() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "linectl", "demo", "--stations", "brake,wash"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert "--stations" in p.stderr and "Traceback" not in p.stderr


async def test_demo_with_no_vehicles_serves_the_console_until_ctrl_c(tmp_path: Path) -> None:
    """What a new operator does: start the demo, sign in with the printed login,
    register a vehicle by hand, watch it finish; Ctrl-C ends with the table."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linectl", "demo", "--vehicles", "0", "--http", "127.0.0.1:0",
        "--time-scale", "50", "--stations", "brake", "--db", f"sqlite:///{tmp_path / 'demo.db'}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(120):
            while not (line := (await proc.stdout.readline()).decode()).startswith("console: "):
                assert line, "the demo ended before printing its console URL"
            m = re.match(r"console: (http://\S+)\s+sign in as (\S+) / (\S+)", line)
            assert m, line
            url, name, password = m.groups()
            async with httpx.AsyncClient(base_url=url, timeout=60) as browser:
                page = await browser.get("/login")
                token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
                assert token
                r = await browser.post(
                    "/login", data={"name": name, "password": password, "csrf_token": token[1]}
                )
                assert r.status_code == 303
                home = await browser.get("/")
                csrf = re.search(r'name="csrf-token" content="([^"]+)"', home.text)
                assert home.status_code == 200 and csrf
                vehicle = {
                    "vin": "LSVAU218XN2183294", "plate": "鲁G12345", "vehicle_class": "M1",
                    "fuel": "petrol", "axles": 2, "parking_axles": [2], "curb_mass_kg": 1320,
                    "gross_mass_kg": 1750, "headlamp_system": 2, "max_design_speed_kmh": 180,
                }  # fmt: skip
                reg = {"request_id": "hall-1", "inspection_type": "new", "vehicle": vehicle,
                       "items": ["B1", "B2", "B0", "BT"]}  # fmt: skip
                r = await browser.post(
                    "/api/registrations", json=reg, headers={"X-CSRF-Token": csrf[1]}
                )
                assert r.status_code == 200, r.text
                iid = r.json()["inspection_id"]
                async with browser.stream(
                    "GET", "/api/events", params={"types": "completed"}
                ) as ev:
                    async for text in ev.aiter_lines():
                        if text.startswith("data: ") and iid in text:
                            break
                doc = (await browser.get(f"/api/inspections/{iid}")).json()
                assert doc["state"] == "completed" and doc["proxy_driver"]["id"].startswith("L1D")
            proc.send_signal(signal.SIGINT)
            out, err = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()[-3000:]
    assert "鲁G12345" in out.decode() and "1 inspections" in out.decode()


def test_demo_drivers_check_in_by_card_and_a_colluder_is_scored(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    summary = tmp_path / "summary.json"
    p = subprocess.run(
        [
            sys.executable, "-m", "linectl", "demo",
            "--vehicles", "5", "--time-scale", "25", "--seed", "3", "--stations", "brake",
            "--checkin", "input", "--colluder", "--http", "off",
            "--db", f"sqlite:///{db}", "--summary-json", str(summary),
        ],
        capture_output=True, text=True, timeout=240, cwd=tmp_path,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-3000:]
    assert "bits per draw" in p.stdout and "check-in input" in p.stdout
    doc = json.loads(summary.read_text(encoding="utf-8"))
    fig = doc["assignment"]["L1"]
    assert fig["draws"] == 5 and fig["checkin"] == "input" and fig["policy"].startswith("joint")
    assert fig["bits_per_draw"] > 0 and 0 <= fig["single_candidate_share"] < 1
    assert fig["colluder"]["chance"] == 0.25
    with sqlite3.connect(db) as c:
        rows = c.execute("SELECT inspection_id, vehicles FROM draws ORDER BY seq").fetchall()
    windows = [json.loads(v) for _, v in rows]
    assert all(iid in w and 1 <= len(w) <= 3 for (iid, _), w in zip(rows, windows, strict=True))
    assert max(len(w) for w in windows) == 3  # a morning queue: the first call had three
    refused = subprocess.run(
        [sys.executable, "-m", "linectl", "demo", "--vehicles", "1", "--colluder"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip
    assert refused.returncode == 2 and "--checkin" in refused.stderr
