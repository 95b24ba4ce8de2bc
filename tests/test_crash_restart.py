"""Crash and restart: `linectl run` killed with SIGKILL at random points of the procedures.

Three processes, as on a station PC: `linectl sim` (the instruments, the
vehicles and their drivers), `linectl run` (the daemon, SQLite) and the test
as the registry (a private mosquitto, a persistent-session listener). The
test registers a batch of vehicles, then, several times, waits for a vehicle
to enter a station and kills the daemon a random moment later (the seed makes
the moments and the simulated world repeatable), looks at what the database
holds, and starts the daemon again. After the last restart every vehicle is
driven to the end, and then:

- every attempt the database held after a kill is still there, unchanged;
- every inspection that was on the line at a kill is aborted (the vehicle's
  position was unknown), with a result that says so, delivered to the registry;
- the inspections still queued at a kill were called after the restart in
  the order they were registered;
- each inspection's results reached the registry, at least once per revision;
- the stations and proxy drivers are free, and the draw chain verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mqtt_broker import Broker, Listener, free_port, running_broker
from site_fixtures import TESTER

from linectl.clock import Clock
from linectl.daemon import Site, open_store
from linectl.demo import demo_config, registration_for
from linectl.drivers.lineio_modbus import Prompt
from linectl.ops.operations import Operations
from linectl.scheduler.line import LEFTOVER_TEXT
from linectl.store.repo import Store
from linectl.upstream.topics import Topics
from linectl.vehicle import vin_check_digit
from sim.site import SimSite
from sim.vehicles import Population

SITE = "zc03"
TIME_SCALE = 40.0
SEED = 13
VEHICLES = 6
KILLS = 3
ITEMS = ["B1", "B2", "B0", "BT"]


def site_toml(db: Path, broker_url: str) -> str:
    io_port, rbt_port = free_port(), free_port()
    return f"""
site_id = "{SITE}"

[database]
url = "sqlite:///{db}"

[mqtt]
url = "{broker_url}"

[http]
listen = "127.0.0.1:0"

[[lines]]
id = "L1"
walk_back_s = 5
proxy_drivers = ["D1", "D2"]
io = {{ id = "io-L1", model = "lineio-modbus", transport = {{ kind = "tcp", port = {io_port} }} }}

