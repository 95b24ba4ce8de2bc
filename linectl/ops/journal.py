"""Searching the journal of actions, and writing what was found as CSV.

The console's journal page and `GET /api/journal` both ask here: by
inspection, by vehicle (a plate or VIN, or a part of one: every inspection
of that vehicle), by person, by action, from `since` and before `until`
(dates or ISO times, a date in the site's time zone), newest first, paged
back with `before` (a seq). Reading the journal is a viewer's right: it
records what was done to the site, the site's own record of itself.

CSV is for a spreadsheet: UTF-8 with a byte-order mark (so Chinese reasons
open right), one row per entry, `changes` as JSON, and any cell a
spreadsheet would take for a formula quoted with a leading apostrophe (a
reason typed as `=HYPERLINK(...)` stays text).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from linectl.ops.actor import Action, Actor
from linectl.ops.errors import Invalid
from linectl.ops.operations import Operations
from linectl.store.journal import JournalRecord

LIMIT_MAX = 5000
VEHICLE_INSPECTIONS_MAX = 500  # a vehicle's inspections searched; years of visits
CSV_COLUMNS = (
    "seq",
    "at",
    "user",
    "role",
    "via",
    "address",
    "session",
    "action",
    "target",
    "reason",
    "outcome",
    "changes",
    "prev_hash",
    "hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class JournalQuery:
    inspection: str | None = None
    vehicle: str | None = None  # plate or VIN, or a part of one
    user: str | None = None
    action: str | None = None
    since: str | None = None
    until: str | None = None  # a date: up to the end of that day
    before: int | None = None
    limit: int = 200

    @classmethod
    def of(cls, **given: Any) -> JournalQuery:
        """From query parameters: blank ones are absent."""
        clean = {k: (v.strip() if isinstance(v, str) else v) for k, v in given.items()}
        return cls(**{k: v for k, v in clean.items() if v not in (None, "")})


def _until(ops: Operations, text: str | None) -> datetime | None:
    """A time, or a date meaning the end of that day (the next midnight there)."""
    if text is None:
        return None
    try:
        at = ops.parse_time(text)
    except Invalid:
        raise Invalid(
            "until", f"until must be a date or an ISO 8601 time, not {text[:40]!r}"
        ) from None
    assert at is not None
    if len(text) == 10:  # a date alone: its midnight, so the whole day is in
        at = (at + timedelta(days=1)).replace(hour=0, minute=0)  # across a DST change too
    return at


async def search(ops: Operations, actor: Actor, q: JournalQuery) -> list[JournalRecord]:
    """The entries that match every given filter, newest first, at most `q.limit`."""
    ops.allow(actor, Action.READ)
    if not 1 <= q.limit <= LIMIT_MAX:
        raise Invalid("limit", f"limit must be 1..{LIMIT_MAX}")
    since = ops.parse_time(q.since)
    until = _until(ops, q.until)
    targets: list[str] | None = None
    if q.inspection is not None:
        targets = [f"inspection:{q.inspection}"]
    if q.vehicle is not None:
        key = q.vehicle.upper()
        found = {
            r.id
            for field in ("plate", "vin")
            for r in await ops.store.list_inspections(limit=VEHICLE_INSPECTIONS_MAX, **{field: key})
        }
        mine = {f"inspection:{i}" for i in found}
        targets = sorted(mine if targets is None else mine & set(targets))
        if not targets:
            return []
    entries: list[JournalRecord] = await ops.store.journal(
        q.limit,
        before_seq=q.before,
        user=q.user,
        targets=targets,
        action=q.action,
        since=since,
        until=until,
    )
    return entries


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(entries: list[JournalRecord]) -> str:
    out = io.StringIO()
    out.write("\ufeff")
    w = csv.writer(out, lineterminator="\r\n")
    w.writerow(CSV_COLUMNS)
    for e in entries:
        row = e.content()
        row["changes"] = json.dumps(e.changes, ensure_ascii=False, sort_keys=True)
        row["prev_hash"], row["hash"] = e.prev_hash, e.hash
        w.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()
