"""An inspection's story reads the alarms of its line while it was there, from the
alarm table when the site keeps one, and finds none when it does not."""

from __future__ import annotations

from datetime import timedelta

import store_fixtures
from sqlalchemy import Column, Engine, Integer, MetaData, String, Table
from store_fixtures import at

from linectl.store.alarm_reads import alarms_during
from linectl.store.models import UTCDateTime
from linectl.store.repo import Store

db_url = store_fixtures.db_url
store = store_fixtures.store
raw_engine = store_fixtures.raw_engine


def test_no_alarm_table_no_alarms(store: Store) -> None:
    assert alarms_during(store, "L1", at(0), at(10)) == []


def test_alarms_active_while_on_the_line(store: Store, raw_engine: Engine) -> None:
    with raw_engine.begin() as c:
        # As a migration would make it: times as every time in the site's database.
        Table(
            "alarms",
            MetaData(),
            Column("id", Integer, primary_key=True),
            *(Column(n, String(80)) for n in ("key", "line", "station", "device", "priority")),
            Column("state", String(16)),
            Column("raised_at", UTCDateTime, nullable=False),
            Column("cleared_at", UTCDateTime),
            Column("message", String(200)),
        ).create(c)
        rows = [
            (1, "L1", at(-30), at(-20), "cleared before"),
            (2, "L1", at(-5), at(3), "cleared during"),
            (3, "L1", at(4), None, "still active"),
            (4, "L2", at(4), None, "another line"),
            (5, None, at(6), at(7), "site-wide"),
            (6, "L1", at(20), None, "raised after"),
        ]
        for id_, line, raised, cleared, msg in rows:
            c.execute(
                Table("alarms", MetaData(), autoload_with=c).insert(),
                {"id": id_, "key": "k", "line": line, "station": "brake", "device": "rbt",
                 "priority": "high", "state": "unacked", "raised_at": raised,
                 "cleared_at": cleared, "message": msg},
            )  # fmt: skip
    found = alarms_during(store, "L1", at(0), at(10))
    assert [a["message"] for a in found] == ["cleared during", "still active", "site-wide"]
    assert found[0]["raised_at"] - at(-5) < timedelta(seconds=1)
    assert found[0]["raised_at"].tzinfo is not None
    # Still on the line: everything raised since, up to now.
    assert len(alarms_during(store, "L1", at(0), None)) == 4
