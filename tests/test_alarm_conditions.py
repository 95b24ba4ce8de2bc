"""The alarm conditions beyond a deaf device, on a site with no instruments at all.

A site whose devices are nowhere (made-up ports), at a high time scale: a
vehicle waits and the line can call none (line_idle), the outbox holds a
result nobody delivers (outbox_stale), the broker is out of reach
(mqtt_down), the disk is "nearly full" (a free-space threshold no disk
meets), and a device taken out of service raises its alarm as out_of_service,
never annunciated. Pausing the line suppresses the line's own alarms and
lets its idle condition go; site-wide ones stay.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mqtt_broker import free_port
from site_fixtures import TESTER, offline_config
from store_fixtures import make_vin

from linectl.alarms.state import AlarmState
from linectl.clock import Clock
from linectl.config import MqttConfig, SiteConfig
from linectl.demo import demo_config
from linectl.ops.operations import Operations
from linectl.site import Site, open_store
from linectl.upstream import Upstream
from linectl.upstream.connection import Backoff

SCALE = 600.0  # a clock minute is 0.1 s


def config(tmp_path: Path) -> SiteConfig:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    (tmp_path / "tty").mkdir()
    cfg = offline_config(demo_config("t1", 1, url, tmp_path / "tty", ("brake",)))
    alarms = cfg.alarms.model_copy(
        update={
            "line_idle_minutes": 1.0,
            "outbox_stale_minutes": 1.0,
            "mqtt_down_s": 5.0,
            "out_of_service": ["rbt-L1"],
            "priorities": {"line_idle": "low"},
        }
    )
    database = cfg.database.model_copy(update={"min_free_mb": 1e12})
    return cfg.model_copy(update={"alarms": alarms, "database": database})


async def until(site: Site, ready: Callable[[], Any], within_s: float = 15) -> Any:
    with site.events.subscribe({"alarm_summary"}) as sub:
        async with asyncio.timeout(within_s):
            while not (value := ready()):
                await sub.get()
            return value


def by_key(site: Site) -> dict[str, Any]:
    return {a.key: a for a in site.alarms.open_alarms()}


async def test_idle_line_outbox_broker_disk_and_out_of_service(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    store = await open_store(cfg.database.url)
    site = Site(cfg, Clock(SCALE), store)
    site.alarms.outbox_every_s = 0.05
    ops = Operations(site)
    upstream = Upstream(
        ops, MqttConfig(url=f"mqtt://127.0.0.1:{free_port()}"), backoff=lambda: Backoff(0.05, 0.2)
    )
    tasks = [asyncio.create_task(site.run()), asyncio.create_task(upstream.run())]
    try:
        await asyncio.wait_for(site.ready.wait(), 10)
        waiting = await ops.register(
            TESTER,
            {
                "request_id": "idle-1",
                "inspection_type": "new",
                "vehicle": {
                    "vin": make_vin(4242), "plate": "鲁A00001", "vehicle_class": "M1",
                    "fuel": "petrol", "axles": 2, "parking_axles": [2],
                    "curb_mass_kg": 1300, "gross_mass_kg": 1700, "headlamp_system": 2,
                },
                "items": ["B1", "B2", "B0", "BT"],
            },
        )  # fmt: skip
        assert waiting["accepted"], waiting
        second = await ops.register(
            TESTER,
            {
                "request_id": "idle-2",
                "inspection_type": "new",
                "vehicle": {
                    "vin": make_vin(4243), "plate": "鲁A00002", "vehicle_class": "M1",
                    "fuel": "petrol", "axles": 2, "parking_axles": [2],
                    "curb_mass_kg": 1300, "gross_mass_kg": 1700, "headlamp_system": 2,
                },
                "items": ["B1", "B2", "B0", "BT"],
            },
        )  # fmt: skip
        # Its result goes to the outbox, and nobody takes it.
        await ops.abort(TESTER, second["inspection_id"], "owner left")
        keys = {"line_idle:L1", "outbox_stale", "mqtt_down", "disk_low", "device_down:io-L1",
                "device_down:rbt-L1"}  # fmt: skip
        found = await until(site, lambda: keys <= set(by_key(site)) and by_key(site))
        assert found["line_idle:L1"].priority == "low"  # from [alarms.priorities]
        assert found["line_idle:L1"].line == "L1" and found["outbox_stale"].line is None
        assert found["mqtt_down"].priority == "medium" and "127.0.0.1" in found["mqtt_down"].message
        assert found["disk_low"].priority == "high"
        assert found["device_down:rbt-L1"].state is AlarmState.OUT_OF_SERVICE
        assert not found["device_down:rbt-L1"].sounding
        assert found["device_down:io-L1"].state is AlarmState.UNACKED

        # Paused: the line's alarms are suppressed, and a paused line is not idle.
        await ops.pause(TESTER, "L1")
        paused = await until(
            site,
            lambda: (
                (k := by_key(site)).get("device_down:io-L1")
                and k["device_down:io-L1"].state is AlarmState.SUPPRESSED
                and k["line_idle:L1"].state is AlarmState.RTN_UNACKED
                and k
            ),
        )
        assert paused["mqtt_down"].state is AlarmState.UNACKED  # site-wide: not the line's
        assert paused["device_down:rbt-L1"].state is AlarmState.OUT_OF_SERVICE
        summary = site.alarms.summary()
        assert summary["top"]["key"] in ("disk_low", "mqtt_down", "outbox_stale", "line_idle:L1")
        # The retained topic's payload for the line carries site-wide alarms too.
        payload = site.alarms.line_payload("L1")
        assert {"mqtt_down", "disk_low", "device_down:io-L1"} <= {
            a["key"] for a in payload["alarms"]
        }
        assert payload["ts"].endswith("Z")
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await store.aclose()
