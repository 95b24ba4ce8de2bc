"""Alarms of a running site: the simulator's instruments made deaf and heard again,
through the JSON API and the retained MQTT topic, on a real private broker.

One simulated line at the end-to-end time scale, its console's API and its
Upstream for the whole module. An analyser that stops answering raises its
alarm within the probe interval, its timeout and the configured delay; an
operator acknowledges it with a comment; it closes on return with the ack
kept. The same alarm unacknowledged waits as rtn_unacked. Pausing the line
suppresses its alarms; shelving expires by itself; a flood is told.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import pytest_asyncio
from http_fixtures import Api, serving
from mqtt_broker import Listener, running_broker
from site_fixtures import Rig, running_site

from linectl.alarms.state import AlarmState
from linectl.config import MqttConfig
from linectl.upstream import Upstream
from linectl.upstream.connection import Backoff

pytestmark = pytest.mark.asyncio(loop_scope="module")

GAS = "gas-L1"
SMOKE = "smoke-L1"
# The idle probe every second, the analyser's timeout, the delay, and a loaded machine.
RAISE_WITHIN_S = 8.0


class World:
    def __init__(self, rig: Rig, api: Api, listener: Listener, topic: str, url: str) -> None:
        self.broker_url = url
        self.rig = rig
        self.api = api
        self.listener = listener
        self.topic = topic

    @property
    def monitor(self) -> Any:
        return self.rig.site.alarms

    def open_of(self, key: str) -> Any:
        return next((a for a in self.monitor.open_alarms() if a.key == key), None)

    async def until(self, ready: Callable[[], Any], within_s: float = RAISE_WITHIN_S) -> Any:
        """Wait (real seconds) until `ready()` is truthy, looking after every alarm change."""
        with self.rig.site.events.subscribe({"alarm_summary"}) as sub:
            async with asyncio.timeout(within_s):
                while not (value := ready()):
                    await sub.get()
                return value

    def deaf(self, device: str, deaf: bool = True) -> None:
        self.rig.sim.emulators[device].mute = deaf

    async def clean(self) -> None:
        """Every instrument answering and no alarm open (acknowledging what waits)."""
        for d in (GAS, SMOKE):
            self.deaf(d, False)
        await self.until(lambda: all(not a.active for a in self.monitor.open_alarms()))
        for a in self.monitor.open_alarms():
            if a.state in (AlarmState.RTN_UNACKED, AlarmState.UNACKED):
                await self.rig.site.alarms.acknowledge(a.id, "test", None)
        await self.until(lambda: not self.monitor.open_alarms())


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def world(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    tmp = tmp_path_factory.mktemp("alarms")
    with running_broker(tmp / "broker") as broker:
        async with running_site(tmp) as rig, serving(rig.ops) as api:
            upstream = Upstream(
                rig.ops, MqttConfig(url=broker.url), backoff=lambda: Backoff(0.02, 0.2)
            )
            task = asyncio.create_task(upstream.run())
            topic = f"linectl/{rig.site.id}/L1/alarms"
            try:
                async with Listener(broker.url, topic, "test-alarms") as listener:
                    yield World(rig, api, listener, topic, broker.url)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)


def last_on(listener: Listener, topic: str) -> list[dict[str, Any]] | None:
    got = listener.on(topic)
    return got[-1].json()["alarms"] if got else None


async def test_a_deaf_analyser_raises_its_alarm_the_operator_acks_it_and_it_closes_on_return(
    world: World,
) -> None:
    key = f"device_down:{GAS}"
    t0 = time.monotonic()
    world.deaf(GAS)
    alarm = await world.until(lambda: world.open_of(key))
    raised_after = time.monotonic() - t0
    assert alarm.state is AlarmState.UNACKED and alarm.priority == "high"
    assert (alarm.line, alarm.station, alarm.device) == ("L1", "emission", GAS)
    print(f"alarm {key} raised {raised_after:.2f} s after the analyser went deaf")

    async with world.api.client("operator") as c:
        listed = (await c.get("/api/alarms")).json()
        assert [a["key"] for a in listed if a["id"] == alarm.id] == [key]
        summary = (await c.get("/api/alarms/summary")).json()
        assert summary["top"]["id"] == alarm.id and summary["unacked"] >= 1
        assert summary["sound"] == "high"
        # The registry sees it, retained, on the line's alarms topic.
        await world.listener.wait_for(
            lambda lst: any(a["key"] == key for a in last_on(lst, world.topic) or [])
        )
        r = await c.post(f"/api/alarms/{alarm.id}/ack", json={"comment": "technician called"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "acked" and r.json()["acked_by"] == "operator"
        again = await c.post(f"/api/alarms/{alarm.id}/ack", json={"comment": "twice"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"
    await world.listener.wait_for(
        lambda lst: any(
            a["key"] == key and a["state"] == "acked" and a["comment"] == "technician called"
            for a in last_on(lst, world.topic) or []
        )
    )

    world.deaf(GAS, False)
    await world.until(lambda: world.open_of(key) is None)
    async with world.api.client("viewer") as c:
        closed = (await c.get("/api/alarms", params={"state": "closed"})).json()
    mine = next(a for a in closed if a["id"] == alarm.id)
    assert mine["acked_by"] == "operator" and mine["comment"] == "technician called"
    assert mine["cleared_at"] is not None and mine["state"] == "closed"
    await world.listener.wait_for(lambda lst: last_on(lst, world.topic) == [])
    # Retained: a registry that connects now is told at once.
    async with Listener(world.broker_url, world.topic, "late") as late:
        await late.wait_for(lambda lst: lst.on(world.topic))
        assert late.on(world.topic)[-1].retain


async def test_unacknowledged_it_waits_returned_then_the_ack_closes_it(world: World) -> None:
    key = f"device_down:{SMOKE}"
    world.deaf(SMOKE)
    alarm = await world.until(lambda: world.open_of(key))
    world.deaf(SMOKE, False)
    rtn = await world.until(
        lambda: (a := world.open_of(key)) and a.state is AlarmState.RTN_UNACKED and a
    )
    assert rtn.id == alarm.id and not rtn.active and rtn.cleared_at is not None
    async with world.api.client("viewer") as c:
        denied = await c.post(f"/api/alarms/{alarm.id}/ack", json={})
        assert denied.status_code == 403
    async with world.api.client("operator") as c:
        r = await c.post(f"/api/alarms/{alarm.id}/ack")
        assert r.status_code == 200 and r.json()["state"] == "closed", r.text
        assert (await c.post("/api/alarms/999999/ack")).status_code == 404
        closed = await c.post(f"/api/alarms/{alarm.id}/silence")
        assert closed.status_code == 409
    # A new occurrence is a new alarm: the closed one never comes back.
    world.deaf(SMOKE)
    again = await world.until(lambda: world.open_of(key))
    assert again.id != alarm.id and again.state is AlarmState.UNACKED
    await world.clean()
    async with world.api.client("admin") as c:
        journal = (await c.get("/api/audit")).json()
    acts = [(e["action"], e["outcome"], e["target"]) for e in journal]
    assert ("alarm_ack", "ok", f"alarm:{alarm.id}") in acts
    assert ("alarm_ack", "denied", f"alarm:{alarm.id}") in acts


async def test_silence_stops_the_sound_and_keeps_the_state(world: World) -> None:
    world.deaf(GAS)
    alarm = await world.until(lambda: world.open_of(f"device_down:{GAS}"))
    async with world.api.client("operator") as c:
        r = await c.post(f"/api/alarms/{alarm.id}/silence")
        assert r.status_code == 200 and r.json()["state"] == "unacked" and r.json()["silenced"]
        summary = (await c.get("/api/alarms/summary")).json()
    assert summary["sound"] is None and summary["unacked"] == 1
    await world.clean()


async def test_a_paused_line_suppresses_its_own_alarms(world: World) -> None:
    key = f"device_down:{GAS}"
    async with world.api.client("operator") as c:
        assert (await c.post("/api/lines/L1/pause")).status_code == 200
        world.deaf(GAS)
        alarm = await world.until(lambda: world.open_of(key))
        assert alarm.state is AlarmState.SUPPRESSED and not alarm.sounding
        summary = (await c.get("/api/alarms/summary")).json()
        assert summary["unacked"] == 0 and summary["sound"] is None
        assert (await c.post(f"/api/alarms/{alarm.id}/ack")).status_code == 409
        assert (await c.post("/api/lines/L1/resume")).status_code == 200
        back = await world.until(
            lambda: (a := world.open_of(key)) and a.state is AlarmState.UNACKED and a
        )
        assert back.id == alarm.id
    await world.clean()


async def test_shelving_needs_a_reason_and_a_limit_and_ends_by_itself(world: World) -> None:
    key = f"device_down:{GAS}"
    world.deaf(GAS)
    alarm = await world.until(lambda: world.open_of(key))
    limit = world.rig.site.cfg.alarms.shelve_max_minutes
    async with world.api.client("operator") as c:
        url = f"/api/alarms/{alarm.id}/shelve"
        no_reason = await c.post(url, json={"minutes": 5})
        assert no_reason.status_code == 422 and no_reason.json()["error"]["field"] == "reason"
        too_long = await c.post(url, json={"reason": "sensor swap", "minutes": limit + 1})
        assert too_long.status_code == 422 and too_long.json()["error"]["field"] == "minutes"
        # 0.1 minute of the site clock: 6 s, 0.3 s of real time at the E2E scale.
        r = await c.post(url, json={"reason": "sensor swap", "minutes": 0.1})
        assert r.status_code == 200 and r.json()["state"] == "shelved", r.text
        assert r.json()["shelve_reason"] == "sensor swap" and r.json()["shelved_until"]
    back = await world.until(
        lambda: (a := world.open_of(key)) and a.state is AlarmState.UNACKED and a
    )
    assert back.id == alarm.id and back.sounding  # still deaf, never acknowledged
    async with world.api.client("admin") as c:
        journal = (await c.get("/api/audit")).json()
    shelved = [e for e in journal if e["action"] == "alarm_shelve" and e["outcome"] == "ok"]
    assert shelved and shelved[0]["reason"] == "sensor swap"
    await world.clean()


async def test_a_flood_is_told_and_the_top_alarms_count_the_bad_actors(world: World) -> None:
    monitor = world.monitor
    saved = monitor.cfg
    monitor.cfg = saved.model_copy(update={"flood_count": 1})
    try:
        world.deaf(GAS)
        world.deaf(SMOKE)
        summary = await world.until(
            lambda: (s := monitor.summary())["flood"] and s["unacked"] == 2 and s
        )
        assert summary["top"]["kind"] == "device_down"
        async with world.api.client("viewer") as c:
            top = (await c.get("/api/alarms/top")).json()
            metrics = (await c.get("/metrics")).text
        assert "linectl_alarm_flood 1.0" in metrics
        assert 'linectl_alarms{priority="high",state="unacked"} 2.0' in metrics
        counts = {t["key"]: t["count"] for t in top}
        assert counts[f"device_down:{GAS}"] >= 4 and counts[f"device_down:{SMOKE}"] >= 3
        assert top[0]["key"] == f"device_down:{GAS}"
        await world.clean()
    finally:
        monitor.cfg = saved
    await world.until(lambda: not monitor.summary()["flood"])
