"""The outbox: messages committed with what they report, drained to the broker.

A row is marked delivered only once the broker acknowledged it, so a result
survives any outage or restart (mqtt.md: at least once). Delivered rows are
pruned after a while (`database.delivered_outbox_days`); an undelivered row
never is, however old.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update

from linectl.store.base import StoreBase, utc
from linectl.store.models import Outbox
from linectl.store.records import OutboxRecord


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


class OutboxStore(StoreBase):
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
        at = utc(at)
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

    def oldest_pending_at(self) -> datetime | None:
        """When the oldest undelivered row was written; None when all are delivered."""
        with self._errors(), self._read() as s:
            return s.scalar(
                select(func.min(Outbox.created_at)).where(Outbox.delivered_at.is_(None))
            )

    def outbox(self, inspection_id: str) -> list[OutboxRecord]:
        """Every outbox row of one inspection, oldest first, delivered or not."""
        with self._errors(), self._read() as s:
            rows = s.scalars(
                select(Outbox).where(Outbox.inspection_id == inspection_id).order_by(Outbox.id)
            )
            return [_outbox_record(r) for r in rows]

    def prune_outbox(self, delivered_before: datetime) -> int:
        """Delete the rows the broker acknowledged before `delivered_before`; how
        many. Undelivered rows stay, whatever their age: they are results the
        registry has not got yet."""
        at = utc(delivered_before)
        with self._errors(), self._write() as s:
            gone = s.execute(
                delete(Outbox).where(Outbox.delivered_at.is_not(None), Outbox.delivered_at < at)
            )
            return int(gone.rowcount or 0)
