"""The plain records the store hands out, and the result document built from them.

Everything the store returns is one of these frozen dataclasses: no ORM
object or session ever leaves `linectl.store`. `default_result_document`
turns an `InspectionRecord` into the upstream result payload of mqtt.md
(schema "linectl.result/1"); `DrawRecord.content_hash` is the one definition
of the draw chain's hash.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from linectl.clock import utc_iso
from linectl.items import InspectionVerdict, Verdict, sort_items
from linectl.vehicle import InspectionType, Vehicle

RESULT_SCHEMA = "linectl.result/1"
GENESIS_HASH = "0" * 64
# An item with no attempt at all: not judged, and this is why.
NOT_TESTED = "not_tested"


class InspectionState(StrEnum):
    REGISTERED = "registered"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    ABORTED = "aborted"


UNFINISHED_STATES = (
    InspectionState.REGISTERED,
    InspectionState.QUEUED,
    InspectionState.IN_PROGRESS,
)


class DriverState(StrEnum):
    ON_DUTY = "on_duty"
    OFF_DUTY = "off_duty"
    BREAK = "break"


def _iso(dt: datetime | None) -> str | None:
    return None if dt is None else utc_iso(dt)


@dataclass(frozen=True)
class AttemptRecord:
    """One attempt at one item. The raw arrays stay in the database until asked for
    (`Store.attempt_raw(id)`); `raw_bytes` is their stored size."""

    id: int
    inspection_id: str
    item_code: str
    attempt_no: int
    station: str
    device: str | None
    started_at: datetime
    finished_at: datetime
    verdict: Verdict
    reason: str | None
    values: dict[str, Any]
    limits: dict[str, Any]
    curve: str | None
    raw_bytes: int
    latest: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "code": self.item_code,
            "attempt": self.attempt_no,
            "station": self.station,
            "device": self.device,
            "started_at": utc_iso(self.started_at),
            "finished_at": utc_iso(self.finished_at),
            "verdict": str(self.verdict),
            "reason": self.reason,
            "values": self.values,
            "limits": self.limits,
            "curve": self.curve,
            "raw_bytes": self.raw_bytes,
            "latest": self.latest,
        }


@dataclass(frozen=True)
class DrawRecord:
    """One random proxy-driver assignment, a link of the tamper-evident chain."""

    seq: int
    line: str
    inspection_id: str
    candidates: list[str]
    chosen: str
    drawn_at: datetime
    prev_hash: str
    hash: str
    vehicles: list[str] | None = None  # inspections the vehicle was drawn among

    def canonical(self) -> bytes:
        """The hashed content: sorted-key compact JSON, drawn_at as ISO UTC (ms).
        `vehicles` is hashed when there is one, so records before it still verify."""
        content: dict[str, Any] = {
            "seq": self.seq,
            "line": self.line,
            "inspection_id": self.inspection_id,
            "candidates": list(self.candidates),
            "chosen": self.chosen,
            "drawn_at": utc_iso(self.drawn_at),
        }
        if self.vehicles is not None:
            content["vehicles"] = list(self.vehicles)
        return json.dumps(
            content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    def content_hash(self) -> str:
        """SHA-256 hex of the canonical content followed by prev_hash."""
        return hashlib.sha256(self.canonical() + self.prev_hash.encode("ascii")).hexdigest()

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "line": self.line,
            "inspection_id": self.inspection_id,
            "candidates": list(self.candidates),
            "chosen": self.chosen,
            "drawn_at": utc_iso(self.drawn_at),
            "vehicles": None if self.vehicles is None else list(self.vehicles),
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class ChainReport:
    """The outcome of re-checking the draw chain. `checked` counts the records
    examined, up to and including the first bad one."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None


@dataclass(frozen=True)
class RetestRecord:
    """A retest: a later visit of an inspected vehicle, for `items`, whose result
    carries `revision`."""

    inspection_id: str
    revision: int
    request_id: str
    items: list[str]
    line: str | None
    registered_at: datetime


@dataclass(frozen=True)
class InspectionRecord:
    """One inspection with all its attempts (oldest first), its retests (oldest first)
    and the draw of its current visit (the latest retest's, once one is registered)."""

    id: str
    request_id: str | None
    site: str
    line: str | None
    inspection_type: InspectionType
    vehicle: Vehicle
    items: list[str]
    state: InspectionState
    verdict: InspectionVerdict | None
    revision: int
    proxy_driver_id: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    abort_reason: str | None
    attempts: list[AttemptRecord] = field(default_factory=list)
    draw: DrawRecord | None = None
    retests: list[RetestRecord] = field(default_factory=list)

    @property
    def plate(self) -> str:
        return self.vehicle.plate

    @property
    def vin(self) -> str:
        return self.vehicle.vin

    def all_items(self) -> list[str]:
        """The planned items, plus any item that has an attempt, in item order."""
        return sort_items([*self.items, *(a.item_code for a in self.attempts)])

    def latest_attempts(self) -> dict[str, AttemptRecord]:
        """The attempt that counts for each item that has one, in item order."""
        latest = {a.item_code: a for a in self.attempts if a.latest}
        return {code: latest[code] for code in self.all_items() if code in latest}

    def item_verdicts(self) -> dict[str, Verdict]:
        """Each item's verdict from its latest attempt; an item with none is not judged."""
        latest = self.latest_attempts()
        return {
            code: latest[code].verdict if code in latest else Verdict.NOT_JUDGED
            for code in self.all_items()
        }

    def attempt_numbers(self, code: str) -> list[int]:
        return sorted(a.attempt_no for a in self.attempts if a.item_code == code)

    def retest_for(self, revision: int) -> RetestRecord | None:
        """The retest whose result carries `revision` (None for the first visit)."""
        return next((r for r in self.retests if r.revision == revision), None)

    def pending_retest(self) -> RetestRecord | None:
        """The retest registered and not finished yet: its result is the next revision."""
        return self.retest_for(self.revision + 1)

    def visit_items(self) -> list[str]:
        """The items of the visit under way (or the last one): a retest's own items."""
        visit = self.pending_retest() or self.retest_for(self.revision)
        return list(visit.items) if visit is not None else list(self.items)


