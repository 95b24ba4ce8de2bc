"""The alarms raised on a line in a span of time, for an inspection's story.

The alarm table belongs to the alarm system (reference/http.md, `/api/alarms`);
this reads it, and only if it is there: on a database without an `alarms`
table, or one without the columns named below, an inspection's story simply
has no alarms in it. Read by name with SQL Core, not through its model, so the
story needs nothing from the alarm system's code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, MetaData, Table, and_, inspect, or_, select
from sqlalchemy.types import NullType

from linectl.store.base import StoreBase, utc
from linectl.store.models import UTCDateTime

TABLE = "alarms"
TIMES = ("raised_at", "cleared_at")
COLUMNS = ("id", "line", "station", "device", "priority", "raised_at", "cleared_at", "message")


def alarms_during(
    store: StoreBase, line: str | None, since: datetime, until: datetime | None
) -> list[dict[str, Any]]:
    """Alarms of `line` (or of no line: site-wide) active at any time from `since`
    to `until` (None: still now), oldest first; [] when there is no alarm table."""
    engine = store._engine
    with store._errors():
        insp = inspect(engine)
        if not insp.has_table(TABLE):
            return []
        have = {c["name"] for c in insp.get_columns(TABLE)}
        if not set(COLUMNS) <= have:
            return []
        # Times as the site stores every time (UTC, aware); the rest as they come.
        table = Table(
            TABLE,
            MetaData(),
            *(Column(n, UTCDateTime if n in TIMES else NullType) for n in COLUMNS),
        )
        c = table.c
        q = select(*(c[name] for name in COLUMNS)).where(
            or_(c.line == line, c.line.is_(None)),
            or_(c.cleared_at.is_(None), c.cleared_at >= utc(since)),
        )
        if until is not None:
            q = q.where(and_(c.raised_at <= utc(until)))
        with engine.connect() as conn:
            rows = conn.execute(q.order_by(c.raised_at)).mappings().all()
    return [dict(r) for r in rows]
