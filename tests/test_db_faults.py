"""The database connection drops or the file stays locked while vehicles are measured.

A whole site (the simulator in process, the daemon's Site) runs brake
inspections while the database misbehaves underneath it:
- PostgreSQL: another session kills the site's backends with
  pg_terminate_backend over and over (found by the application_name the
  site's URL sets), as a server restart or a failover would;
- SQLite: another connection takes the write lock again and again and holds
  it past the site's busy timeout, as a backup tool or a careless script would.
Registrations are retried when refused by a StoreError, as the broker's
redelivery does for the MQTT intake. At the end every vehicle is completed,
every item has its attempt, every result has its outbox row, and the draw
chain verifies: errors were retried or reported, never dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import store_fixtures
from site_fixtures import TESTER, Rig, running_site
from sqlalchemy.engine import make_url

from linectl.demo import registration_for
from linectl.registration import accepted_reply, parse_registration
from linectl.store import db as store_db
from linectl.store.repo import StoreError
from sim.vehicles import Population, SimVehicle

db_url = store_fixtures.db_url
ITEMS = ["B1", "B2", "B0", "BT"]
CARS = 4


def cars(seed: int) -> list[SimVehicle]:
    pop = Population(seed=seed, fault_rate=0.0)
    out: list[SimVehicle] = []
    while len(out) < CARS:
        sv = pop.next()
        if sv.vehicle.axles == 2 and sv.vehicle.parking_axles:
            out.append(sv)
    return out


async def inspect_through_faults(rig: Rig, fleet: list[SimVehicle]) -> list[str]:
    """Register (again while refused, as the broker redelivers), wait for every result."""
    ids = []
    with rig.site.events.subscribe({"completed", "aborted"}) as finished:
        for sv in fleet:
            rig.sim.world.add(sv)
            rig.n += 1
            for _ in range(200):
                try:
                    reply = await rig.ops.register(TESTER, registration_for(sv, rig.n, ITEMS))
                    break
                except StoreError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError("the database never took the registration")
            assert reply["accepted"], reply
            ids.append(reply["inspection_id"])
        pending = set(ids)
        try:
            async with asyncio.timeout(150):
                while pending:
                    pending.discard((await finished.get()).inspection_id)
        except TimeoutError:
            line = rig.site.lines[0]
            io = rig.sim.emulators["io-L1"]
            raise AssertionError(
                f"not finished: {sorted(pending)}; line {line.status()}; "
                f"display {io.prompt(0)}; inputs {io.inputs(0)}; storage {rig.site.storage.snapshot()}"
            ) from None
    return ids


async def nothing_dropped(rig: Rig, ids: list[str]) -> None:
    for _ in range(100):  # the reads may meet a killed backend too
        try:
            recs = [await rig.store.inspection(i) for i in ids]
            chain = await rig.store.verify_draws()
            outbox = [await rig.store.outbox(i) for i in ids]
            break
        except StoreError:
            await asyncio.sleep(0.05)
    for rec, rows in zip(recs, outbox, strict=True):
        assert rec.state == "completed", rec
        assert set(rec.latest_attempts()) == set(ITEMS), rec.latest_attempts()
        assert [r.revision for r in rows] == [1], rows
    assert chain.ok and chain.checked == len(ids)


@contextlib.contextmanager
def killing_backends(app: str, every_s: float) -> Iterator[list[int]]:
    """Terminate every backend named `app` every `every_s`; yields the kill count."""
    kills = [0]
    stop = threading.Event()
    conninfo = make_url(store_fixtures.PG_URL).set(drivername="postgresql").render_as_string(False)

    def killer() -> None:
        with psycopg.connect(conninfo, autocommit=True) as c:
            while not stop.wait(every_s):
                rows = c.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND pid <> pg_backend_pid()",
                    (app,),
                ).fetchall()
                kills[0] += sum(1 for (ok,) in rows if ok)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    try:
        yield kills
    finally:
        stop.set()
        t.join()


async def test_postgresql_backends_killed_while_inspecting(db_url: str, tmp_path: Path) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("pg_terminate_backend: the PostgreSQL case of db_url")
    app = f"linectl-i13-{uuid.uuid4().hex[:8]}"
    url = make_url(db_url).update_query_dict({"application_name": app})
    async with running_site(tmp_path, kinds=("brake",), url=url.render_as_string(False)) as rig:
        states: list[str] = []
        rig.site.storage.on_change = lambda: states.append(rig.site.storage.state)
        with killing_backends(app, every_s=0.15) as kills:
            ids = await inspect_through_faults(rig, cars(seed=31))
        await nothing_dropped(rig, ids)
    assert kills[0] > 0, "the site's backends were killed"
    print(f"backends killed: {kills[0]}; storage states seen: {states}")


class Locker:
    """Another process's connection that takes SQLite's write lock for `hold_s` every
    `every_s`: longer than the site's busy timeout, so the site's writes fail with
    'database is locked' while it is held."""

    def __init__(self, file: Path, hold_s: float, every_s: float) -> None:
        self.file, self.hold_s, self.every_s = file, hold_s, every_s
        self.locks = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        c = sqlite3.connect(self.file, isolation_level=None, timeout=30)
        try:
            while not self._stop.wait(self.every_s):
                c.execute("BEGIN EXCLUSIVE")
                self.locks += 1
                self._stop.wait(self.hold_s)
                c.execute("ROLLBACK")
        finally:
            c.close()

    def __enter__(self) -> Locker:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


async def test_sqlite_locked_past_the_busy_timeout_while_inspecting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_db, "SQLITE_BUSY_TIMEOUT_MS", 50)
    async with running_site(tmp_path, kinds=("brake",)) as rig:
        states: list[str] = []
        rig.site.storage.on_change = lambda: states.append(rig.site.storage.state)
        with Locker(tmp_path / "site.db", hold_s=0.4, every_s=0.5) as locker:
            ids = await inspect_through_faults(rig, cars(seed=32))
        await nothing_dropped(rig, ids)
    assert locker.locks > 0
    assert "busy" in states, "writes met the lock, waited, and went through"
    assert states[-1] == "ok"


async def test_a_registration_kept_but_never_queued_is_queued_when_asked_again(
    tmp_path: Path,
) -> None:
    """What a try cut short between keeping the inspection and queueing it leaves
    (a COMMIT that went through unseen, a session cancelled): the registry's
    redelivery gets the stored reply, and the vehicle is queued then, not left
    out until the next start."""
    (car,) = cars(seed=33)[:1]
    async with running_site(tmp_path, kinds=("brake",)) as rig:
        rig.sim.world.add(car)
        request = registration_for(car, 1, ITEMS)
        reg = parse_registration(request)
        iid = await rig.store.create_inspection(
            site=rig.site.id,
            vehicle=reg.vehicle,
            inspection_type=reg.inspection_type,
            items=reg.items,
            at=rig.clock.wall(),
            request_id=reg.request_id,
            reply_for=lambda i: accepted_reply(reg.request_id, i, "L1"),
            line="L1",
        )
        assert rig.site.lines[0].queue_length() == 0
        with rig.site.events.subscribe({"completed"}) as done:
            again = await rig.ops.register(TESTER, request)
            assert again == accepted_reply(reg.request_id, iid, "L1")
            ev = await asyncio.wait_for(done.get(), 60)
        assert ev.inspection_id == iid
        # Asked a third time: the same reply, and nothing queued twice.
        assert await rig.ops.register(TESTER, request) == again
        assert rig.site.lines[0].queue_length() == 0
