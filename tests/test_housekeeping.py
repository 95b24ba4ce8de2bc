"""A year of operation: the outbox pruned, backups while running, a database that
stops taking writes (full, read-only) without a result lost."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import store_fixtures
from site_fixtures import running_site
from sqlalchemy import event
from store_fixtures import at, brake_result, make_vehicle

from linectl.cli import main
from linectl.drivers.lineio_modbus import Prompt
from linectl.drivers.rbt_modbus import RbtState
from linectl.items import Verdict
from linectl.scheduler.line import HOLD_TEXT
from linectl.store.db import head_revision
from linectl.store.health import StorageHealth
from linectl.store.repo import NotFound, Store, StoreError
from linectl.vehicle import InspectionType
from sim.vehicles import Population

db_url = store_fixtures.db_url
store = store_fixtures.store


def completed_inspection(s: Store, serial: int, minutes: float) -> str:
    iid = s.create_inspection(
        site="zc01",
        vehicle=make_vehicle(serial),
        inspection_type=InspectionType.PERIODIC,
        items=["B1"],
        at=at(minutes),
    )
    s.record_attempt(
        inspection_id=iid,
        result=brake_result("B1", Verdict.PASS),
        station="brake",
        device="rbt-1",
        started_at=at(minutes),
        finished_at=at(minutes + 1),
    )
    s.complete_inspection(iid, at=at(minutes + 2))
    return iid


# --- the outbox ----------------------------------------------------------------------


def test_delivered_rows_are_pruned_after_their_age_undelivered_never(store: Store) -> None:
    old, recent, waiting = (completed_inspection(store, n, n * 10) for n in range(3))
    rows = {r.inspection_id: r.id for r in store.pending_outbox()}
    store.mark_delivered([rows[old]], at(100))
    store.mark_delivered([rows[recent]], at(40 * 24 * 60))  # 40 days later
    # 30 days before day 45: the first delivery is older, the second is not.
    assert store.prune_outbox(at(45 * 24 * 60) - timedelta(days=30)) == 1
    assert store.outbox(old) == []
    assert [r.inspection_id for r in store.pending_outbox()] == [waiting]
    assert store.outbox(recent)[0].delivered_at == at(40 * 24 * 60)
    # A year on, an undelivered result is still there, whatever its age.
    assert store.prune_outbox(at(400 * 24 * 60)) == 1
    assert [r.inspection_id for r in store.pending_outbox()] == [waiting]
    # Ids are never reused after a prune: the publishing order stays the id order.
    newer = completed_inspection(store, 9, 500 * 24 * 60)
    assert store.outbox(newer)[0].id > rows[waiting]


# --- backups ---------------------------------------------------------------------------


def test_sqlite_backup_while_a_writer_commits(tmp_path: Path, capsys: Any) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    s = Store(url)
    s.upgrade()
    stop = threading.Event()
    written = [0]

    def writer() -> None:
        n = 0
        while not stop.is_set():
            completed_inspection(s, 1000 + n, n)
            n += 1
            written[0] = n

    t = threading.Thread(target=writer)
    t.start()
    try:
        copies = []
        for k in range(3):
            while written[0] < 5 * (k + 1):  # the writer is well under way
                stop.wait(0.01)
            f = tmp_path / f"backup-{k}.db"
            # Counted before the copy starts: what was committed by then must
            # be in it; what the writer adds meanwhile may or may not be.
            committed = written[0]
            assert main(["db", "backup", "--db", url, str(f)]) == 0
            copies.append((f, committed))
    finally:
        stop.set()
        t.join()
        s.close()
    out = capsys.readouterr().out
    assert out.count("integrity ok") == 3
    for f, before in copies:
        with sqlite3.connect(f) as c:
            assert c.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
            assert c.execute("SELECT version_num FROM alembic_version").fetchone()[0] == (
                head_revision()
            )
            n = c.execute("SELECT count(*) FROM inspections").fetchone()[0]
            # One moment of the database: every completed inspection has its
            # attempt and its outbox row, as they were committed together.
            done = c.execute(
                "SELECT count(*) FROM inspections WHERE state = 'completed'"
            ).fetchone()[0]
            with_outbox = c.execute("SELECT count(DISTINCT inspection_id) FROM outbox").fetchone()[
                0
            ]
        assert n >= before and done == with_outbox
    # An existing file is never overwritten without --force.
    f = copies[0][0]
    assert main(["db", "backup", "--db", url, str(f)]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["db", "backup", "--db", url, "--force", str(f)]) == 0


def test_postgresql_backup_with_pg_dump(db_url: str, tmp_path: Path, capsys: Any) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("pg_dump: the PostgreSQL case of db_url")
    s = Store(db_url)
    s.upgrade()
    completed_inspection(s, 1, 0)
    s.close()
    f = tmp_path / "site.dump"
    code = main(["db", "backup", "--db", db_url, str(f)])
    _, err = capsys.readouterr()
    if code != 0 and "not installed" in err:
        pytest.skip(err.strip())
    assert code == 0, err
    listing = subprocess.run(
        ["pg_restore", "--list", str(f)], capture_output=True, text=True, check=True
    ).stdout
    # Only the site's own schema, with its data.
    assert "TABLE DATA" in listing and " inspections " in listing


# --- a database that stops taking writes -----------------------------------------------


class WriteSwitch:
    """Makes a SQLite store refuse writes as a read-only file ("attempt to write a
    readonly database") or a full disk ("database or disk is full") would, with
    SQLite's own errors: PRAGMA query_only, or max_page_count pinned to the
    file's size, on every connection opened after `set()`."""

    def __init__(self, s: Store) -> None:
        self.store = s
        self.mode: str | None = None
        event.listen(s._engine, "connect", self._on_connect)

    def _on_connect(self, dbapi: Any, _record: Any) -> None:
        if self.mode == "read_only":
            dbapi.execute("PRAGMA query_only = 1")
        elif self.mode == "full":
            dbapi.execute("PRAGMA max_page_count = 1")  # pinned to the current size

    def set(self, mode: str | None) -> None:
        """Call from the thread that uses the store (AsyncStore: its worker)."""
        self.mode = mode
        self.store._engine.dispose()  # the next transaction opens a new connection


@contextmanager
def switched(url: str) -> Iterator[tuple[Store, WriteSwitch]]:
    s = Store(url)
    s.upgrade()
    try:
        yield s, WriteSwitch(s)
    finally:
        s.close()


def test_refused_writes_are_told_apart(tmp_path: Path) -> None:
    with switched(f"sqlite:///{tmp_path / 'x.db'}") as (s, switch):
        switch.set("read_only")
        with pytest.raises(StoreError) as e:
            completed_inspection(s, 1, 0)
        assert (e.value.kind, e.value.transient) == ("read_only", True)
        switch.set("full")
        with pytest.raises(StoreError) as e:
            for n in range(200):  # until the file would have to grow
                completed_inspection(s, 10 + n, n)
        assert e.value.kind == "full" and "full" in str(e.value)


async def test_commit_keeps_the_data_and_tries_again_until_the_database_takes_it(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with switched(url) as (s, switch):
        changes: list[str] = []
        health = StorageHealth(url, on_change=lambda: changes.append(health.state))
        held: list[str] = []

        async def hold(state: str) -> None:
            held.append(state)

        switch.set("read_only")
        task = asyncio.create_task(
            health.commit(
                "a result", lambda: asyncio.to_thread(completed_inspection, s, 1, 0), hold=hold
            )
        )
        while health.state == "ok":  # noqa: ASYNC110 - the state has no event of its own
            await asyncio.sleep(0.01)
        assert health.snapshot() | {"message": None} == {
            "ok": False,
            "state": "read_only",
            "message": None,
            "free_mb": None,
            "waiting_writes": 1,
        }
        await asyncio.sleep(0.5)  # several tries, all refused
        assert not task.done() and held == ["read_only"]
        await asyncio.to_thread(switch.set, None)
        iid = await asyncio.wait_for(task, 10)
        assert s.inspection(iid).state == "completed"
        assert health.state == "ok" and changes[0] == "read_only" and changes[-1] == "ok"
        # Not the database's trouble but the call's: raised at once.
        with pytest.raises(NotFound):
            await health.commit(
                "bad", lambda: asyncio.to_thread(s.complete_inspection, "nope", at=at(1))
            )


def test_low_space_is_seen_in_the_folder(tmp_path: Path) -> None:
    health = StorageHealth(f"sqlite:///{tmp_path / 'x.db'}", min_free_mb=10**12)
    assert health.check() == "low_space" and health.ok
    assert health.free_mb is not None and "below" in (health.message or "")
    assert StorageHealth(f"sqlite:///{tmp_path / 'x.db'}", min_free_mb=0).check() == "ok"


async def test_a_read_only_database_holds_the_vehicle_and_loses_nothing(tmp_path: Path) -> None:
    """The database stops taking writes while a car is on the rollers: its attempts
    wait in memory, its display says why, the status says so; once the database
    is back, the car finishes and every item was recorded."""
    pop = Population(seed=8, fault_rate=0.0)
    cars = [pop.next() for _ in range(2)]
    items = ["B1", "B2", "BT"]
    cars = [c for c in cars if c.vehicle.axles == 2] or cars[:1]
    async with running_site(tmp_path, kinds=("brake",)) as rig:
        switch = WriteSwitch(rig.store.store)
        io = rig.sim.emulators["io-L1"]
        rbt = rig.sim.emulators["rbt-L1"]
        statuses: list[dict[str, Any]] = []
        with rig.site.events.subscribe({"line_status"}) as status_events:

            async def watch_status() -> None:
                while True:
                    statuses.append((await status_events.get()).data["status"]["storage"])

            watcher = asyncio.create_task(watch_status())
            with rig.site.events.subscribe({"completed", "aborted"}) as finished:
                ids = []
                for sv in cars:
                    reply = await rig.register(sv, items)
                    ids.append(reply["inspection_id"])
                # The first brake run is under way: from now on the disk refuses writes.
                seq = io.prompt(0).seq
                while (blk := await asyncio.wait_for(io.wait_prompt(0, seq), 60)).code != (
                    Prompt.APPLY_BRAKE
                ):
                    seq = blk.seq
                assert rbt.state == RbtState.RUNNING
                await rig.store.run(switch.set, "read_only")
                # The attempt of axle 1 cannot be saved: the car is held, told why.
                while (blk := await asyncio.wait_for(io.wait_prompt(0, seq), 60)).text != (
                    HOLD_TEXT
                ):
                    seq = blk.seq
                assert blk.code == Prompt.WAIT
                assert rig.site.storage.state == "read_only"
                await asyncio.sleep(1.0)  # held: nothing moves on while it lasts
                assert io.prompt(0).text == HOLD_TEXT
                await rig.store.run(switch.set, None)
                done = set()
                while len(done) < len(ids):
                    done.add((await asyncio.wait_for(finished.get(), 120)).inspection_id)
            watcher.cancel()
        recs = [await rig.store.inspection(i) for i in ids]
        chain = await rig.store.verify_draws()
    assert chain.ok
    for rec in recs:
        assert rec.state == "completed", rec
        assert set(rec.latest_attempts()) == set(items), "every item was recorded"
    assert any(s["state"] == "read_only" and not s["ok"] for s in statuses)
    assert statuses[-1]["state"] == "ok"
    assert rig.site.storage.state == "ok"


def test_the_daemon_refuses_to_start_on_a_read_only_database(tmp_path: Path) -> None:
    db = tmp_path / "site.db"
    Store(f"sqlite:///{db}").upgrade()
    example = Path(__file__).resolve().parent.parent / "config" / "site.example.toml"
    text = example.read_text("utf-8").replace(
        'url = "sqlite:///linectl.db"', f'url = "sqlite:///file:{db}?mode=ro&uri=true"'
    )
    text = text.replace('dir = "limits"', f'dir = "{example.parent / "limits"}"')
    cfg = tmp_path / "site.toml"
    cfg.write_text(text, "utf-8")
    p = subprocess.run(
        [sys.executable, "-m", "linectl", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("linectl run: database: ") and "read-only" in last, last
