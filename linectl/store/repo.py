"""The store API: every read and write of the site's records, one transaction each.

`Store` is synchronous: each method opens a session, does its work in one
transaction and returns plain records (linectl.store.records), never ORM
objects. `AsyncStore` offers the same methods as coroutines, all run on one
dedicated worker thread, so the event loop never waits on the database and
SQLite sees a single writer.

Writes that must never be half-done are single transactions: an inspection
and its registration reply; a result's verdict, revision and its outbox row;
a draw and its place in the hash chain.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, func, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linectl.items import (
    InspectionVerdict,
    ItemResult,
    Verdict,
    inspection_verdict,
    latest_verdicts,
)
from linectl.store import db
from linectl.store.blobs import pack_arrays, unpack_arrays
from linectl.store.db import StoreError
from linectl.store.models import (
    Attempt,
    Draw,
    DriverDutyLog,
    Inspection,
    Outbox,
    ProxyDriver,
    Registration,
)
from linectl.store.records import (
    GENESIS_HASH,
    UNFINISHED_STATES,
    AttemptRecord,
    ChainReport,
    DrawRecord,
    DriverState,
    DutyLogRecord,
    InspectionRecord,
    InspectionState,
    InspectionSummary,
    OutboxRecord,
    ProxyDriverRecord,
    default_result_document,
)
from linectl.vehicle import Fuel, InspectionType, Vehicle

__all__ = [
    "AsyncStore",
    "DuplicateRequest",
    "NotFound",
    "Store",
    "StoreError",
]

T = TypeVar("T")

# How often a numbering write is tried when a unique key refuses its row.
_RETRIES = 5
# Any constant, distinct from the migration lock: the queue for numbering writes.
_PG_SEQUENCE_LOCK = 0x6C696E66
OUTBOX_RESULT = "result"


class DuplicateRequest(Exception):
    """This request_id is known: `reply` is the reply it got the first time."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"request {reply.get('request_id')!r} was already answered")
        self.reply = reply


class NotFound(LookupError):
    """No such inspection, attempt or proxy driver; `str()` says which."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: pass an aware (UTC) datetime")
    return at.astimezone(UTC)


def _to_ms(at: datetime) -> datetime:
    """The draw chain hashes milliseconds: store exactly what is hashed."""
    at = _utc(at)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def jsonable(obj: Any) -> Any:
    """`obj` as plain JSON values: numpy scalars and arrays become Python ones, and a
    non-finite float becomes null (JSON has no NaN; PostgreSQL refuses it)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(jsonable(obj), ensure_ascii=False, allow_nan=False)


def _vehicle(d: Mapping[str, Any]) -> Vehicle:
    # Stored from Vehicle.to_dict(): rebuild it as it was, without judging it again.
    return Vehicle(
        vin=d["vin"],
        plate=d["plate"],
        vehicle_class=d["vehicle_class"],
        fuel=Fuel(d["fuel"]),
        axles=int(d["axles"]),
        parking_axles=tuple(d.get("parking_axles", ())),
        curb_mass_kg=int(d["curb_mass_kg"]),
        gross_mass_kg=int(d["gross_mass_kg"]),
        headlamp_system=int(d["headlamp_system"]),
        max_design_speed_kmh=int(d["max_design_speed_kmh"]),
        registration_date=d.get("registration_date"),
    )


def _draw_record(r: Draw) -> DrawRecord:
    return DrawRecord(
        seq=r.seq,
        line=r.line,
        inspection_id=r.inspection_id,
        candidates=list(r.candidates),
        chosen=r.chosen,
        drawn_at=r.drawn_at,
        prev_hash=r.prev_hash,
        hash=r.hash,
    )


def _outbox_record(r: Outbox) -> OutboxRecord:
    return OutboxRecord(
        id=r.id,
        kind=r.kind,
        inspection_id=r.inspection_id,
        revision=r.revision,
        payload=r.payload,
        created_at=r.created_at,
        delivered_at=r.delivered_at,
        attempts=r.attempts,
        last_error=r.last_error,
    )


