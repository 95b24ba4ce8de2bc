"""Storage at scale: one measured inspection, written many times, its size and the
console's queries over 100,000 of them.

The template is one inspection the demo really ran (a two-axle petrol car
with every item: its attempts with their raw curves, its result as
published, its registration), read back through the store. Then, into a
fresh database (SQLite file, or a PostgreSQL schema of its own):

1. the write path: `--writes` copies written through the store's own calls,
   as the daemon writes them (`create_inspection` with its registration, one
   `record_attempt` per attempt, `complete_inspection`), one after another:
   inspections committed a second. Their outbox rows are then deleted, as the
   publisher prunes them once delivered.
2. bulk copies of the first written one, made by the database itself
   (`INSERT ... SELECT` over a series: new id, request_id, plate, VIN and
   registration time 20 s apart, the same attempts, blobs and result), up to
   `--size-at` inspections: the database's size then, less its size empty,
   over the inspections, is the bytes per inspection; times 100,000 (plus
   the empty schema) is the projection.
3. more copies up to `--rows` (100,000), and the console's common queries
   through the store, each `--query-repeat` times: the latest 50
   (`list_inspections(50)`, the inspection list and /api/inspections), by
   plate (`list_inspections(plate=...)`, one plate among 100,000), one
   inspection in full (`inspection(id)`, /api/inspections/{id} and the
   inspection page). Median and worst, in ms.

Draws are not copied (their rows are hash-chained, one per call: about 300
bytes an inspection, in the demo's figures), nor journal rows.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from linectl.items import ItemResult, Verdict
from linectl.store.records import InspectionRecord
from linectl.store.repo import Store
from linectl.vehicle import Fuel

STEP_S = 20  # registration times of the copies, apart
PREFIX = "CLONE-"


def pick_template(store: Store) -> InspectionRecord:
    """The completed two-axle petrol car with the most attempts keeping raw data."""
    best: tuple[int, InspectionRecord] | None = None
    for s in store.list_inspections(limit=10_000, state="completed"):
        rec = store.inspection(s.id)
        if rec.vehicle.fuel is not Fuel.PETROL or rec.vehicle.axles != 2:
            continue
        score = sum(1 for a in rec.attempts if a.raw_bytes) * 100 + len(rec.attempts)
        if best is None or score > best[0]:
            best = (score, rec)
    if best is None:
        raise SystemExit("the demo completed no two-axle petrol car: run more vehicles")
    return best[1]


def write_path(
    src: Store, dst: Store, tpl: InspectionRecord, n: int
) -> tuple[str, float, list[float]]:
    """`n` copies of `tpl` through the store's write calls: the first copy's id,
    inspections committed a second, and each inspection's seconds."""
    raws = {a.id: src.attempt_raw(a.id) for a in tpl.attempts}
    t0 = tpl.created_at
    first = ""
    each: list[float] = []
    start = time.perf_counter()
    for k in range(n):
        t = time.perf_counter()
        at = t0 + timedelta(seconds=STEP_S * k)
        vehicle = replace(tpl.vehicle, plate=f"W{k:06d}", vin=f"LWRITE{k:011d}")
        iid = dst.create_inspection(
            site=tpl.site,
            vehicle=vehicle,
            inspection_type=tpl.inspection_type,
            items=tpl.items,
            at=at,
            request_id=f"bench-write-{k:06d}",
            line=tpl.line,
        )
        for a in tpl.attempts:
            dst.record_attempt(
                inspection_id=iid,
                result=ItemResult(
                    code=a.item_code,
                    verdict=Verdict(a.verdict),
                    values=a.values,
                    limits=a.limits,
                    reason=a.reason,
                    raw=raws[a.id],
                    curve=a.curve,
                ),
                station=a.station,
                device=a.device,
                started_at=at + (a.started_at - t0),
                finished_at=at + (a.finished_at - t0),
            )
        dst.complete_inspection(iid, at=at + ((tpl.finished_at or t0) - t0))
        each.append(time.perf_counter() - t)
        first = first or iid
    rate = n / (time.perf_counter() - start)
    return first, rate, each