@dataclass(frozen=True)
class InspectionSummary:
    """One line of the inspection list."""

    id: str
    site: str
    line: str | None
    plate: str
    vin: str
    inspection_type: InspectionType
    proxy_driver_id: str | None
    state: InspectionState
    verdict: InspectionVerdict | None
    revision: int
    created_at: datetime
    finished_at: datetime | None
    failed_items: list[str]
    not_judged_items: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "inspection_id": self.id,
            "site": self.site,
            "line": self.line,
            "plate": self.plate,
            "vin": self.vin,
            "inspection_type": str(self.inspection_type),
            "proxy_driver": self.proxy_driver_id,
            "state": str(self.state),
            "verdict": None if self.verdict is None else str(self.verdict),
            "revision": self.revision,
            "created_at": utc_iso(self.created_at),
            "finished_at": _iso(self.finished_at),
            "failed_items": self.failed_items,
            "not_judged_items": self.not_judged_items,
        }


@dataclass(frozen=True)
class ProxyDriverRecord:
    id: str
    line: str
    name: str
    state: DriverState
    updated_at: datetime


@dataclass(frozen=True)
class DutyLogRecord:
    """One entry of the append-only duty log."""

    id: int
    driver_id: str
    line: str
    state: DriverState
    at: datetime


@dataclass(frozen=True)
class OutboxRecord:
    """A message waiting for (or done with) the broker; `payload` is JSON text."""

    id: int
    kind: str
    inspection_id: str | None
    revision: int | None
    payload: str
    created_at: datetime
    delivered_at: datetime | None
    attempts: int
    last_error: str | None


def default_result_document(record: InspectionRecord) -> dict[str, Any]:
    """The upstream result payload of mqtt.md for `record`, every item included.

    An item that never got an attempt is reported `not_judged` with attempt 0,
    reason "not_tested" and null station and device, so the registry sees every
    planned item.
    """
    latest = record.latest_attempts()
    items: list[dict[str, Any]] = []
    for code in record.all_items():
        a = latest.get(code)
        if a is None:
            items.append(
                {
                    "code": code,
                    "verdict": str(Verdict.NOT_JUDGED),
                    "attempt": 0,
                    "station": None,
                    "device": None,
                    "values": {},
                    "limits": {},
                    "curve": None,
                    "reason": NOT_TESTED,
                }
            )
            continue
        item: dict[str, Any] = {
            "code": code,
            "verdict": str(a.verdict),
            "attempt": a.attempt_no,
            "station": a.station,
            "device": a.device,
            "values": a.values,
            "limits": a.limits,
            "curve": a.curve,
        }
        if a.reason:
            item["reason"] = a.reason
        items.append(item)

    proxy_driver: dict[str, Any] | None = None
    if record.draw is not None:
        proxy_driver = {
            "id": record.draw.chosen,
            "assigned_at": utc_iso(record.draw.drawn_at),
            "candidates": list(record.draw.candidates),
            # The inspections its vehicle was drawn among (added by issue 15).
            "vehicles": list(record.draw.vehicles or [record.draw.inspection_id]),
            # The draw chain's record and hash: the registry keeps anchors of the
            # chain, so a chain cut short or rewritten on site no longer matches them.
            "draw_seq": record.draw.seq,
            "draw_hash": record.draw.hash,
        }
    elif record.proxy_driver_id is not None:
        proxy_driver = {"id": record.proxy_driver_id, "assigned_at": None, "candidates": []}

    retest = record.retest_for(record.revision)
    doc = {
        "schema": RESULT_SCHEMA,
        "inspection_id": record.id,
        # A retest's result answers the retest's request.
        "request_id": record.request_id if retest is None else retest.request_id,
        "revision": record.revision,
        "site": record.site,
        "line": record.line,
        "inspection_type": str(record.inspection_type),
        "vehicle": record.vehicle.to_dict(),
        "proxy_driver": proxy_driver,
        "started_at": _iso(record.started_at),
        "finished_at": _iso(record.finished_at),
        "verdict": None if record.verdict is None else str(record.verdict),
        "items": items,
    }
    if retest is not None:
        # Added to mqtt.md's fields: what this visit tested again (the other items
        # keep their earlier attempts).
        doc["retested_items"] = list(retest.items)
    if record.state is InspectionState.ABORTED:
        # Added to mqtt.md's fields: why the vehicle left the line unfinished.
        doc["aborted"] = record.abort_reason or "aborted"
    return doc