def _driver_record(r: ProxyDriver) -> ProxyDriverRecord:
    return ProxyDriverRecord(
        id=r.id, line=r.line, name=r.name, state=DriverState(r.state), updated_at=r.updated_at
    )


class Store:
    """The site's records in one database. Safe to share between threads; the
    daemon uses it through `AsyncStore`, from one worker thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine = db.make_engine(url)
        self._writer: Engine = self._engine.execution_options(**{db.WRITE_OPTION: True})

    def __repr__(self) -> str:
        return f"Store({db.safe_url(self.url)!r})"

    # -- sessions --------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        with db.db_errors(self.url):
            yield

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any error."""
        with Session(self._writer, expire_on_commit=False) as s, s.begin():
            yield s

    def _write_retrying(self, work: Callable[[Session], T]) -> T:
        """`work` in one write transaction that hands out the next id, seq or
        attempt number. Writers queue for it: SQLite by BEGIN IMMEDIATE, PostgreSQL
        by an advisory lock. Should a unique key still refuse the row (a writer
        that skipped the lock), the work runs again and sees the winner's row."""
        tries = 0
        with self._errors():
            while True:
                tries += 1
                try:
                    with self._write() as s:
                        if s.get_bind().dialect.name == "postgresql":
                            s.execute(
                                text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SEQUENCE_LOCK}
                            )
                        return work(s)
                except IntegrityError as e:
                    if tries >= _RETRIES:
                        raise StoreError(db.describe_error(self.url, e)) from e

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as s, s.begin():
            yield s

    # -- schema ----------------------------------------------------------------

    def upgrade(self) -> None:
        """Apply the schema migrations up to head (nothing to do when already there)."""
        with self._errors():
            db.upgrade(self._writer)

    def current_revision(self) -> str | None:
        with self._errors():
            return db.current_revision(self._engine)

    def check_schema(self) -> str:
        """The current revision; `StoreError` unless it is the head this code knows."""
        current = self.current_revision()
        head = db.head_revision()
        if current is None:
            raise StoreError(
                f"database {db.safe_url(self.url)} has no linectl schema: run `linectl db upgrade`"
            )
        if current != head:
            newer = current not in db.known_revisions()
            raise StoreError(
                f"database {db.safe_url(self.url)} is at schema {current}, this linectl "
                f"needs {head}: "
                + (
                    "the database is newer than this linectl"
                    if newer
                    else "run `linectl db upgrade`"
                )
            )
        return current

    def close(self) -> None:
        self._engine.dispose()

    # -- registration ----------------------------------------------------------

    def create_inspection(
        self,
        *,
        site: str,
        vehicle: Vehicle,
        inspection_type: InspectionType,
        items: list[str],
        at: datetime,
        request_id: str | None = None,
        reply_for: Callable[[str], dict[str, Any]] | None = None,
        line: str | None = None,
    ) -> str:
        """Insert an inspection (state registered) and, with a request_id, the
        reply to it, in one transaction; the new id. `DuplicateRequest` when the
        request_id is already known: nothing is created then."""
        at = _utc(at)
        kind = str(InspectionType(inspection_type))

        def work(s: Session) -> str:
            if request_id is not None:
                known = s.get(Registration, request_id)
                if known is not None:
                    raise DuplicateRequest(dict(known.reply))
            new_id = self._next_inspection_id(s, site, at)
            s.add(
                Inspection(
                    id=new_id,
                    request_id=request_id,
                    site=site,
                    line=line,
                    inspection_type=kind,
                    vehicle=vehicle.to_dict(),
                    plate=vehicle.plate,
                    vin=vehicle.vin,
                    items=list(items),
                    state=str(InspectionState.REGISTERED),
                    revision=0,
                    created_at=at,
                )
            )
            if request_id is not None:
                if reply_for is not None:
                    reply = reply_for(new_id)
                else:
                    reply = {
                        "request_id": request_id,
                        "accepted": True,
                        "inspection_id": new_id,
                        "line": line,
                    }
                s.flush()  # the registration refers to the inspection
                s.add(
                    Registration(
                        request_id=request_id,
                        received_at=at,
                        inspection_id=new_id,
                        reply=jsonable(reply),
                    )
                )
            return new_id

        return self._write_retrying(work)

    @staticmethod
    def _next_inspection_id(s: Session, site: str, at: datetime) -> str:
        prefix = f"{site}-{at:%Y%m%d}-"
        ids = s.scalars(
            select(Inspection.id).where(
                Inspection.site == site, Inspection.id.startswith(prefix, autoescape=True)
            )
        ).all()
        n = max((int(i[len(prefix) :]) for i in ids if i[len(prefix) :].isdigit()), default=0)
        return f"{prefix}{n + 1:04d}"

    def refuse_registration(
        self, request_id: str, reply: dict[str, Any], at: datetime
    ) -> dict[str, Any]:
        """Keep a refusal; when the request_id is already known, the stored reply instead."""
        at = _utc(at)

        def work(s: Session) -> dict[str, Any]:
            known = s.get(Registration, request_id)
            if known is not None:
                return dict(known.reply)
            stored = jsonable(reply)
            s.add(
                Registration(
                    request_id=request_id, received_at=at, inspection_id=None, reply=stored
                )
            )
            return stored

        return self._write_retrying(work)

    def registration_reply(self, request_id: str) -> dict[str, Any] | None:
        with self._errors(), self._read() as s:
            known = s.get(Registration, request_id)
            return None if known is None else dict(known.reply)

    # -- inspection lifecycle ----------------------------------------------------

    @staticmethod
    def _get_inspection(s: Session, inspection_id: str) -> Inspection:
        row = s.get(Inspection, inspection_id)
        if row is None:
            raise NotFound(f"no inspection {inspection_id}")
        return row

    def assign_line(self, inspection_id: str, line: str) -> None:
        with self._errors(), self._write() as s:
            self._get_inspection(s, inspection_id).line = line

    def set_state(
        self,
        inspection_id: str,
        state: InspectionState | str,
        at: datetime,
        reason: str | None = None,
    ) -> None:
        """Move an inspection to `state`. in_progress sets started_at the first time;
        aborted keeps `reason` and the time. Completion goes through
        `complete_inspection`, which also writes the result's outbox row."""
        state = InspectionState(state)
        if state is InspectionState.COMPLETED:
            raise ValueError("complete an inspection with complete_inspection(), not set_state()")
        at = _utc(at)
        with self._errors(), self._write() as s:
            row = self._get_inspection(s, inspection_id)
            row.state = str(state)
            if state is InspectionState.IN_PROGRESS and row.started_at is None:
                row.started_at = at
            elif state is InspectionState.ABORTED:
                row.abort_reason = reason
                row.finished_at = at

    def record_attempt(
        self,
        *,
        inspection_id: str,
        result: ItemResult,
        station: str,
        device: str | None,
        started_at: datetime,
        finished_at: datetime,
    ) -> int:
        """Keep one judged attempt (values, limits, verdict, reason, curve and raw
        arrays); its attempt number, 1 for the item's first."""
        started_at, finished_at = _utc(started_at), _utc(finished_at)
        raw = pack_arrays(result.raw) if result.raw else None
        values, limits = jsonable(result.values), jsonable(result.limits)
        verdict = str(Verdict(result.verdict))

        def work(s: Session) -> int:
            self._get_inspection(s, inspection_id)
            last = s.scalar(
                select(func.max(Attempt.attempt_no)).where(
                    Attempt.inspection_id == inspection_id,
                    Attempt.item_code == result.code,
                )
            )
            n = (last or 0) + 1
            s.add(
                Attempt(
                    inspection_id=inspection_id,
                    item_code=result.code,
                    attempt_no=n,
                    station=station,
                    device=device,
                    started_at=started_at,
                    finished_at=finished_at,
                    verdict=verdict,
                    reason=result.reason,
                    values=values,
                    limits=limits,
                    curve=result.curve,
                    raw=raw,
                )
            )
            return n

        return self._write_retrying(work)

    def complete_inspection(
        self,
        inspection_id: str,
        *,
        at: datetime,
        result_document: Callable[[InspectionRecord], dict[str, Any]] | None = None,
        abort_reason: str | None = None,
    ) -> InspectionRecord:
        """In one transaction: the verdict from each item's latest attempt (an item
        without one is not judged), the next revision, state completed, and the
        result's outbox row. If anything fails, none of it is kept.

        With `abort_reason` the inspection ends aborted instead (the vehicle left
        the line unfinished): its result still goes out, through the outbox like
        any other, so the registry learns of it even if the broker is away now."""
        at = _utc(at)
        build = result_document or default_result_document
        with self._errors(), self._write() as s:
            row = self._get_inspection(s, inspection_id)
            attempts = s.execute(
                select(Attempt.item_code, Attempt.attempt_no, Attempt.verdict).where(
                    Attempt.inspection_id == inspection_id
                )
            ).all()
            latest = latest_verdicts((a.item_code, a.attempt_no, a.verdict) for a in attempts)
            verdicts = [latest.get(code, Verdict.NOT_JUDGED) for code in row.items]
            verdicts += [v for code, v in latest.items() if code not in row.items]
            row.verdict = str(inspection_verdict(verdicts))
            row.revision += 1
            if abort_reason is None:
                row.state = str(InspectionState.COMPLETED)
            else:
                row.state = str(InspectionState.ABORTED)
                row.abort_reason = abort_reason
            row.finished_at = at
            s.flush()
            record = self._inspection_record(s, row)
            s.add(
                Outbox(
                    kind=OUTBOX_RESULT,
                    inspection_id=inspection_id,
                    revision=row.revision,
                    payload=dumps(build(record)),
                    created_at=at,
                    attempts=0,
                )
            )
            return record

    # -- reading inspections -----------------------------------------------------

    def _inspection_record(self, s: Session, row: Inspection) -> InspectionRecord:
        attempts = s.scalars(
            select(Attempt).where(Attempt.inspection_id == row.id).order_by(Attempt.id)
        ).all()
        newest: dict[str, int] = {}
        for a in attempts:
            newest[a.item_code] = max(newest.get(a.item_code, 0), a.attempt_no)
        sizes = dict(
            s.execute(
                select(Attempt.id, func.coalesce(func.length(Attempt.raw), 0)).where(
                    Attempt.inspection_id == row.id
                )
            ).all()
        )
        draw = s.scalars(
            select(Draw).where(Draw.inspection_id == row.id).order_by(Draw.seq.desc()).limit(1)
        ).first()
        return InspectionRecord(
            id=row.id,
            request_id=row.request_id,
            site=row.site,
            line=row.line,
            inspection_type=InspectionType(row.inspection_type),
            vehicle=_vehicle(row.vehicle),
            items=list(row.items),
            state=InspectionState(row.state),
            verdict=None if row.verdict is None else InspectionVerdict(row.verdict),
            revision=row.revision,
            proxy_driver_id=row.proxy_driver_id,
            created_at=row.created_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            abort_reason=row.abort_reason,
            attempts=[
                AttemptRecord(
                    id=a.id,
                    inspection_id=a.inspection_id,
                    item_code=a.item_code,
                    attempt_no=a.attempt_no,
                    station=a.station,
                    device=a.device,
                    started_at=a.started_at,
                    finished_at=a.finished_at,
                    verdict=Verdict(a.verdict),
                    reason=a.reason,
                    values=dict(a.values),
                    limits=dict(a.limits),
                    curve=a.curve,
                    raw_bytes=int(sizes.get(a.id, 0)),
                    latest=a.attempt_no == newest[a.item_code],
                )
                for a in attempts
            ],
            draw=None if draw is None else _draw_record(draw),
        )

    def inspection(self, inspection_id: str) -> InspectionRecord:
        with self._errors(), self._read() as s:
            return self._inspection_record(s, self._get_inspection(s, inspection_id))

    def list_inspections(
        self,
        limit: int = 50,
        line: str | None = None,
        state: InspectionState | str | None = None,
    ) -> list[InspectionSummary]:
        """The newest `limit` inspections, newest first."""
        q = select(Inspection).order_by(Inspection.created_at.desc(), Inspection.id.desc())
        if line is not None:
            q = q.where(Inspection.line == line)
        if state is not None:
            q = q.where(Inspection.state == str(InspectionState(state)))
        with self._errors(), self._read() as s:
            rows = s.scalars(q.limit(limit)).all()
            latest: dict[str, list[tuple[str, int, str]]] = {r.id: [] for r in rows}
            if rows:
                for a in s.execute(
                    select(
                        Attempt.inspection_id,
                        Attempt.item_code,
                        Attempt.attempt_no,
                        Attempt.verdict,
                    ).where(Attempt.inspection_id.in_(list(latest)))
                ):
                    latest[a.inspection_id].append((a.item_code, a.attempt_no, a.verdict))
            return [self._summary(r, latest_verdicts(latest[r.id])) for r in rows]

    @staticmethod
    def _summary(r: Inspection, latest: dict[str, Verdict]) -> InspectionSummary:
        done = r.state == InspectionState.COMPLETED
        codes = [*r.items, *(c for c in latest if c not in r.items)]
        # Before completion an item without an attempt is pending, not "not judged".
        verdicts = {c: latest.get(c, Verdict.NOT_JUDGED) for c in codes if done or c in latest}
        return InspectionSummary(
            id=r.id,
            site=r.site,
            line=r.line,
            plate=r.plate,
            vin=r.vin,
            inspection_type=InspectionType(r.inspection_type),
            proxy_driver_id=r.proxy_driver_id,
            state=InspectionState(r.state),
            verdict=None if r.verdict is None else InspectionVerdict(r.verdict),
            revision=r.revision,
            created_at=r.created_at,
            finished_at=r.finished_at,
            failed_items=[c for c, v in verdicts.items() if v is Verdict.FAIL],
            not_judged_items=[c for c, v in verdicts.items() if v is Verdict.NOT_JUDGED],
        )

    def unfinished_inspections(self) -> list[InspectionRecord]:
        """Registered, queued or in-progress inspections, oldest first: what a
        restarted daemon must pick up again."""
        with self._errors(), self._read() as s:
            rows = s.scalars(
                select(Inspection)
                .where(Inspection.state.in_([str(st) for st in UNFINISHED_STATES]))
                .order_by(Inspection.created_at, Inspection.id)
            ).all()
            return [self._inspection_record(s, r) for r in rows]

    def attempt_raw(self, attempt_id: int) -> dict[str, np.ndarray]:
        """The raw arrays of one attempt (empty when it kept none)."""
        with self._errors(), self._read() as s:
            found = s.execute(select(Attempt.raw).where(Attempt.id == attempt_id)).first()
        if found is None:
            raise NotFound(f"no attempt {attempt_id}")
        return {} if found.raw is None else unpack_arrays(found.raw)

    # -- draws -------------------------------------------------------------------

    def record_draw(
        self,
        *,
        line: str,
        inspection_id: str,
        candidates: list[str],
        chosen: str,
        at: datetime,
    ) -> DrawRecord:
        """Append a draw to the chain (next seq, linked to the last hash) and give
        the inspection its proxy driver, in one transaction."""
        if chosen not in candidates:
            raise ValueError(f"chosen proxy driver {chosen!r} is not among {candidates}")
        at = _to_ms(at)

        def work(s: Session) -> DrawRecord:
            row = self._get_inspection(s, inspection_id)
            if s.get(ProxyDriver, chosen) is None:
                raise NotFound(f"no proxy driver {chosen} (sync_proxy_drivers() registers them)")
            last = s.scalars(select(Draw).order_by(Draw.seq.desc()).limit(1)).first()
            unsealed = DrawRecord(
                seq=1 if last is None else last.seq + 1,
                line=line,
                inspection_id=inspection_id,
                candidates=list(candidates),
                chosen=chosen,
                drawn_at=at,
                prev_hash=GENESIS_HASH if last is None else last.hash,
                hash="",
            )
            record = replace(unsealed, hash=unsealed.content_hash())
            s.add(
                Draw(
                    seq=record.seq,
                    line=record.line,
                    inspection_id=record.inspection_id,
                    candidates=record.candidates,
                    chosen=record.chosen,
                    drawn_at=record.drawn_at,
                    prev_hash=record.prev_hash,
                    hash=record.hash,
                )
            )
            row.proxy_driver_id = chosen
            return record

        return self._write_retrying(work)

    def draws(self, line: str | None = None) -> list[DrawRecord]:
        q = select(Draw).order_by(Draw.seq)
        if line is not None:
            q = q.where(Draw.line == line)
        with self._errors(), self._read() as s:
            return [_draw_record(r) for r in s.scalars(q)]

    def verify_draws(self) -> ChainReport:
        """Recompute every hash and link of the draw chain, in seq order; stops at the
        first problem and names it: a gap (deleted record), a broken link (prev_hash
        not the previous record's hash) or content that no longer matches its hash.
        The chain proves its own integrity only: cutting records off its end, or
        rewriting it whole, needs the head hash kept elsewhere to be seen."""
        checked = 0
        prev: DrawRecord | None = None
        with self._errors(), self._read() as s:
            for row in s.scalars(select(Draw).order_by(Draw.seq)).yield_per(1000):
                rec = _draw_record(row)
                checked += 1
                expected_seq = 1 if prev is None else prev.seq + 1
                if rec.seq != expected_seq:
                    missing = (
                        f"{expected_seq}"
                        if rec.seq == expected_seq + 1
                        else f"{expected_seq}..{rec.seq - 1}"
                    )
                    return ChainReport(
                        False,
                        checked,
                        expected_seq,
                        f"draw record(s) seq {missing} missing (deleted): seq {rec.seq} follows "
                        + ("the start of the chain" if prev is None else f"seq {prev.seq}"),
                    )
                expected_prev = GENESIS_HASH if prev is None else prev.hash
                if rec.prev_hash != expected_prev:
                    return ChainReport(
                        False,
                        checked,
                        rec.seq,
                        f"draw seq {rec.seq}: prev_hash does not link to "
                        + ("the genesis hash" if prev is None else f"seq {prev.seq}'s hash"),
                    )
                if rec.content_hash() != rec.hash:
                    return ChainReport(
                        False,
                        checked,
                        rec.seq,
                        f"draw seq {rec.seq}: content does not match its hash (altered)",
                    )
                prev = rec
        return ChainReport(True, checked)

    # -- proxy drivers -------------------------------------------------------------

    def sync_proxy_drivers(
        self, line: str, drivers: list[tuple[str, str, bool]], at: datetime | None = None
    ) -> None:
        """Bring the line's proxy drivers in line with the config: (id, name, on_duty).

        A driver on duty in the config keeps a break the database knows of; one
        marked off duty is off duty; one no longer in the config is set off duty
        but kept (draws name it). Every state change, and a move from another line,
        goes into the duty log.
        """
        at = _utc(at) if at is not None else datetime.now(UTC)
        wanted = {d: (name, on_duty) for d, name, on_duty in drivers}
        with self._errors(), self._write() as s:
            rows = {
                r.id: r
                for r in s.scalars(
                    select(ProxyDriver).where(
                        (ProxyDriver.line == line) | ProxyDriver.id.in_(list(wanted))
                    )
                )
            }
            for driver_id, (name, on_duty) in wanted.items():
                row = rows.get(driver_id)
                if row is None:
                    state = DriverState.ON_DUTY if on_duty else DriverState.OFF_DUTY
                    s.add(
                        ProxyDriver(
                            id=driver_id, line=line, name=name, state=str(state), updated_at=at
                        )
                    )
                    s.flush()
                    s.add(DriverDutyLog(driver_id=driver_id, line=line, state=str(state), at=at))
                    continue
                state = DriverState(row.state)
                if not on_duty:
                    state = DriverState.OFF_DUTY
                elif state is DriverState.OFF_DUTY:
                    state = DriverState.ON_DUTY
                row.name = name
                if state != row.state or row.line != line:
                    row.state, row.line, row.updated_at = str(state), line, at
                    s.add(DriverDutyLog(driver_id=driver_id, line=line, state=str(state), at=at))
            for driver_id, row in rows.items():
                if (
                    driver_id not in wanted
                    and row.line == line
                    and row.state != DriverState.OFF_DUTY
                ):
                    row.state, row.updated_at = str(DriverState.OFF_DUTY), at
                    s.add(
                        DriverDutyLog(
                            driver_id=driver_id, line=line, state=str(DriverState.OFF_DUTY), at=at
                        )
                    )

    def set_driver_state(self, driver_id: str, state: DriverState | str, at: datetime) -> None:
        state, at = DriverState(state), _utc(at)
        with self._errors(), self._write() as s:
            row = s.get(ProxyDriver, driver_id)
            if row is None:
                raise NotFound(f"no proxy driver {driver_id}")
            if row.state != state:
                row.state, row.updated_at = str(state), at
                s.add(DriverDutyLog(driver_id=driver_id, line=row.line, state=str(state), at=at))

    def proxy_drivers(self, line: str) -> list[ProxyDriverRecord]:
        with self._errors(), self._read() as s:
            rows = s.scalars(
                select(ProxyDriver).where(ProxyDriver.line == line).order_by(ProxyDriver.id)
            )
            return [_driver_record(r) for r in rows]

    def duty_log(self, driver_id: str | None = None) -> list[DutyLogRecord]:
        """The duty log, oldest first (one driver's, or everyone's)."""
        q = select(DriverDutyLog).order_by(DriverDutyLog.id)
        if driver_id is not None:
            q = q.where(DriverDutyLog.driver_id == driver_id)
        with self._errors(), self._read() as s:
            return [
                DutyLogRecord(
                    id=r.id, driver_id=r.driver_id, line=r.line, state=DriverState(r.state), at=r.at
                )
                for r in s.scalars(q)
            ]

    # -- outbox --------------------------------------------------------------------

    def pending_outbox(self, limit: int = 100) -> list[OutboxRecord]:
        """Undelivered messages, oldest first."""
        with self._errors(), self._read() as s:
            rows = s.scalars(
                select(Outbox).where(Outbox.delivered_at.is_(None)).order_by(Outbox.id).limit(limit)
            )
            return [_outbox_record(r) for r in rows]

    def mark_delivered(self, ids: list[int], at: datetime) -> None:
        """The broker acknowledged these; a row already delivered keeps its first time."""
        if not ids:
            return
        at = _utc(at)
        with self._errors(), self._write() as s:
            s.execute(
                update(Outbox)
                .where(Outbox.id.in_(list(ids)), Outbox.delivered_at.is_(None))
                .values(delivered_at=at)
            )

    def note_outbox_failure(self, id: int, error: str) -> None:
        with self._errors(), self._write() as s:
            s.execute(
                update(Outbox)
                .where(Outbox.id == id)
                .values(attempts=Outbox.attempts + 1, last_error=error)
            )

    def outbox_backlog(self) -> int:
        with self._errors(), self._read() as s:
            return int(
                s.scalar(
                    select(func.count()).select_from(Outbox).where(Outbox.delivered_at.is_(None))
                )
                or 0
            )

    def outbox(self, inspection_id: str) -> list[OutboxRecord]:
        """Every outbox row of one inspection, oldest first, delivered or not."""
        with self._errors(), self._read() as s:
            rows = s.scalars(
                select(Outbox).where(Outbox.inspection_id == inspection_id).order_by(Outbox.id)
            )
            return [_outbox_record(r) for r in rows]


