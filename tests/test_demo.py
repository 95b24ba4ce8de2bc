"""`linectl demo` through its real entry point: progress, table, JSON summary, database."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path


def test_demo_runs_whole_inspections_and_writes_its_summary(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    summary = tmp_path / "summary.json"
    p = subprocess.run(
        [
            sys.executable, "-m", "linectl", "demo",
            "--vehicles", "3", "--time-scale", "100", "--seed", "4",
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
    doc = json.loads(summary.read_text(encoding="utf-8"))
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


def test_demo_refuses_an_unknown_station_kind() -> None:
    p = subprocess.run(
        [sys.executable, "-m", "linectl", "demo", "--stations", "brake,wash"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert "--stations" in p.stderr and "Traceback" not in p.stderr
