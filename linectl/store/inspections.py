"""Inspections: registration, lifecycle, attempts, completion with the result's outbox row, reading.

Writes that must never be half-done are single transactions: an inspection
and its registration reply; a result's verdict, revision, its outbox row and
its published copy (linectl.store.published). A retest (linectl.store.retests)
is a later visit of the same inspection: its attempts number on from the
earlier ones, and its completion is the next revision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linectl.items import (
    InspectionVerdict,
    ItemResult,
    Verdict,
    inspection_verdict,
    latest_verdicts,
)
from linectl.store.base import (
    DuplicateRequest,
    NotFound,
    StoreBase,
    dumps,
    get_inspection,
    jsonable,
    utc,
)
from linectl.store.blobs import pack_arrays, unpack_arrays
from linectl.store.draws import draw_record
from linectl.store.journal import append_entry
from linectl.store.models import (
    Attempt,
    Draw,
    Inspection,
    Outbox,
    PublishedResult,
    Registration,
    Retest,
)
from linectl.store.records import (
    UNFINISHED_STATES,
    AttemptRecord,
    InspectionRecord,
    InspectionState,
    InspectionSummary,
    default_result_document,
)
from linectl.store.retests import retest_record
from linectl.vehicle import Fuel, InspectionType, Vehicle

OUTBOX_RESULT = "result"


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


class InspectionStore(StoreBase):
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
        journal_for: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> str:
        """Insert an inspection (state registered) and, with a request_id, the
        reply to it, in one transaction; the new id. `DuplicateRequest` when the
        request_id is already known: nothing is created then.

        `journal_for(reply)`, with a request_id, gives the fields of the journal
        entry (linectl.store.journal.append_entry) written in the same
        transaction: the inspection, its reply and its entry are kept together
        or not at all, in one commit."""
        at = utc(at)
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
                if journal_for is not None:
                    append_entry(s, **journal_for(reply))
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
        at = utc(at)

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

    def assign_line(self, inspection_id: str, line: str) -> None:
        with self._errors(), self._write() as s:
            get_inspection(s, inspection_id).line = line

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
        at = utc(at)
        with self._errors(), self._write() as s:
            row = get_inspection(s, inspection_id)
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
        started_at, finished_at = utc(started_at), utc(finished_at)
        raw = pack_arrays(result.raw) if result.raw else None
        values, limits = jsonable(result.values), jsonable(result.limits)
        verdict = str(Verdict(result.verdict))

        def work(s: Session) -> int:
            get_inspection(s, inspection_id)
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
        once: bool = False,
    ) -> InspectionRecord:
        """In one transaction: the verdict from each item's latest attempt (an item
        without one is not judged), the next revision, state completed, and the
        result's outbox row. If anything fails, none of it is kept.

        With `abort_reason` the inspection ends aborted instead (the vehicle left
        the line unfinished): its result still goes out, through the outbox like
        any other, so the registry learns of it even if the broker is away now.

        With `once`, an inspection already completed or aborted is returned as it
        is: a completion tried again after a failure whose commit had in fact gone
        through (a connection lost on COMMIT) makes no second revision."""
        at = utc(at)
        build = result_document or default_result_document
        with self._errors(), self._write() as s:
            row = get_inspection(s, inspection_id)
            finished = (str(InspectionState.COMPLETED), str(InspectionState.ABORTED))
            if once and row.state in finished:
                return self._inspection_record(s, row)
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
            payload = dumps(build(record))
            s.add(
                Outbox(
                    kind=OUTBOX_RESULT,
                    inspection_id=inspection_id,
                    revision=row.revision,
                    payload=payload,
                    created_at=at,
                    attempts=0,
                )
            )
            # The publisher sends the outbox text as UTF-8: these are the bytes that go out.
            s.add(
                PublishedResult(
                    inspection_id=inspection_id,
                    revision=row.revision,
                    at=at,
                    payload=payload.encode("utf-8"),
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
        retests = s.scalars(
            select(Retest).where(Retest.inspection_id == row.id).order_by(Retest.revision)
        ).all()
        # The current visit's draw: one made after the latest retest was registered.
        floor = max((r.after_draw_seq for r in retests), default=0)
        draw = s.scalars(
            select(Draw)
            .where(Draw.inspection_id == row.id, Draw.seq > floor)
            .order_by(Draw.seq.desc())
            .limit(1)
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
            draw=None if draw is None else draw_record(draw),
            retests=[retest_record(r) for r in retests],
        )

    def inspection(self, inspection_id: str) -> InspectionRecord:
        with self._errors(), self._read() as s:
            return self._inspection_record(s, get_inspection(s, inspection_id))

    def list_inspections(
        self,
        limit: int = 50,
        line: str | None = None,
        state: InspectionState | str | None = None,
        *,
        plate: str | None = None,
        vin: str | None = None,
        verdict: InspectionVerdict | str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[InspectionSummary]:
        """The newest `limit` inspections, newest first. `plate` and `vin` match any
        part (VIN case-insensitively); `since` is the earliest registration time,
        `until` the first one too late."""
        q = select(Inspection).order_by(Inspection.created_at.desc(), Inspection.id.desc())
        if line is not None:
            q = q.where(Inspection.line == line)
        if state is not None:
            q = q.where(Inspection.state == str(InspectionState(state)))
        if plate:
            q = q.where(Inspection.plate.contains(plate, autoescape=True))
        if vin:
            q = q.where(Inspection.vin.contains(vin.upper(), autoescape=True))
        if verdict is not None:
            q = q.where(Inspection.verdict == str(InspectionVerdict(verdict)))
        if since is not None:
            q = q.where(Inspection.created_at >= utc(since))
        if until is not None:
            q = q.where(Inspection.created_at < utc(until))
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
