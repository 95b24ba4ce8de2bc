"""An inspection's story reads the alarms of its line while it was there, from the
alarm system's table, and finds none in a database without one."""

from __future__ import annotations

from datetime import timedelta

import store_fixtures
from sqlalchemy import Engine, MetaData, Table
from store_fixtures import at

from linectl.store.alarm_reads import alarms_during
from linectl.store.repo import Store

db_url = store_fixtures.db_url
store = store_fixtures.store
raw_engine = store_fixtures.raw_engine


def test_no_alarm_table_no_alarms(store: Store, raw_engine: Engine) -> None:
    # A database from before the alarm system (or without it): no alarms, no error.
    with raw_engine.begin() as c:
        c.exec_driver_sql("DROP TABLE alarms")
    assert alarms_during(store, "L1", at(0), at(10)) == []


def test_alarms_active_while_on_the_line(store: Store, raw_engine: Engine) -> None:
    rows = [
        (1, "L1", at(-30), at(-20), "cleared before"),
        (2, "L1", at(-5), at(3), "cleared during"),
        (3, "L1", at(4), None, "still active"),
        (4, "L2", at(4), None, "another line"),
        (5, None, at(6), at(7), "site-wide"),
        (6, "L1", at(20), None, "raised after"),
    ]
    with raw_engine.begin() as c:
        alarms = Table("alarms", MetaData(), autoload_with=c)
        for id_, line, raised, cleared, msg in rows:
            c.execute(
                alarms.insert(),
                {"id": id_, "key": f"k{id_}", "kind": "device_down", "line": line,
                 "station": "brake", "device": "rbt", "priority": "high", "state": "unacked",
                 "active": cleared is None, "message": msg, "raised_at": raised,
                 "cleared_at": cleared, "silenced": False},
            )  # fmt: skip
    found = alarms_during(store, "L1", at(0), at(10))
    assert [a["message"] for a in found] == ["cleared during", "still active", "site-wide"]
    assert found[0]["raised_at"] - at(-5) < timedelta(seconds=1)
    assert found[0]["raised_at"].tzinfo is not None
    # Still on the line: everything raised since, up to now.
    assert len(alarms_during(store, "L1", at(0), None)) == 4
