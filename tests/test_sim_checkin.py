"""`linectl sim` + `linectl run` on a line whose drivers check in by card (issue 14).

Two processes and a private broker, as on a station PC: the simulated
drivers learn their vehicle from the line's status on the broker and, back
at the start, press their card on the line I/O; the daemon checks them in.
With two drivers, three vehicles go through only if at least one check-in
arrives: without them the line stalls after each driver's first vehicle.
"""

from __future__ import annotations

import asyncio
import json
import signal
import tomllib
from pathlib import Path

from mqtt_broker import Listener, free_port, running_broker
from test_crash_restart import request, spawn

from linectl.config import parse_site_config
from linectl.upstream.topics import Topics
from sim.board import warnings

SITE = "zc14"
TIME_SCALE = 40.0
VEHICLES = 3


def site_toml(db: Path, broker_url: str, mode: str = "input") -> str:
    io_port, rbt_port = free_port(), free_port()
    return f"""
site_id = "{SITE}"

[database]
url = "sqlite:///{db}"

[mqtt]
url = "{broker_url}"

[http]
enabled = false

[[lines]]
id = "L1"
walk_back_s = 8
proxy_drivers = ["D1", "D2"]
checkin = {{ mode = "{mode}", inputs = {{ D1 = 2, D2 = 3 }} }}
io = {{ id = "io-L1", model = "lineio-modbus", transport = {{ kind = "tcp", port = {io_port} }} }}

[[lines.stations]]
id = "brake"
kind = "brake"
devices = [{{ id = "rbt-L1", model = "rbt-modbus", transport = {{ kind = "tcp", port = {rbt_port} }} }}]
"""


async def test_sim_drivers_press_their_cards_and_the_line_does_not_stall(tmp_path: Path) -> None:
    import tomllib

    config, db = tmp_path / "site.toml", tmp_path / "site.db"
    sim_log, run_log = tmp_path / "sim.log", tmp_path / "run.log"
    t = Topics("linectl", SITE)
    procs = []
    with running_broker(tmp_path / "broker") as broker:
        config.write_text(site_toml(db, broker.url), encoding="utf-8")
        try:
            sim = await spawn(sim_log, "sim", "--config", str(config), "--time-scale",
                              str(TIME_SCALE), "--seed", "3")  # fmt: skip
            procs.append(sim)
            async with asyncio.timeout(30):
                while "simulating site" not in await asyncio.to_thread(sim_log.read_text, "utf-8"):
                    assert sim.returncode is None, sim_log.read_text("utf-8")
                    await asyncio.sleep(0.05)
            async with Listener(broker.url, f"linectl/{SITE}/#", "registry-14") as reg:
                daemon = await spawn(
                    run_log, "run", "--config", str(config), "--time-scale", str(TIME_SCALE)
                )
                procs.append(daemon)
                await reg.wait_for(
                    lambda r: any(m.json().get("online") for m in r.on(t.status("L1"))), 30
                )
                for i in range(VEHICLES):
                    await reg.publish(t.registrations, json.dumps(request(i)).encode())
                await reg.wait_for(
                    lambda r: all(r.on(t.reply(f"r-crash-{i}")) for i in range(VEHICLES)), 30
                )
                replies = [reg.on(t.reply(f"r-crash-{i}"))[0].json() for i in range(VEHICLES)]
                assert all(r["accepted"] for r in replies), replies
                ids = [r["inspection_id"] for r in replies]
                await reg.wait_for(lambda r: all(r.on(t.result(i)) for i in ids), within_s=120)
                verdicts = [reg.on(t.result(i))[-1].json() for i in ids]
                assert all(v.get("verdict") != "aborted" for v in verdicts), verdicts
        except BaseException:
            for f in (sim_log, run_log):
                if f.exists():
                    print(f.read_text(encoding="utf-8", errors="replace")[-6000:])
            raise
        finally:
            for p in procs:
                if p.returncode is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(p.wait(), 15)
                    except TimeoutError:
                        p.kill()
                        await p.wait()
    text = sim_log.read_text(encoding="utf-8")
    assert "presses his card" in text, text[-3000:]
    assert "Traceback" not in text
    run = run_log.read_text(encoding="utf-8")
    assert "not checked in" not in run  # nobody was late: each card was pressed in time
    assert tomllib.loads(config.read_text("utf-8"))["lines"][0]["checkin"]["mode"] == "input"


def test_console_check_ins_and_a_site_without_a_broker_are_told() -> None:
    doc = tomllib.loads(site_toml(Path("/tmp/x.db"), "mqtt://127.0.0.1:1", "console"))
    said = warnings(parse_site_config(doc, "t"))
    assert len(said) == 1 and "console" in said[0] and "not simulated" in said[0]
    doc = tomllib.loads(site_toml(Path("/tmp/x.db"), "mqtt://127.0.0.1:1"))
    assert warnings(parse_site_config(doc, "t")) == []
    del doc["mqtt"]
    said = warnings(parse_site_config(doc, "t"))
    assert len(said) == 1 and "[mqtt]" in said[0]
