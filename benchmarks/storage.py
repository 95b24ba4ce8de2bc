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

With LINECTL_TEST_POSTGRES_URL set (or `--postgres URL`), the same demo also
runs into a schema of its own on that server (made and dropped here):
bytes per inspection from `pg_total_relation_size` (tables, indexes and
TOAST) against the same schema empty, and as the ceiling each attempt row
copied by the server alone (`INSERT ... SELECT` of that row from the demo's
schema, one transaction each, with psycopg): the database's own cost of the
row, without the client's.

Usage (the medians of --repeat demos):

    .venv/bin/python benchmarks/storage.py --vehicles 30 --json storage.json
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import io
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import benchlib
import psycopg
import storescale
from sqlalchemy.engine import make_url

from linectl.demo import run_demo
from linectl.store.inspections import InspectionStore
from linectl.store.repo import Store

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


def _pg_conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pg_schema_url(url: str, schema: str) -> str:
    u = make_url(url).update_query_dict({"options": f"-csearch_path={schema}"})
    return u.render_as_string(hide_password=False)


def pg_sizes(conninfo: str, schema: str) -> dict[str, int]:
    with psycopg.connect(conninfo) as c:
        rows = c.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,),
        ).fetchall()
    return {name: int(size) for name, size in rows}


def pg_bare_inserts(conninfo: str, src: str, dst: str) -> list[float]:
    """Each attempt row of schema `src` copied into `dst` by the server, one
    transaction each (its inspection copied first, untimed)."""
    out: list[float] = []
    with psycopg.connect(conninfo, autocommit=True) as c:
        # The parents, not what is timed; what they point to in turn (proxy
        # drivers, ...) is not copied, so no checks for them (superuser only).
        c.execute("SET session_replication_role = replica")
        c.execute(f'INSERT INTO "{dst}".inspections SELECT * FROM "{src}".inspections')
        c.execute("SET session_replication_role = origin")
        ids = [r[0] for r in c.execute(f'SELECT id FROM "{src}".attempts ORDER BY id')]
        for i in ids:
            t0 = time.perf_counter()
            with c.transaction():
                c.execute(
                    f'INSERT INTO "{dst}".attempts SELECT * FROM "{src}".attempts WHERE id = %s',
                    (i,),
                )
            out.append(time.perf_counter() - t0)
    return out


async def one_pg_run(a: argparse.Namespace, url: str) -> dict[str, Any]:
    """The demo into a fresh PostgreSQL schema; sizes and the bare ceiling."""
    load_before = benchlib.load_average()
    conninfo = _pg_conninfo(url)
    demo_schema, empty_schema = (f"bench_{uuid.uuid4().hex[:12]}" for _ in range(2))
    with psycopg.connect(conninfo, autocommit=True) as c:
        for schema in (demo_schema, empty_schema):
            c.execute(f'CREATE SCHEMA "{schema}"')
    try:
        empty = Store(_pg_schema_url(url, empty_schema))
        empty.upgrade()
        empty.close()
        empty_sizes = pg_sizes(conninfo, empty_schema)
        row = await _demo_and_times(a, _pg_schema_url(url, demo_schema))
        sizes = pg_sizes(conninfo, demo_schema)
        with psycopg.connect(conninfo) as c:
            row["inspections"] = c.execute(
                f'SELECT count(*) FROM "{demo_schema}".inspections WHERE finished_at IS NOT NULL'
            ).fetchone()[0]  # type: ignore[index]
            row["attempts"] = c.execute(
                f'SELECT count(*) FROM "{demo_schema}".attempts'
            ).fetchone()[0]  # type: ignore[index]
        bare = pg_bare_inserts(conninfo, demo_schema, empty_schema)
    finally:
        with psycopg.connect(conninfo, autocommit=True) as c:
            for schema in (demo_schema, empty_schema):
                c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    grown = {k: v - empty_sizes.get(k, 0) for k, v in sizes.items()}
    return _figures(a, row, grown, bare, load_before)


