"""Storage: how large the database grows, and what a write costs, against bare SQLite.

Runs `linectl demo` in-process (simulator and daemon, as benchmarks/
throughput.py does) into a fresh SQLite file, timing every write of a judged
attempt (`record_attempt`) and of a completion (`complete_inspection`) where
the store does it (in its worker thread). Then:

- bytes per inspection: the file after a WAL checkpoint, less the file of
  the same schema empty, over the inspections completed; per table from
  SQLite's `dbstat`. The outbox is left out of the year's figure: a site
  with a broker prunes it once published (the demo here runs without one),
  while `published_results` are kept for good.
- a simulated year: bytes per inspection (outbox excluded) times
  `--per-line-hour` x `--lines` x `--hours-per-day` x `--days-per-year`,
  an extrapolation of the measured run, not a year written.
- the ceiling: the same attempt rows, read back, inserted with the bare
  `sqlite3` module into an empty copy of the schema, one transaction per
  attempt as the store commits them, same pragmas (WAL, synchronous NORMAL,
  foreign keys): `bare_p50_ms`; `ratio_to_bare` is bare over the store.

Usage (the medians of --repeat demos):

    .venv/bin/python benchmarks/storage.py --vehicles 30 --json storage.json
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import benchlib

from linectl.demo import run_demo
from linectl.store.inspections import InspectionStore

F = TypeVar("F", bound=Callable[..., Any])
PRAGMAS = ("PRAGMA journal_mode = WAL", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON")


def timing(method: F, into: list[float]) -> F:
    @functools.wraps(method)
    def timed(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return method(*args, **kwargs)
        finally:
            into.append(time.perf_counter() - t0)

    return timed  # type: ignore[return-value]


def table_bytes(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        rows = c.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
    return {name: int(size) for name, size in rows}


def schema_of(db: Path) -> list[str]:
    with sqlite3.connect(db) as c:
        rows = c.execute(
            "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type = 'index', rowid"
        ).fetchall()
    return [r[0] for r in rows]


def bare_inserts(db: Path, empty: Path) -> list[float]:
    """Each attempt row of `db` inserted into `empty` (its inspection first),
    one transaction each, with the bare sqlite3 module: seconds per attempt."""
    with sqlite3.connect(db) as src:
        inspections = src.execute("SELECT * FROM inspections").fetchall()
        attempts = src.execute("SELECT * FROM attempts ORDER BY id").fetchall()
        n_insp = len(src.execute("SELECT * FROM inspections LIMIT 0").description)
        n_att = len(src.execute("SELECT * FROM attempts LIMIT 0").description)
    c = sqlite3.connect(empty, isolation_level=None)
    # The inspections are the attempts' parents, not what is timed; what they
    # point to in turn (registrations, ...) is not copied, so no checks yet.
    c.execute("BEGIN")
    c.executemany(f"INSERT INTO inspections VALUES ({','.join('?' * n_insp)})", inspections)
    c.execute("COMMIT")
    for p in PRAGMAS:
        c.execute(p)
    insert = f"INSERT INTO attempts VALUES ({','.join('?' * n_att)})"
    out = []
    for row in attempts:
        t0 = time.perf_counter()
        c.execute("BEGIN IMMEDIATE")
        c.execute(insert, row)
        c.execute("COMMIT")
        out.append(time.perf_counter() - t0)
    c.close()
    return out


async def one_run(a: argparse.Namespace) -> dict[str, Any]:
    load_before = benchlib.load_average()
    attempts_s: list[float] = []
    completions_s: list[float] = []
    originals = (InspectionStore.record_attempt, InspectionStore.complete_inspection)
    InspectionStore.record_attempt = timing(originals[0], attempts_s)  # type: ignore[method-assign]
    InspectionStore.complete_inspection = timing(originals[1], completions_s)  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db = Path(tmp) / "site.db"
            args = argparse.Namespace(
                lines=a.lines,
                vehicles=a.vehicles,
                time_scale=a.time_scale,
                seed=a.seed,
                db=f"sqlite:///{db}",
                site="bench",
                mqtt=None,
            )
            doc = await run_demo(args, out=io.StringIO())
            tables = table_bytes(db)
            with sqlite3.connect(db) as c:
                n = c.execute("SELECT COUNT(*) FROM inspections WHERE finished_at IS NOT NULL")
                inspections = n.fetchone()[0]
                n_attempts = c.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
            empty = Path(tmp) / "empty.db"
            with sqlite3.connect(empty) as c:
                for sql in schema_of(db):
                    c.execute(sql)
            empty_tables = table_bytes(empty)
            bare = bare_inserts(db, empty)
    finally:
        InspectionStore.record_attempt, InspectionStore.complete_inspection = originals  # type: ignore[method-assign]
    grown = {k: v - empty_tables.get(k, 0) for k, v in tables.items()}
    per = max(inspections, 1)
    kept = sum(v for k, v in grown.items() if "outbox" not in k)
    bytes_per = kept / per
    per_year = a.per_line_hour * a.lines * a.hours_per_day * a.days_per_year
    p50 = benchlib.percentile(attempts_s, 0.5)
    bare_p50 = benchlib.percentile(bare, 0.5)
    return {
        "inspections": inspections,
        "attempts": n_attempts,
        "bytes_per_inspection": round(bytes_per),
        "bytes_per_inspection_with_outbox": round(sum(grown.values()) / per),
        "attempts_bytes_per_inspection": round(
            sum(v for k, v in grown.items() if "attempt" in k) / per
        ),
        "year_inspections": per_year,
        "year_gib": round(bytes_per * per_year / 2**30, 2),
        "p50_attempt_ms": round(1000 * p50, 3),
        "p99_attempt_ms": round(1000 * benchlib.percentile(attempts_s, 0.99), 3),
        "p50_complete_ms": round(1000 * benchlib.percentile(completions_s, 0.5), 3),
        "bare_p50_ms": round(1000 * bare_p50, 3),
        "bare_p99_ms": round(1000 * benchlib.percentile(bare, 0.99), 3),
        "ratio_to_bare": round(bare_p50 / p50, 3) if p50 else 0.0,
        "verdicts_as_built": sum(r["matches_expectation"] for r in doc["inspections"]),
        "tables": grown,
        "load_avg_before": load_before,
        "load_avg_after": benchlib.load_average(),
    }


COLUMNS = [
    ("inspections", "inspections"),
    ("attempts", "attempts"),
    ("bytes_per_inspection", "bytes/inspection"),
    ("attempts_bytes_per_inspection", "of which attempts"),
    ("bytes_per_inspection_with_outbox", "with unpruned outbox"),
    ("year_gib", "a year, GiB"),
    ("p50_attempt_ms", "attempt write p50 ms"),
    ("p99_attempt_ms", "p99 ms"),
    ("p50_complete_ms", "completion p50 ms"),
    ("bare_p50_ms", "bare insert p50 ms"),
    ("bare_p99_ms", "bare p99 ms"),
    ("ratio_to_bare", "bare/store"),
    ("load_avg_before", "load before"),
    ("load_avg_after", "load after"),
]


async def run(a: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"machine": benchlib.machine(), "args": vars(a)}
    rows = [await one_run(a) for _ in range(a.repeat)]
    doc["sqlite"] = benchlib.median_row(rows) | {"each": rows}
    doc["machine"]["load_avg_end"] = benchlib.load_average()
    return doc


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--lines", type=int, default=2)
    p.add_argument("--vehicles", type=int, default=30)
    p.add_argument("--time-scale", type=float, default=60.0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--per-line-hour", type=float, default=30.0, help="for the year's figure")
    p.add_argument("--hours-per-day", type=float, default=10.0)
    p.add_argument("--days-per-year", type=float, default=300.0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    doc = asyncio.run(run(a))
    m = doc["machine"]
    print(
        f"storage (SQLite), {m['date']}, {m['cpu']} x{m['cores']}, median of {a.repeat}; "
        f"load average {m['load_avg_start']} .. {m['load_avg_end']}; a year = "
        f"{a.per_line_hour:g}/h x {a.lines} lines x {a.hours_per_day:g} h x {a.days_per_year:g} d"
    )
    benchlib.print_table(COLUMNS, [doc["sqlite"]])
    benchlib.write_json(a.json, doc)


if __name__ == "__main__":
    main()