class Cloner:
    """Copies of one inspection, made by the database with `INSERT ... SELECT`."""

    def __init__(self, store: Store, template_id: str) -> None:
        self.engine: sa.Engine = store._engine
        self.pg = self.engine.dialect.name == "postgresql"
        self.tid = template_id
        self.made = 0

    def _num(self, fmt_digits: int) -> str:
        if self.pg:
            return f"lpad(n::text, {fmt_digits}, '0')"
        return f"printf('%0{fmt_digits}d', n)"

    def _series(self, lo: int, hi: int) -> tuple[str, str]:
        """A FROM item of `n` in [lo, hi), and what to run first to have it."""
        if self.pg:
            return f"generate_series({lo}, {hi - 1}) AS s(n)", ""
        return (
            "seq",
            f"WITH RECURSIVE c(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM c "
            f"WHERE n + 1 < {hi}) INSERT INTO seq SELECT n FROM c",
        )

    def grow_to(self, total: int, batch: int = 5000) -> None:
        while self.made < total:
            n = min(batch, total - self.made)
            self._copy(self.made, self.made + n)
            self.made += n

    def _copy(self, lo: int, hi: int) -> None:
        newid = f"'{PREFIX}' || {self._num(6)}"
        plate = f"'C' || {self._num(6)}"
        vin = f"'LCLONE' || {self._num(11)}"
        req = f"'bench-clone-' || {self._num(6)}"
        if self.pg:

            def shift(col: str) -> str:
                return f"{col} + n * interval '{STEP_S} seconds'"

            vehicle = (
                "jsonb_set(jsonb_set(vehicle::jsonb, '{plate}', to_jsonb("
                f"{plate})), '{{vin}}', to_jsonb({vin}))::json"
            )
        else:

            def shift(col: str) -> str:
                return (
                    f"CASE WHEN {col} IS NULL THEN NULL ELSE strftime('%Y-%m-%d %H:%M:%f', "
                    f"{col}, '+' || (n * {STEP_S}) || ' seconds') || "
                    f"substr({col}, 24) END"
                )

            vehicle = f"json_set(vehicle, '$.plate', {plate}, '$.vin', {vin})"
        frm, prepare = self._series(lo, hi)
        with self.engine.begin() as c:
            if not self.pg:
                c.exec_driver_sql("CREATE TEMP TABLE IF NOT EXISTS seq (n INTEGER)")
                c.exec_driver_sql("DELETE FROM seq")
                c.exec_driver_sql(prepare)
            tid = {"t": self.tid}
            c.execute(
                sa.text(
                    "INSERT INTO inspections (id, request_id, site, line, inspection_type, "
                    "vehicle, plate, vin, items, state, verdict, revision, proxy_driver_id, "
                    "created_at, started_at, finished_at, abort_reason) "
                    f"SELECT {newid}, {req}, site, line, inspection_type, {vehicle}, {plate}, "
                    f"{vin}, items, state, verdict, revision, proxy_driver_id, "
                    f"{shift('created_at')}, {shift('started_at')}, {shift('finished_at')}, "
                    f"abort_reason FROM inspections, {frm} WHERE id = :t"
                ),
                tid,
            )
            c.execute(
                sa.text(
                    "INSERT INTO registrations (request_id, received_at, inspection_id, reply) "
                    f"SELECT {req}, {shift('received_at')}, {newid}, reply "
                    f"FROM registrations, {frm} WHERE inspection_id = :t"
                ),
                tid,
            )
            c.execute(
                sa.text(
                    "INSERT INTO attempts (inspection_id, item_code, attempt_no, station, "
                    'device, started_at, finished_at, verdict, reason, "values", limits, '
                    f"curve, raw) SELECT {newid}, item_code, attempt_no, station, device, "
                    f"{shift('started_at')}, {shift('finished_at')}, verdict, reason, "
                    f'"values", limits, curve, raw FROM attempts, {frm} '
                    "WHERE inspection_id = :t ORDER BY n, id"
                ),
                tid,
            )
            c.execute(
                sa.text(
                    "INSERT INTO published_results (inspection_id, revision, at, payload) "
                    f"SELECT {newid}, revision, {shift('at')}, payload "
                    f"FROM published_results, {frm} WHERE inspection_id = :t"
                ),
                tid,
            )


