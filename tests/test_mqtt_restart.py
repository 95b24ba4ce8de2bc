"""A real `linectl run` killed with SIGKILL while holding undelivered results.

The daemon is a subprocess (the site config on disk, SQLite, its own broker
connections); the simulated instruments run in the test's event loop on the
config's ports, so the test can tell the simulated world about the vehicles
it registers. The registry side is a persistent-session `Listener`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mqtt_broker import Broker, Listener, free_port, running_broker

from linectl.clock import Clock
from linectl.config import load_site_config
from linectl.drivers.lineio_modbus import Prompt
from linectl.store.repo import Store
from linectl.upstream.topics import Topics
from linectl.vehicle import parse_vehicle, vin_check_digit
from sim.site import SimSite

SITE = "zc02"
TIME_SCALE = 200.0
N = 3


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
proxy_drivers = ["D1", "D2", "D3", "D4"]
io = {{ id = "io-L1", model = "lineio-modbus", transport = {{ kind = "tcp", port = {io_port} }} }}

[[lines.stations]]
id = "brake"
kind = "brake"
devices = [{{ id = "rbt-L1", model = "rbt-modbus", transport = {{ kind = "tcp", port = {rbt_port} }} }}]
"""


def request(i: int) -> dict[str, Any]:
    body = f"LFV2A21K{0}5B00000{i}"
    return {
        "request_id": f"r-kill-{i}",
        "inspection_type": "periodic",
        "vehicle": {
            "vin": body[:8] + vin_check_digit(body) + body[9:],
            "plate": f"京A5432{i}",
            "vehicle_class": "M1",
            "fuel": "petrol",
            "axles": 2,
            "parking_axles": [2],
            "curb_mass_kg": 1250,
            "gross_mass_kg": 1700,
            "headlamp_system": 2,
            "max_design_speed_kmh": 170,
        },
        "items": ["B1", "B2", "B0", "BT"],
    }


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path / "broker") as b:
        yield b


@contextlib.asynccontextmanager
async def simulated(config: Path) -> AsyncIterator[SimSite]:
    sim = SimSite(load_site_config(config), Clock(TIME_SCALE), seed=2)
    await sim.start()
    task = asyncio.create_task(sim.run())
    try:
        yield sim
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await sim.aclose()


async def start_daemon(config: Path, log: Path) -> asyncio.subprocess.Process:
    out = log.open("ab")
    try:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "linectl", "-v", "run", "--config", str(config),
            "--time-scale", str(TIME_SCALE),
            stdout=out, stderr=out, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
    finally:
        out.close()


async def sigkill(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(proc.wait(), 10) == -signal.SIGKILL


async def results_shown(sim: SimSite, plates: set[str]) -> None:
    """Until the last station's display has shown each plate's result: the daemon
    shows it only after the result and its outbox row are committed."""
    io = sim.world.lines[0].io
    last = len(sim.world.lines[0].stations) - 1
    seq = io.prompt(last).seq
    shown: set[str] = set()
    while not plates <= shown:
        blk = await io.wait_prompt(last, seq)
        seq = blk.seq
        if blk.code in (Prompt.RESULT_PASS, Prompt.RESULT_FAIL):
            shown.add(blk.plate)


def first_status(
    listener: Listener, t: Topics, start: int, pred: Callable[[dict[str, Any]], bool]
) -> int | None:
    """The index of the first L1 status from `start` on that satisfies `pred`."""
    docs = json_on(listener, t.status("L1"))
    return next((i for i in range(start, len(docs)) if pred(docs[i])), None)


def json_on(listener: Listener, topic: str) -> list[Any]:
    return [m.json() for m in listener.on(topic)]


async def test_sigkill_with_undelivered_results_then_restart(
    broker: Broker, tmp_path: Path
) -> None:
    config = tmp_path / "site.toml"
    db = tmp_path / "site.db"
    config.write_text(site_toml(db, broker.url), encoding="utf-8")
    log = tmp_path / "daemon.log"
    t = Topics("linectl", SITE)
    store = Store(f"sqlite:///{db}")
    daemon: asyncio.subprocess.Process | None = None
    try:
        async with (
            simulated(config) as sim,
            Listener(broker.url, f"linectl/{SITE}/#", "registry-kill") as reg,
        ):
            daemon = await start_daemon(config, log)
            await reg.wait_for(
                lambda r: any(m.json().get("online") for m in r.on(t.status("L1"))),
                within_s=30,
            )
            plates = {request(i)["vehicle"]["plate"] for i in range(N)}
            shown = asyncio.create_task(results_shown(sim, plates))
            for i in range(N):
                sim.world.learn(parse_vehicle(request(i)["vehicle"]))
                await reg.publish(t.registrations, json.dumps(request(i)).encode())
            await reg.wait_for(lambda r: all(r.on(t.reply(f"r-kill-{i}")) for i in range(N)))
            ids = [json_on(reg, t.reply(f"r-kill-{i}"))[0]["inspection_id"] for i in range(N)]

            # The broker goes away; the inspections complete; their results wait.
            await asyncio.to_thread(broker.stop)
            await asyncio.wait_for(shown, 60)
            assert await asyncio.to_thread(store.outbox_backlog) == N
            await sigkill(daemon)
            assert not any(reg.on(t.result(iid)) for iid in ids)

            # Broker back, daemon restarted: the results arrive, once per revision.
            await asyncio.to_thread(broker.start)
            daemon = await start_daemon(config, log)
            await reg.wait_for(
                lambda r: all(r.on(t.result(iid)) for iid in ids) or None, within_s=30
            )
            for iid in ids:
                payloads = json_on(reg, t.result(iid))
                assert {(p["inspection_id"], p["revision"]) for p in payloads} == {(iid, 1)}

            # The registry asks again (it never saw its replies acknowledged, say):
            # the same replies, no second inspection.
            for i in range(N):
                await reg.publish(t.registrations, json.dumps(request(i)).encode())
            await reg.wait_for(
                lambda r: all(len(r.on(t.reply(f"r-kill-{i}"))) >= 2 for i in range(N)) or None
            )
            for i in range(N):
                first, again = json_on(reg, t.reply(f"r-kill-{i}"))[:2]
                assert again == first
            assert len(await asyncio.to_thread(store.list_inspections)) == N

            # Stopped as an operator would: every acknowledged result marked, the
            # line announced offline by the daemon itself.
            n_status = len(reg.on(t.status("L1")))
            daemon.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(daemon.wait(), 20) == 0
            assert await asyncio.to_thread(store.outbox_backlog) == 0
            offline_at = await reg.wait_for(
                lambda r: first_status(r, t, n_status, lambda doc: not doc["online"])
            )

            # Killed: the broker publishes the line's will, retained.
            daemon = await start_daemon(config, log)
            online_at = await reg.wait_for(
                lambda r: first_status(r, t, offline_at + 1, lambda doc: doc["online"])
            )
            n_status = online_at + 1
            await sigkill(daemon)
            daemon = None
            [will] = await reg.wait_for(
                lambda r: [
                    m for m in r.on(t.status("L1"))[n_status:] if m.json() == {"online": False}
                ]
            )
            assert will.payload == b'{"online": false}'
    except BaseException:
        print(log.read_text(encoding="utf-8", errors="replace")[-6000:])
        raise
    finally:
        if daemon is not None and daemon.returncode is None:
            daemon.kill()
            await daemon.wait()
        store.close()