[[lines.stations]]
id = "brake"
kind = "brake"
devices = [{{ id = "rbt-L1", model = "rbt-modbus", transport = {{ kind = "tcp", port = {rbt_port} }} }}]
"""


def request(i: int) -> dict[str, Any]:
    # A healthy two-axle petrol car: what `linectl sim` drives for a plate it does
    # not know (it runs in its own process and never hears the registration).
    body = f"LFV2A21K05B1000{i:02d}"
    return {
        "request_id": f"r-crash-{i}",
        "inspection_type": "periodic",
        "vehicle": {
            "vin": body[:8] + vin_check_digit(body) + body[9:],
            "plate": f"津B6{i:04d}",
            "vehicle_class": "M1",
            "fuel": "petrol",
            "axles": 2,
            "parking_axles": [2],
            "curb_mass_kg": 1300,
            "gross_mass_kg": 1750,
            "headlamp_system": 2,
            "max_design_speed_kmh": 180,
        },
        "items": ITEMS,
    }


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path / "broker") as b:
        yield b


async def spawn(log: Path, *argv: str) -> asyncio.subprocess.Process:
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "linectl", "-v", *argv,
            stdout=out, stderr=out, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    finally:
        out.close()


@contextlib.asynccontextmanager
async def simulator(config: Path, log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    sim = await spawn(
        log, "sim", "--config", str(config), "--time-scale", str(TIME_SCALE), "--seed", str(SEED)
    )
    try:
        async with asyncio.timeout(30):  # its instruments listen once it says so
            while "simulating site" not in await asyncio.to_thread(log.read_text, "utf-8"):
                assert sim.returncode is None, "linectl sim ended at start"
                await asyncio.sleep(0.05)
        yield sim
    finally:
        if sim.returncode is None:
            sim.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(sim.wait(), 10)
            except TimeoutError:
                sim.kill()
                await sim.wait()


def snapshot(db: Path) -> dict[str, Any]:
    """What the database holds right after a kill (no daemon is running)."""
    with sqlite3.connect(db) as c:
        attempts = {
            row[0]: row[1:]
            for row in c.execute(
                'SELECT id, inspection_id, item_code, attempt_no, verdict, "values" FROM attempts'
            )
        }
        states = dict(c.execute("SELECT id, state FROM inspections"))
    return {"attempts": attempts, "states": states}


def online_after(reg: Listener, t: Topics, start: int) -> int | None:
    docs = [m.json() for m in reg.on(t.status("L1"))]
    return next((i for i in range(start, len(docs)) if docs[i].get("online")), None)


def at_rest(reg: Listener, t: Topics) -> dict[str, Any] | None:
    docs = [m.json() for m in reg.on(t.status("L1"))]
    last = docs[-1] if docs else {}
    stations, drivers = last.get("stations") or [], last.get("proxy_drivers") or []
    free = all(s["state"] == "free" for s in stations) and all(
        d["state"] == "idle" for d in drivers
    )
    return last if stations and free and last.get("queue") == 0 else None


def events(reg: Listener, t: Topics, kind: str) -> list[dict[str, Any]]:
    return [d for d in (m.json() for m in reg.on(t.events("L1"))) if d.get("type") == kind]


async def test_sigkill_at_random_points_then_restart(broker: Broker, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    config, db, log = tmp_path / "site.toml", tmp_path / "site.db", tmp_path / "run.log"
    config.write_text(site_toml(db, broker.url), encoding="utf-8")
    t = Topics("linectl", SITE)
    daemon: asyncio.subprocess.Process | None = None
    snapshots: list[dict[str, Any]] = []
    try:
        async with (
            simulator(config, tmp_path / "sim.log"),
            Listener(broker.url, f"linectl/{SITE}/#", "registry-crash") as reg,
        ):

            async def start() -> asyncio.subprocess.Process:
                n = len(reg.on(t.status("L1")))
                proc = await spawn(
                    log, "run", "--config", str(config), "--time-scale", str(TIME_SCALE)
                )
                await reg.wait_for(lambda r: online_after(r, t, n) is not None, within_s=30)
                return proc

            daemon = await start()
            for i in range(VEHICLES):
                await reg.publish(t.registrations, json.dumps(request(i)).encode())
            await reg.wait_for(
                lambda r: all(r.on(t.reply(f"r-crash-{i}")) for i in range(VEHICLES))
            )
            replies = [reg.on(t.reply(f"r-crash-{i}"))[0].json() for i in range(VEHICLES)]
            assert all(r["accepted"] for r in replies), replies
            ids = [r["inspection_id"] for r in replies]

            for _ in range(KILLS):
                # A vehicle enters the station; the daemon dies somewhere in its test.
                n = len(events(reg, t, "station_started"))
                await reg.wait_for(lambda r, n=n: len(events(r, t, "station_started")) > n, 60)
                await asyncio.sleep(rng.uniform(0.05, 1.2))
                daemon.send_signal(signal.SIGKILL)
                assert await asyncio.wait_for(daemon.wait(), 10) == -signal.SIGKILL
                snapshots.append(snapshot(db))
                daemon = await start()

            # After the last restart, every vehicle goes through to the end.
            def finished(r: Listener) -> bool:
                return all(r.on(t.result(iid)) for iid in ids)

            await reg.wait_for(finished, within_s=120)
            store = Store(f"sqlite:///{db}")
            try:
                await reg.wait_for(
                    lambda r: all(
                        {m.json()["revision"] for m in r.on(t.result(iid))}
                        >= {store.inspection(iid).revision}
                        for iid in ids
                    ),
                    within_s=30,
                )
                final = {iid: store.inspection(iid) for iid in ids}
                draws = store.draws()
                chain = store.verify_draws()
                backlog = store.outbox_backlog()
            finally:
                store.close()
            # The line at rest: stations free, drivers walked back and idle.
            status = await reg.wait_for(lambda r: at_rest(r, t), within_s=30)
            daemon.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(daemon.wait(), 20) == 0
            daemon = None
    except BaseException:
        print(log.read_text(encoding="utf-8", errors="replace")[-8000:])
        raise
    finally:
        if daemon is not None and daemon.returncode is None:
            daemon.kill()
            await daemon.wait()

    # Every attempt committed before a kill is still there, unchanged.
    end = snapshot(db)
    for snap in snapshots:
        for aid, row in snap["attempts"].items():
            assert end["attempts"].get(aid) == row, (aid, row)
    # What was on the line at a kill was aborted, and the registry got that result.
    interrupted = {
        iid for snap in snapshots for iid, state in snap["states"].items() if state == "in_progress"
    }
    assert interrupted, "the kills met vehicles on the line"
    for iid in interrupted:
        assert final[iid].state == "aborted" and "restarted" in (final[iid].abort_reason or "")
        docs = [m.json() for m in reg.on(t.result(iid))]
        assert any("restarted" in d.get("aborted", "") for d in docs), docs
    for iid, rec in final.items():
        assert rec.state in ("completed", "aborted"), (iid, rec.state)
        revisions = {m.json()["revision"] for m in reg.on(t.result(iid))}
        assert revisions == set(range(1, rec.revision + 1)), (iid, revisions)
        if iid not in interrupted:
            assert set(rec.latest_attempts()) == set(ITEMS), "measured to the end"
    # Queued at a kill: called after the restart in the order they were registered,
    # but for the draw's window (the first 3): none overtaken by more than 2, across
    # the kills too (each one's count is rebuilt from the draw record).
    order = {iid: k for k, iid in enumerate(ids)}
    drawn = [d.inspection_id for d in draws]
    for k, iid in enumerate(drawn):
        overtaken = sum(1 for other in drawn[:k] if order[other] > order[iid])
        assert overtaken <= 2, (iid, drawn)
    assert all(d.vehicles and d.inspection_id in d.vehicles for d in draws)
    assert chain.ok and chain.checked == len(draws)
    assert backlog == 0
    assert status["storage"]["ok"]
    # The vehicles a kill left on the station were sent off before the next was called.
    assert "occupied at start: vehicle sent off" in log.read_text("utf-8")


async def test_a_vehicle_left_on_a_station_is_sent_off_before_the_next_is_called(
    tmp_path: Path,
) -> None:
    """The in-process half of the above, watching the display: a station found
    occupied at start shows DRIVE_OUT, and no vehicle is called into it until its
    photo switches say it is free (else the next test would run on the car that
    was left there)."""
    clock = Clock(100)
    url = f"sqlite:///{tmp_path / 'site.db'}"
    cfg = demo_config("lo", 1, url, tmp_path / "tty", ("brake",))
    sim = SimSite(cfg, clock, seed=3)
    await sim.start()
    io = sim.emulators["io-L1"]
    io.set_inputs(0, in_position=True, exit_clear=False)  # a car the last run left there
    store = await open_store(url)
    site = Site(sim.live_config(), clock, store)
    tasks = [asyncio.create_task(sim.run()), asyncio.create_task(site.run())]
    try:
        await asyncio.wait_for(site.ready.wait(), 10)
        blk = await asyncio.wait_for(io.wait_prompt(0, -1), 10)
        while blk.code != Prompt.DRIVE_OUT:
            blk = await asyncio.wait_for(io.wait_prompt(0, blk.seq), 10)
        assert blk.text == LEFTOVER_TEXT
        pop = Population(seed=4, fault_rate=0.0)
        car = next(
            c for c in iter(pop.next, None) if c.vehicle.axles == 2 and c.vehicle.parking_axles
        )
        sim.world.add(car)
        with site.events.subscribe({"completed"}) as done:
            reply = await Operations(site).register(TESTER, registration_for(car, 1, ITEMS))
            assert reply["accepted"], reply
            await asyncio.sleep(0.5)  # 50 s of clock time: nothing is called in meanwhile
            assert io.prompt(0).seq == blk.seq and not io.entry_light(0)
            assert site.lines[0].slots[0].state == "leaving"
            io.set_inputs(0, exit_clear=False, in_position=False)
            io.set_inputs(0, exit_clear=True)  # the car has left
            ev = await asyncio.wait_for(done.get(), 60)
        assert ev.inspection_id == reply["inspection_id"]
        rec = await store.inspection(reply["inspection_id"])
        assert set(rec.latest_attempts()) == set(ITEMS)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.aclose()
        await sim.aclose()