def db_bytes(store: Store) -> int:
    """The database's size: SQLite's pages in use; PostgreSQL's tables of the
    schema with their indexes and TOAST."""
    with store._engine.connect() as c:
        if store._engine.dialect.name == "postgresql":
            return int(
                c.exec_driver_sql(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = current_schema() AND c.relkind = 'r'"
                ).scalar_one()
            )
        c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = c.exec_driver_sql("PRAGMA page_count").scalar_one()
        free = c.exec_driver_sql("PRAGMA freelist_count").scalar_one()
        size = c.exec_driver_sql("PRAGMA page_size").scalar_one()
        return int((pages - free) * size)


def analyze(store: Store) -> None:
    with store._engine.begin() as c:
        c.exec_driver_sql("ANALYZE")


def timed(fn: Callable[[], Any], repeat: int) -> dict[str, float]:
    fn()  # warm: the first call pays for the connection and the statement cache
    runs = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return {"p50": round(1000 * statistics.median(runs), 2), "max": round(1000 * max(runs), 2)}


def queries(store: Store, total: int, repeat: int) -> dict[str, Any]:
    """The console's common queries, in ms (median, worst of `repeat`)."""
    middle = total // 2
    plate = f"C{middle:06d}"
    one = f"{PREFIX}{middle:06d}"
    found = store.list_inspections(50, plate=plate)
    assert [s.id for s in found] == [one], f"plate {plate}: {[s.id for s in found]}"
    assert len(store.list_inspections(50)) == 50
    t = {
        "latest_50": timed(lambda: store.list_inspections(50), repeat),
        "by_plate": timed(lambda: store.list_inspections(50, plate=plate), repeat),
        "one_inspection": timed(lambda: store.inspection(one), repeat),
    }
    return t


def scale(
    src: Store,
    dst: Store,
    *,
    writes: int,
    size_at: int,
    rows: int,
    query_repeat: int,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Steps 1..3 of the module's text, into `dst` (fresh, upgraded)."""
    tpl = pick_template(src)
    empty = db_bytes(dst)
    first, rate, each = write_path(src, dst, tpl, writes)
    with dst._engine.begin() as c:
        c.exec_driver_sql("DELETE FROM outbox")
    progress(f"wrote {writes} through the store, {rate:.1f}/s")
    cloner = Cloner(dst, first)
    cloner.grow_to(size_at - writes)
    analyze(dst)
    at_size = db_bytes(dst)
    per = (at_size - empty) / size_at
    progress(f"{size_at} inspections: {at_size} bytes, {per:.0f} per inspection")
    cloner.grow_to(rows - writes)
    analyze(dst)
    at_rows = db_bytes(dst)
    progress(f"{rows} inspections: {at_rows} bytes")
    q = queries(dst, rows - writes, query_repeat)
    return {
        "template": {
            "id": tpl.id,
            "vehicle_class": tpl.vehicle.vehicle_class,
            "axles": tpl.vehicle.axles,
            "fuel": str(tpl.vehicle.fuel),
            "items": tpl.items,
            "attempts": len(tpl.attempts),
            "raw_bytes": sum(a.raw_bytes for a in tpl.attempts),
        },
        "bytes_per_inspection": round(per),
        "inserts_per_s": round(rate, 1),
        "write_p50_ms": round(1000 * statistics.median(each), 2),
        "query_ms": {k: v["p50"] for k, v in q.items()},
        "query_max_ms": {k: v["max"] for k, v in q.items()},
        "empty_bytes": empty,
        "measured_at": size_at,
        "bytes_at_measured": at_size,
        "projected_rows": 100_000,
        "projected_bytes": round(empty + per * 100_000),
        "rows": rows,
        "bytes_at_rows": at_rows,
    }