class AsyncStore:
    """`Store`'s methods as coroutines, all run on one worker thread.

    One thread means one writer for SQLite and calls that run in the order they
    were made. A call whose caller is cancelled still runs to its end (and
    commits) on the worker thread: the database never sees half a call.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linectl-store")
        self._closed = False

    async def _run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._run(self.store.close)
        self._executor.shutdown(wait=False)

    async def upgrade(self) -> None:
        await self._run(self.store.upgrade)

    async def current_revision(self) -> str | None:
        return await self._run(self.store.current_revision)

    async def check_schema(self) -> str:
        return await self._run(self.store.check_schema)

    async def create_inspection(
        self,
        *,
        site: str,
        vehicle: Vehicle,
        inspection_type: InspectionType,
        items: list[str],
        at: datetime,
        request_id: str | None = None,
        reply_for: Callable[[str], dict[str, Any]] | None = None,
        line: str | None = None,
    ) -> str:
        return await self._run(
            self.store.create_inspection,
            site=site,
            vehicle=vehicle,
            inspection_type=inspection_type,
            items=items,
            at=at,
            request_id=request_id,
            reply_for=reply_for,
            line=line,
        )

    async def refuse_registration(
        self, request_id: str, reply: dict[str, Any], at: datetime
    ) -> dict[str, Any]:
        return await self._run(self.store.refuse_registration, request_id, reply, at)

    async def registration_reply(self, request_id: str) -> dict[str, Any] | None:
        return await self._run(self.store.registration_reply, request_id)

    async def assign_line(self, inspection_id: str, line: str) -> None:
        await self._run(self.store.assign_line, inspection_id, line)

    async def set_state(
        self,
        inspection_id: str,
        state: InspectionState | str,
        at: datetime,
        reason: str | None = None,
    ) -> None:
        await self._run(self.store.set_state, inspection_id, state, at, reason)

    async def record_attempt(
        self,
        *,
        inspection_id: str,
        result: ItemResult,
        station: str,
        device: str | None,
        started_at: datetime,
        finished_at: datetime,
    ) -> int:
        return await self._run(
            self.store.record_attempt,
            inspection_id=inspection_id,
            result=result,
            station=station,
            device=device,
            started_at=started_at,
            finished_at=finished_at,
        )

    async def complete_inspection(
        self,
        inspection_id: str,
        *,
        at: datetime,
        result_document: Callable[[InspectionRecord], dict[str, Any]] | None = None,
        abort_reason: str | None = None,
    ) -> InspectionRecord:
        return await self._run(
            self.store.complete_inspection,
            inspection_id,
            at=at,
            result_document=result_document,
            abort_reason=abort_reason,
        )

    async def inspection(self, inspection_id: str) -> InspectionRecord:
        return await self._run(self.store.inspection, inspection_id)

    async def list_inspections(
        self, limit: int = 50, line: str | None = None, state: InspectionState | str | None = None
    ) -> list[InspectionSummary]:
        return await self._run(self.store.list_inspections, limit, line, state)

    async def unfinished_inspections(self) -> list[InspectionRecord]:
        return await self._run(self.store.unfinished_inspections)

    async def attempt_raw(self, attempt_id: int) -> dict[str, np.ndarray]:
        return await self._run(self.store.attempt_raw, attempt_id)

    async def record_draw(
        self, *, line: str, inspection_id: str, candidates: list[str], chosen: str, at: datetime
    ) -> DrawRecord:
        return await self._run(
            self.store.record_draw,
            line=line,
            inspection_id=inspection_id,
            candidates=candidates,
            chosen=chosen,
            at=at,
        )

    async def draws(self, line: str | None = None) -> list[DrawRecord]:
        return await self._run(self.store.draws, line)

    async def verify_draws(self) -> ChainReport:
        return await self._run(self.store.verify_draws)

    async def sync_proxy_drivers(
        self, line: str, drivers: list[tuple[str, str, bool]], at: datetime | None = None
    ) -> None:
        await self._run(self.store.sync_proxy_drivers, line, drivers, at)

    async def set_driver_state(
        self, driver_id: str, state: DriverState | str, at: datetime
    ) -> None:
        await self._run(self.store.set_driver_state, driver_id, state, at)

    async def proxy_drivers(self, line: str) -> list[ProxyDriverRecord]:
        return await self._run(self.store.proxy_drivers, line)

    async def duty_log(self, driver_id: str | None = None) -> list[DutyLogRecord]:
        return await self._run(self.store.duty_log, driver_id)

    async def pending_outbox(self, limit: int = 100) -> list[OutboxRecord]:
        return await self._run(self.store.pending_outbox, limit)

    async def mark_delivered(self, ids: list[int], at: datetime) -> None:
        await self._run(self.store.mark_delivered, ids, at)

    async def note_outbox_failure(self, id: int, error: str) -> None:
        await self._run(self.store.note_outbox_failure, id, error)

    async def outbox_backlog(self) -> int:
        return await self._run(self.store.outbox_backlog)

    async def outbox(self, inspection_id: str) -> list[OutboxRecord]:
        return await self._run(self.store.outbox, inspection_id)
