"""Alarms as kept: every occurrence, its state and who acknowledged or shelved it.

Rows are written by the alarm monitor (linectl.alarms.monitor) on every
transition, and read back as `linectl.alarms.state.Alarm`. A closed alarm
stays for the record (the console's "top alarms this week" counts them).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from linectl.alarms.state import Alarm, AlarmState, Priority
from linectl.store.base import NotFound, StoreBase, utc
from linectl.store.models import AlarmRow

_TIMES = ("raised_at", "cleared_at", "acked_at", "shelved_until", "closed_at")


def _alarm(r: AlarmRow) -> Alarm:
    return Alarm(
        id=r.id,
        key=r.key,
        kind=r.kind,
        priority=Priority(r.priority),
        state=AlarmState(r.state),
        raised_at=r.raised_at,
        message=r.message,
        line=r.line,
        station=r.station,
        device=r.device,
        active=r.active,
        cleared_at=r.cleared_at,
        acked_by=r.acked_by,
        acked_at=r.acked_at,
        comment=r.comment,
        silenced=r.silenced,
        silenced_by=r.silenced_by,
        shelved_by=r.shelved_by,
        shelved_until=r.shelved_until,
        shelve_reason=r.shelve_reason,
        closed_at=r.closed_at,
    )


def _columns(a: Alarm) -> dict[str, Any]:
    cols = asdict(a)
    cols.pop("id")
    cols["priority"] = str(a.priority)
    cols["state"] = str(a.state)
    for name in _TIMES:
        if cols[name] is not None:
            cols[name] = utc(cols[name])
    return cols


class AlarmStore(StoreBase):
    # -- alarms --------------------------------------------------------------------

    def insert_alarm(self, alarm: Alarm) -> Alarm:
        """Keep a new alarm (its `id` is ignored); the alarm with the id it got."""
        with self._errors(), self._write() as s:
            row = AlarmRow(**_columns(alarm))
            s.add(row)
            s.flush()
            return _alarm(row)

    def save_alarm(self, alarm: Alarm) -> None:
        """Write an alarm's new state over its row."""
        with self._errors(), self._write() as s:
            row = s.get(AlarmRow, alarm.id)
            if row is None:
                raise NotFound(f"no alarm {alarm.id}")
            for name, value in _columns(alarm).items():
                setattr(row, name, value)

    def alarm(self, alarm_id: int) -> Alarm:
        with self._errors(), self._read() as s:
            row = s.get(AlarmRow, alarm_id)
            if row is None:
                raise NotFound(f"no alarm {alarm_id}")
            return _alarm(row)

    def open_alarms(self) -> list[Alarm]:
        """Every alarm not closed, oldest first."""
        with self._errors(), self._read() as s:
            rows = s.scalars(
                select(AlarmRow).where(AlarmRow.state != "closed").order_by(AlarmRow.id)
            )
            return [_alarm(r) for r in rows]

    def list_alarms(
        self,
        *,
        states: tuple[str, ...] | None = None,
        line: str | None = None,
        limit: int = 200,
    ) -> list[Alarm]:
        """Alarms newest first, in any of `states` (None: all) and of `line`."""
        q = select(AlarmRow).order_by(AlarmRow.id.desc()).limit(limit)
        if states is not None:
            q = q.where(AlarmRow.state.in_(states))
        if line is not None:
            q = q.where(AlarmRow.line == line)
        with self._errors(), self._read() as s:
            return [_alarm(r) for r in s.scalars(q)]

    def raised_since(self, since: datetime) -> list[datetime]:
        """When each alarm raised since `since` was raised (flood detection)."""
        with self._errors(), self._read() as s:
            return list(
                s.scalars(select(AlarmRow.raised_at).where(AlarmRow.raised_at > utc(since)))
            )

    def top_alarms(self, since: datetime, limit: int = 10) -> list[dict[str, Any]]:
        """The conditions raised most often since `since`: the bad actors to fix."""
        n = func.count(AlarmRow.id).label("n")
        q = (
            select(AlarmRow.key, AlarmRow.kind, AlarmRow.line, AlarmRow.station, AlarmRow.device, n)
            .where(AlarmRow.raised_at > utc(since))
            .group_by(AlarmRow.key, AlarmRow.kind, AlarmRow.line, AlarmRow.station, AlarmRow.device)
            .order_by(n.desc(), AlarmRow.key)
            .limit(limit)
        )
        with self._errors(), self._read() as s:
            return [
                {"key": r.key, "kind": r.kind, "line": r.line, "station": r.station,
                 "device": r.device, "count": int(r.n)}
                for r in s.execute(q)
            ]  # fmt: skip