async def _demo_and_times(a: argparse.Namespace, db_url: str) -> dict[str, Any]:
    """Run the demo into `db_url`, timing the store's attempt and completion writes."""
    attempts_s: list[float] = []
    completions_s: list[float] = []
    originals = (InspectionStore.record_attempt, InspectionStore.complete_inspection)
    InspectionStore.record_attempt = timing(originals[0], attempts_s)  # type: ignore[method-assign]
    InspectionStore.complete_inspection = timing(originals[1], completions_s)  # type: ignore[method-assign]
    try:
        args = argparse.Namespace(
            lines=a.lines,
            vehicles=a.vehicles,
            time_scale=a.time_scale,
            seed=a.seed,
            db=db_url,
            site="bench",
            mqtt=None,
        )
        doc = await run_demo(args, out=io.StringIO())
    finally:
        InspectionStore.record_attempt, InspectionStore.complete_inspection = originals  # type: ignore[method-assign]
    return {
        "attempts_s": attempts_s,
        "completions_s": completions_s,
        "verdicts_as_built": sum(r["matches_expectation"] for r in doc["inspections"]),
    }


def _figures(
    a: argparse.Namespace,
    row: dict[str, Any],
    grown: dict[str, int],
    bare: list[float],
    load_before: float,
) -> dict[str, Any]:
    inspections, attempts_s = row["inspections"], row["attempts_s"]
    per = max(inspections, 1)
    kept = sum(v for k, v in grown.items() if "outbox" not in k)
    bytes_per = kept / per
    per_year = a.per_line_hour * a.lines * a.hours_per_day * a.days_per_year
    p50 = benchlib.percentile(attempts_s, 0.5)
    bare_p50 = benchlib.percentile(bare, 0.5)
    return {
        "inspections": inspections,
        "attempts": row["attempts"],
        "bytes_per_inspection": round(bytes_per),
        "bytes_per_inspection_with_outbox": round(sum(grown.values()) / per),
        "attempts_bytes_per_inspection": round(
            sum(v for k, v in grown.items() if "attempt" in k) / per
        ),
        "year_inspections": per_year,
        "year_gib": round(bytes_per * per_year / 2**30, 2),
        "p50_attempt_ms": round(1000 * p50, 3),
        "p99_attempt_ms": round(1000 * benchlib.percentile(attempts_s, 0.99), 3),
        "p50_complete_ms": round(1000 * benchlib.percentile(row["completions_s"], 0.5), 3),
        "bare_p50_ms": round(1000 * bare_p50, 3),
        "bare_p99_ms": round(1000 * benchlib.percentile(bare, 0.99), 3),
        "ratio_to_bare": round(bare_p50 / p50, 3) if p50 else 0.0,
        "verdicts_as_built": row["verdicts_as_built"],
        "tables": grown,
        "load_avg_before": load_before,
        "load_avg_after": benchlib.load_average(),
    }


async def one_run(a: argparse.Namespace) -> dict[str, Any]:
    load_before = benchlib.load_average()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "site.db"
        row = await _demo_and_times(a, f"sqlite:///{db}")
        tables = table_bytes(db)
        with sqlite3.connect(db) as c:
            n = c.execute("SELECT COUNT(*) FROM inspections WHERE finished_at IS NOT NULL")
            row["inspections"] = n.fetchone()[0]
            row["attempts"] = c.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
        empty = Path(tmp) / "empty.db"
        with sqlite3.connect(empty) as c:
            for sql in schema_of(db):
                c.execute(sql)
        empty_tables = table_bytes(empty)
        bare = bare_inserts(db, empty)
    grown = {k: v - empty_tables.get(k, 0) for k, v in tables.items()}
    return _figures(a, row, grown, bare, load_before)


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


