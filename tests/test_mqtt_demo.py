"""`linectl demo --mqtt` with `linectl registry-sim`: a whole site over a broker."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from mqtt_broker import Broker, Listener, running_broker

from linectl.cli import build_parser
from linectl.config import MqttConfig
from linectl.demo import run_demo
from linectl.registry_sim import RegistrySim
from linectl.upstream.connection import connect_params
from linectl.upstream.topics import Topics
from sim.vehicles import Population

SITE = "zc07"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    with running_broker(tmp_path / "broker") as b:
        yield b


async def test_demo_takes_registrations_from_the_registry_sim(
    broker: Broker, tmp_path: Path
) -> None:
    args = build_parser().parse_args(
        ["demo", "--mqtt", broker.url, "--site", SITE, "--vehicles", "4", "--lines", "2",
         "--time-scale", "100", "--db", f"sqlite:///{tmp_path / 'demo.db'}",
         "--http", "127.0.0.1:0"]
    )  # fmt: skip
    topics = Topics("linectl", SITE)
    out = io.StringIO()
    demo = asyncio.create_task(run_demo(args, out))
    try:
        async with Listener(broker.url, topics.all_status, "test-watch") as watch:
            online = asyncio.ensure_future(
                watch.wait_for(
                    lambda w: (
                        {m.topic for m in w.messages if m.json().get("online")}
                        >= {topics.status("L1"), topics.status("L2")}
                    )
                )
            )
            await asyncio.wait([online, demo], return_when=asyncio.FIRST_COMPLETED)
            if demo.done():
                online.cancel()
                raise AssertionError(f"the demo ended early: {demo.exception()!r}")
            await online
        registry = RegistrySim(
            lambda: connect_params(MqttConfig(url=broker.url), "registry-sim-demo"),
            topics,
            vehicles=5,
            malformed=1,
            seed=1,  # the demo's population: the simulated world knows these plates
        )
        report = await registry.run(timeout_s=60)
        doc = await asyncio.wait_for(demo, 30)
    finally:
        demo.cancel()
        await asyncio.gather(demo, return_exceptions=True)

    assert report.ok, report.error
    assert len(report.accepted()) == 4
    assert "taking registrations on linectl/zc07/registrations" in out.getvalue()
    rows = {r["inspection_id"]: r for r in doc["inspections"]}
    assert set(rows) == set(report.accepted().values())
    # The registry's vehicles are the population's: the demo drove them with their faults.
    population = Population(seed=1)
    built = {sv.plate: sv.fault_labels() for sv in (population.next() for _ in range(5))}
    for iid, row in rows.items():
        assert row["expected_faults"] == built[row["plate"]]
        [result] = report.results_of(iid)
        assert result["verdict"] == row["verdict"]
