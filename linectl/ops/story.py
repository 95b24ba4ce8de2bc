"""An inspection's story: what happened to it, in order, and who did it.

Told from the records the site keeps anyway, never from logs: the journal
(registered by whom and from which terminal, retests, aborts with their
reason, refused and denied attempts at them), the draw chain (the proxy
driver drawn, among which candidates, each visit), the attempts (the
stations, with their items and verdicts), the alarms raised on its line
while it was there (linectl.store.alarm_reads; none when the site keeps no
alarm table) and the record's own times (started, finished).

Each step is a `Step`: when, what (`kind`), who and from where when a
person or system acted, and the facts the console's template words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from linectl.ops.actor import Action, Actor
from linectl.ops.operations import Operations
from linectl.store.alarm_reads import alarms_during
from linectl.store.journal import JournalRecord
from linectl.store.records import InspectionRecord

JOURNAL_MAX = 500  # entries about one inspection; far more than a busy one gathers


@dataclass(frozen=True)
class Step:
    at: datetime
    # registered, retest, drawn, started, station, alarm, abort, aborted, finished, action
    kind: str
    facts: dict[str, Any] = field(default_factory=dict)
    entry: JournalRecord | None = None  # the journal entry, when a person or system acted

    def sort_key(self) -> tuple[datetime, int]:
        return self.at, _ORDER.get(self.kind, 5)


# Steps at the same millisecond in the order they happen.
_ORDER = {
    "registered": 0,
    "retest": 0,
    "drawn": 1,
    "started": 2,
    "station": 3,
    "aborted": 9,
    "finished": 9,
}


async def alarms_while_on_line(ops: Operations, rec: InspectionRecord) -> list[dict[str, Any]]:
    """Alarms of the inspection's line from its registration to its end (now while
    it runs); [] when none, or when the site keeps no alarm table."""
    if rec.line is None:
        return []
    store = ops.store
    found: list[dict[str, Any]] = await store.run(
        alarms_during, store.store, rec.line, rec.created_at, rec.finished_at
    )
    return found


def _stations(rec: InspectionRecord) -> list[Step]:
    """One step per visit of a station: its attempts, from the first start to the
    last end, with each item's verdict."""
    steps: list[Step] = []
    visit: list[Any] = []
    for a in sorted(rec.attempts, key=lambda a: a.started_at):
        if visit and visit[-1].station != a.station:
            steps.append(_visit(visit))
            visit = []
        visit.append(a)
    if visit:
        steps.append(_visit(visit))
    return steps


def _visit(attempts: list[Any]) -> Step:
    return Step(
        attempts[0].started_at,
        "station",
        {
            "station": attempts[0].station,
            "until": max(a.finished_at for a in attempts),
            "items": [(a.item_code, a.attempt_no, str(a.verdict)) for a in attempts],
        },
    )


async def story(ops: Operations, actor: Actor, rec: InspectionRecord) -> list[Step]:
    """Every step of the inspection's life, oldest first."""
    ops.allow(actor, Action.READ)
    entries: list[JournalRecord] = await ops.store.journal(
        JOURNAL_MAX, target=f"inspection:{rec.id}"
    )
    steps: list[Step] = []
    registered = [e for e in entries if e.action == "register" and e.outcome == "ok"]
    steps.append(
        Step(
            rec.created_at,
            "registered",
            {"line": rec.line, "request_id": rec.request_id},
            registered[-1] if registered else None,
        )
    )
    for e in entries:
        if e.action == "register" and e.outcome == "ok":
            continue
        kind = e.action if e.action in ("abort", "retest") else "action"
        steps.append(Step(e.at, kind, dict(e.changes), e))
    for d in await ops.store.draws(inspection_id=rec.id):
        steps.append(
            Step(
                d.drawn_at, "drawn", {"driver": d.chosen, "candidates": d.candidates, "seq": d.seq}
            )
        )
    if rec.started_at is not None:
        steps.append(Step(rec.started_at, "started", {"line": rec.line}))
    steps.extend(_stations(rec))
    for a in await alarms_while_on_line(ops, rec):
        steps.append(Step(a["raised_at"], "alarm", a))
    aborted_by = [e for e in entries if e.action == "abort" and e.outcome == "ok"]
    if str(rec.state) == "aborted" and not aborted_by:
        # Ended by the site itself (a shutdown, a fault), not by a person's abort.
        at = rec.finished_at or rec.created_at
        steps.append(Step(at, "aborted", {"reason": rec.abort_reason}))
    if rec.finished_at is not None and str(rec.state) == "completed":
        verdict = None if rec.verdict is None else str(rec.verdict)
        steps.append(Step(rec.finished_at, "finished", {"verdict": verdict}))
    return sorted(steps, key=Step.sort_key)
