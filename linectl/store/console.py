"""What the console asks of the records besides single inspections: the day's figures.

`finished_counts(since)` counts inspections that ended since a moment, per line
and per outcome (the verdict, or "aborted"), in one grouped query: the board
shows each line's day without reading its inspections.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from linectl.store.base import StoreBase, utc
from linectl.store.models import Inspection


class ConsoleStore(StoreBase):
    def finished_counts(self, since: datetime) -> dict[str, dict[str, int]]:
        """{line: {outcome: n}} of inspections finished at or after `since`; outcome
        is the verdict (pass, fail, incomplete) or "aborted"."""
        q = (
            select(Inspection.line, Inspection.state, Inspection.verdict, func.count())
            .where(Inspection.finished_at >= utc(since))
            .group_by(Inspection.line, Inspection.state, Inspection.verdict)
        )
        out: dict[str, dict[str, int]] = {}
        with self._errors(), self._read() as s:
            for line, state, verdict, n in s.execute(q):
                outcome = "aborted" if state == "aborted" else str(verdict or "incomplete")
                per = out.setdefault(line or "", {})
                per[outcome] = per.get(outcome, 0) + int(n)
        return out
