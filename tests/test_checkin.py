"""A proxy driver's check-in: at the console (POST /api/drivers/{id}/checkin, who
pressed it journaled) and by his card on a spare input of the real line I/O."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from http_fixtures import serving
from site_fixtures import running_site

from linectl.config import ConfigError, SiteConfig, parse_site_config
from linectl.scheduler.pool import DriverState
from sim.vehicles import Population

BRAKE = ("brake",)


def checkin(mode: str, inputs: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
    def adjust(cfg: SiteConfig) -> SiteConfig:
        lines = [
            ln.model_copy(
                update={
                    "checkin": ln.checkin.model_copy(update={"mode": mode, "inputs": inputs or {}})
                }
            )
            for ln in cfg.lines
        ]
        return cfg.model_copy(update={"lines": lines})

    return adjust


async def test_console_check_in_by_an_operator_is_journaled(tmp_path: Path) -> None:
    async with (
        running_site(tmp_path, kinds=BRAKE, adjust=checkin("console")) as rig,
        serving(rig.ops) as api,
    ):
        pool = rig.site.line("L1").pool
        viewer, op, admin = (api.client(r) for r in ("viewer", "operator", "admin"))
        # An idle driver is not walking back: nothing to check in.
        r = await op.post("/api/drivers/L1D1/checkin")
        assert r.status_code == 409, r.text
        pool.release("L1D1")  # he left a vehicle and walks back
        assert (await viewer.post("/api/drivers/L1D1/checkin")).status_code == 403
        assert pool.drivers["L1D1"].state is DriverState.WALKING_BACK
        r = await op.post("/api/drivers/L1D1/checkin")
        assert r.status_code == 200, r.text
        assert r.json() == {"id": "L1D1", "line": "L1", "state": "idle"}
        assert (await op.post("/api/drivers/L9D9/checkin")).status_code == 404
        journal = (await admin.get("/api/audit", params={"limit": 50})).json()
        done = [e for e in journal if e["action"] == "checkin" and e["outcome"] == "ok"]
        assert [(e["user"], e["target"]) for e in done] == [("operator", "driver:L1D1")]
        refused = [e for e in journal if e["action"] == "checkin" and e["outcome"] == "refused"]
        assert refused and refused[0]["user"] == "operator"


async def test_console_check_in_is_refused_on_a_timer_line(tmp_path: Path) -> None:
    async with running_site(tmp_path, kinds=BRAKE) as rig, serving(rig.ops) as api:
        rig.site.line("L1").pool.release("L1D2")
        r = await api.client("operator").post("/api/drivers/L1D2/checkin")
        assert r.status_code == 409 and "timer" in r.json()["error"]["message"]


async def test_a_card_on_the_line_io_checks_its_driver_in(tmp_path: Path) -> None:
    inputs = {"L1D1": 2, "L1D2": 3, "L1D3": 4, "L1D4": 5}
    async with running_site(tmp_path, kinds=BRAKE, adjust=checkin("input", inputs)) as rig:
        pool = rig.site.line("L1").pool
        io = rig.sim.emulators["io-L1"]
        pool.release("L1D3")
        pool.release("L1D4")
        await io.press(4)  # L1D3's card, through Modbus to the daemon's poller
        for _ in range(200):
            if pool.drivers["L1D3"].state is DriverState.IDLE:
                break
            await asyncio.sleep(0.01)
        assert pool.drivers["L1D3"].state is DriverState.IDLE
        assert pool.drivers["L1D4"].state is DriverState.WALKING_BACK
        with pytest.raises(ValueError):
            await io.press(8)  # IN_POSITION of station 1 is not a spare input


def test_input_check_in_needs_a_spare_input_for_every_driver() -> None:
    base = {
        "site_id": "s",
        "lines": [
            {
                "id": "L1",
                "io": {
                    "id": "io",
                    "model": "lineio-modbus",
                    "transport": {"kind": "tcp", "host": "127.0.0.1", "port": 502},
                },
                "stations": [
                    {
                        "id": "b",
                        "kind": "brake",
                        "devices": [
                            {
                                "id": "r",
                                "model": "rbt-modbus",
                                "transport": {"kind": "tcp", "host": "127.0.0.1", "port": 503},
                            }
                        ],
                    }
                ],
                "proxy_drivers": ["D1", "D2"],
            }
        ],
    }
    for inputs, problem in (
        ({"D1": 2}, "every proxy driver"),
        ({"D1": 2, "D2": 2}, "checkin input"),
        ({"D1": 2, "D2": 1}, "not a spare input"),
        ({"D1": 2, "D2": 9}, "not a spare input"),
    ):
        doc = {
            **base,
            "lines": [{**base["lines"][0], "checkin": {"mode": "input", "inputs": inputs}}],
        }
        with pytest.raises(ConfigError, match=problem):
            parse_site_config(doc, "t")
    ok = {
        **base,
        "lines": [{**base["lines"][0], "checkin": {"mode": "input", "inputs": {"D1": 2, "D2": 7}}}],
    }
    assert parse_site_config(ok, "t").lines[0].checkin.mode == "input"


async def test_the_board_offers_the_check_in_and_shows_the_draws_choice(tmp_path: Path) -> None:
    async with (
        running_site(tmp_path, kinds=BRAKE, adjust=checkin("console")) as rig,
        serving(rig.ops) as api,
    ):
        pool = rig.site.line("L1").pool
        reply = await rig.register(Population(seed=2).next(), ["B1"])
        assert reply["accepted"], reply  # a draw the panel's figures count
        for _ in range(500):
            if pool.draw_log:
                break
            await asyncio.sleep(0.01)
        assert pool.draw_log, "no draw"
        idle = pool.idle()[0]
        pool.release(idle)
        op, csrf = await api.signed_in("operator")
        board = (await op.get("/lines/L1")).text
        assert f'action="/drivers/{idle}/checkin"' in board
        assert 'class="draw-choice' in board
        r = await op.post(
            f"/drivers/{idle}/checkin", data={"csrf_token": csrf, "next": "/lines/L1"}
        )
        assert r.status_code == 303, r.text
        assert pool.drivers[idle].state is DriverState.IDLE
        assert f'action="/drivers/{idle}/checkin"' not in (await op.get("/lines/L1")).text