async def scale_runs(a: argparse.Namespace, doc: dict[str, Any]) -> None:
    """The template inspection from one demo, then storescale on each backend."""
    say = functools.partial(print, file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        src_url = f"sqlite:///{Path(tmp) / 'demo.db'}"
        await _demo_and_times(a, src_url)
        src = Store(src_url)
        targets = [("sqlite", f"sqlite:///{Path(tmp) / 'scale.db'}", None)]
        if a.postgres:
            schema = f"bench_{uuid.uuid4().hex[:12]}"
            targets.append(("postgresql", _pg_schema_url(a.postgres, schema), schema))
        try:
            for name, url, schema in targets:
                load_before = benchlib.load_average()
                if schema:
                    with psycopg.connect(_pg_conninfo(a.postgres), autocommit=True) as c:
                        c.execute(f'CREATE SCHEMA "{schema}"')
                dst = Store(url)
                try:
                    dst.upgrade()
                    fig = await asyncio.to_thread(
                        storescale.scale,
                        src,
                        dst,
                        writes=a.writes,
                        size_at=a.size_at,
                        rows=a.rows,
                        query_repeat=a.query_repeat,
                        progress=lambda m, n=name: say(f"{n}: {m}"),
                    )
                finally:
                    dst.close()
                    if schema:
                        with psycopg.connect(_pg_conninfo(a.postgres), autocommit=True) as c:
                            c.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                fig["load_avg_before"] = load_before
                fig["load_avg_after"] = benchlib.load_average()
                doc[name] = fig | doc.get(name, {})
        finally:
            src.close()


async def run(a: argparse.Namespace) -> dict[str, Any]:
    doc: dict[str, Any] = {"machine": benchlib.machine(), "args": vars(a)}
    if not a.postgres:
        doc["postgresql"] = None
        doc["note"] = "no PostgreSQL URL (--postgres or LINECTL_TEST_POSTGRES_URL): SQLite only"
    await scale_runs(a, doc)
    if a.demo_repeat:
        rows = [await one_run(a) for _ in range(a.demo_repeat)]
        doc["sqlite"]["demo"] = benchlib.median_row(rows) | {"each": rows}
        if a.postgres:
            rows = [await one_pg_run(a, a.postgres) for _ in range(a.demo_repeat)]
            doc["postgresql"]["demo"] = benchlib.median_row(rows) | {"each": rows}
    doc["machine"]["load_avg_end"] = benchlib.load_average()
    return doc


SCALE_COLUMNS = [
    ("backend", "backend"),
    ("bytes_per_inspection", "bytes/inspection"),
    ("measured_at", "measured at"),
    ("projected_gib", "at 100,000, GiB (projected)"),
    ("rows_gib", "GiB measured at rows"),
    ("inserts_per_s", "inspections committed/s"),
    ("latest_50", "latest 50 ms"),
    ("by_plate", "by plate ms"),
    ("one_inspection", "one inspection ms"),
    ("rows", "rows"),
    ("load", "load"),
]


def scale_row(name: str, f: dict[str, Any]) -> dict[str, Any]:
    return {
        "backend": name,
        **f,
        **f["query_ms"],
        "projected_gib": round(f["projected_bytes"] / 2**30, 2),
        "rows_gib": round(f["bytes_at_rows"] / 2**30, 2),
        "load": f"{f['load_avg_before']} → {f['load_avg_after']}",
    }


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
    p.add_argument("--demo-repeat", type=int, default=0, help="demos measured as a whole")
    p.add_argument("--writes", type=int, default=200, help="through the store's write path")
    p.add_argument("--size-at", type=int, default=10_000, help="inspections, for the size")
    p.add_argument("--rows", type=int, default=100_000, help="inspections, for the queries")
    p.add_argument("--query-repeat", type=int, default=20)
    p.add_argument(
        "--postgres",
        metavar="URL",
        default=os.environ.get("LINECTL_TEST_POSTGRES_URL") or None,
        help="also on this PostgreSQL server (default: $LINECTL_TEST_POSTGRES_URL)",
    )
    p.add_argument("--json", metavar="FILE")
    a = p.parse_args()
    doc = asyncio.run(run(a))
    m = doc["machine"]
    print(
        f"storage, {m['date']}, {m['cpu']} x{m['cores']}; load average "
        f"{m['load_avg_start']} .. {m['load_avg_end']}; size measured at {a.size_at} "
        f"inspections, queries at {a.rows}"
    )
    if doc.get("note"):
        print(doc["note"])
    rows = [scale_row(n, doc[n]) for n in ("sqlite", "postgresql") if doc.get(n)]
    benchlib.print_table(SCALE_COLUMNS, rows)
    for name in ("sqlite", "postgresql"):
        if doc.get(name) and "demo" in doc[name]:
            print(f"\n{name}: demos of {a.vehicles} vehicles, median of {a.demo_repeat}")
            benchlib.print_table(COLUMNS, [doc[name]["demo"]])
    benchlib.write_json(a.json, doc)


if __name__ == "__main__":
    main()
