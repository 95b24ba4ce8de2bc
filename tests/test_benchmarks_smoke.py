"""Each benchmark of benchmarks/ runs at its smallest size, so none of them rots.

They run as the README says to run them (one command, `--json FILE`), in a
subprocess; the figures are not judged here (a shared machine makes them
noise), only that the document has its fixed keys and that nothing was lost.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_benchmark(name: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / f"{name}.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "|---" in proc.stdout  # the table
    doc: dict[str, Any] = json.loads(out.read_text())
    assert doc["machine"]["date"] and doc["machine"]["load_avg_start"] >= 0
    return doc


def test_acquisition_one_station(tmp_path: Path) -> None:
    doc = run_benchmark(
        "acquisition",
        tmp_path,
        *("--stations", "1", "--seconds", "1.5", "--flat-seconds", "0.3", "--rounds", "1"),
        *("--max-test-ms", "1000", "--repeat", "1"),
    )
    (row,) = doc["runs"]
    keys = {"stations", "samples", "lost", "overruns", "p50_poll_ms", "p99_poll_ms"}
    keys |= {"req_per_s", "bare_req_per_s", "ratio_to_bare", "cpu_s_per_sample"}
    assert keys <= row.keys()
    assert row["stations"] == 1 and row["samples"] >= 100  # at least one whole run
    assert row["lost"] == 0 and row["overruns"] == 0
    assert row["req_per_s"] > 0 and row["bare_req_per_s"] > 0
    assert row["ratio_to_bare"] == round(row["req_per_s"] / row["bare_req_per_s"], 3)


def test_rtu_drain_and_two_controllers(tmp_path: Path) -> None:
    doc = run_benchmark(
        "rtu",
        tmp_path,
        *("--samples", "200", "--periods", "10", "--max-test-ms", "1000", "--repeat", "1"),
    )
    drain = doc["drain"]
    assert drain["samples"] == 200 and drain["lost"] == 0
    # the paced null-modem holds the reads to the wire's speed
    assert 0 < drain["fraction"] <= 1.0
    (row,) = doc["shared_bus"]
    assert row["controllers"] == 2 and row["lost"] == 0 and row["samples"] == 2 * 100
    assert doc["shortest_period_ms_held"] == 10


def test_storage_smallest(tmp_path: Path) -> None:
    doc = run_benchmark(
        "storage",
        tmp_path,
        *("--lines", "1", "--vehicles", "3", "--writes", "3", "--size-at", "20"),
        *("--rows", "60", "--query-repeat", "2", "--postgres", ""),
    )
    assert doc["postgresql"] is None and "SQLite only" in doc["note"]
    row = doc["sqlite"]
    assert {"bytes_per_inspection", "inserts_per_s", "query_ms"} <= row.keys()
    assert row["template"]["axles"] == 2 and row["template"]["fuel"] == "petrol"
    assert row["bytes_per_inspection"] > row["template"]["raw_bytes"] > 0
    assert row["inserts_per_s"] > 0 and row["rows"] == 60
    assert set(row["query_ms"]) == {"latest_50", "by_plate", "one_inspection"}
    assert all(v > 0 for v in row["query_ms"].values())


def test_throughput_writes_its_document(tmp_path: Path) -> None:
    doc = run_benchmark(
        "throughput", tmp_path, *("--lines", "1", "--vehicles", "2", "--time-scale", "60")
    )
    assert doc["vehicles"] == 2 and doc["verdicts_as_built"] <= 2
    assert doc["cpu_s"] > 0 and doc["peak_rss_mib"] > 0
    assert doc["guide_late"] >= 0 and doc["phase_missed"] >= 0 and doc["loop_lag_ms"] >= 0
    assert doc["kept"] == (
        doc["guide_late"] == doc["phase_missed"] == 0 and doc["loop_lag_ms"] < 50
    )
    (line,) = doc["lines"]
    assert line["line"] == "L1"


def test_throughput_search_smallest(tmp_path: Path) -> None:
    doc = run_benchmark(
        "throughput",
        tmp_path,
        *("--search", "1", "--vehicles-per-line", "1", "--from-scale", "30"),
        *("--max-scale", "30", "--bisect", "0"),
    )
    (s,) = doc["search"]
    assert s["lines"] == 1 and len(s["tried"]) == 1
    (t,) = s["tried"]
    assert s["max_scale"] == (30 if t["kept"] else 0)


def test_upstream_smallest(tmp_path: Path) -> None:
    doc = run_benchmark(
        "upstream",
        tmp_path,
        *("--lines", "1", "--rates", "1,10", "--burst-s", "0.5", "--outbox", "20"),
        *("--pings", "10", "--repeat", "1"),
    )
    assert [b["rate"] for b in doc["bursts"]] == [1, 10]
    for b in doc["bursts"]:
        assert b["replies"] == b["registrations"] and b["p99_ms"] >= b["p50_ms"] > 0
    assert doc["drain_per_s"] > 0 and doc["lost"] == 0 and doc["duplicates"] >= 0
    (run,) = doc["runs"]
    assert run["expected"] == run["received"] == run["outbox"] == 20
