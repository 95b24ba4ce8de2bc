"""Issue 14: a proxy driver late back by more than a set time raises an alarm.

A real site (simulated instruments) on a line whose drivers check in at the
console: a driver who walks back longer than walk_back_s + `[alarms]
late_back_s` raises `driver_late:{line}:{driver}` at its configured
priority; it returns to normal when he checks in, or when he is put off duty.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from site_fixtures import TESTER, running_site
from test_checkin import checkin

from linectl.alarms.state import AlarmState
from linectl.config import SiteConfig
from linectl.scheduler.pool import DriverState
from linectl.site import Site

SCALE = 200.0  # walk_back_s 40 + delay 20 clock seconds: 0.3 s real
DELAY_S = 20.0


def late_console(cfg: SiteConfig) -> SiteConfig:
    cfg = checkin("console")(cfg)
    alarms = cfg.alarms.model_copy(
        update={"late_back_s": DELAY_S, "priorities": {"driver_late": "high"}}
    )
    return cfg.model_copy(update={"alarms": alarms})


async def until(site: Site, ready: Callable[[], Any], within_s: float = 10) -> Any:
    with site.events.subscribe({"alarm_summary"}) as sub:
        async with asyncio.timeout(within_s):
            while not (value := ready()):
                await sub.get()
            return value


def alarm(site: Site, key: str) -> Any:
    return next((a for a in site.alarms.open_alarms() if a.key == key), None)


async def test_a_driver_late_back_raises_an_alarm_until_he_checks_in(tmp_path: Path) -> None:
    async with running_site(
        tmp_path, kinds=("brake",), adjust=late_console, time_scale=SCALE
    ) as rig:
        site, pool = rig.site, rig.site.line("L1").pool
        left = rig.clock.now()
        pool.release("L1D1")
        pool.release("L1D2")
        key = "driver_late:L1:L1D1"
        raised = await until(site, lambda: alarm(site, key))
        assert rig.clock.now() - left >= pool.walk_back_s + DELAY_S
        assert raised.priority == "high" and raised.line == "L1"
        assert raised.state is AlarmState.UNACKED and "L1D1" in raised.message
        assert alarm(site, "driver_late:L1:L1D2") is not None  # one alarm per driver

        await rig.ops.check_in(TESTER, "L1D1")
        back = await until(
            site, lambda: (a := alarm(site, key)) and a.state is AlarmState.RTN_UNACKED and a
        )
        assert back.id == raised.id
        # Off duty, he no longer walks back: his alarm returns too.
        await pool.set_duty("L1D2", DriverState.OFF_DUTY)
        await until(
            site,
            lambda: (a := alarm(site, "driver_late:L1:L1D2")) and a.state is AlarmState.RTN_UNACKED,
        )
        # Not late again: no new alarm for him while idle.
        assert [a.key for a in site.alarms.open_alarms() if a.key == key] == [key]
