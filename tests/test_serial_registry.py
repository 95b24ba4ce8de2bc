"""The example site's headlamp and emission stations are built with their serial drivers."""

from __future__ import annotations

from pathlib import Path

import pytest

from linectl.clock import Clock
from linectl.config import REPO_DIR, ConfigError, StationConfig, load_site_config
from linectl.drivers.devices import DeviceSet
from linectl.events import EventBus
from linectl.stations.base import SiteContext
from linectl.stations.emission import EmissionProcedure
from linectl.stations.headlamp import HeadlampProcedure
from linectl.stations.limits import load_limits
from linectl.stations.registry import build_procedure


async def test_example_site_builds_headlamp_and_emission_procedures() -> None:
    cfg = load_site_config(REPO_DIR / "config" / "site.example.toml")
    ctx = SiteContext(cfg, Clock(1.0), load_limits(cfg.limits.dir), EventBus())
    stations = {s.kind: s for s in cfg.lines[0].stations}
    devices = DeviceSet()
    hl = build_procedure(stations["headlamp"], ctx, devices)
    em = build_procedure(stations["emission"], ctx, devices)
    try:
        assert isinstance(hl, HeadlampProcedure) and hl.tester.model == "hlt-ascii"
        assert isinstance(em, EmissionProcedure)
        assert em.gas is not None and em.smoke is not None
        assert Path(em.gas.port.path).name == "L1-gas"
        assert set(em.device_health()) == {"gas-L1", "smoke-L1"}
        one = StationConfig.model_validate(
            {
                "id": "em2",
                "kind": "emission",
                "devices": [stations["emission"].devices[1].model_dump()],
            }
        )
        diesel_only = build_procedure(one, ctx, devices)
        assert isinstance(diesel_only, EmissionProcedure) and diesel_only.gas is None
    finally:
        await devices.aclose()


def test_a_headlamp_station_without_its_tester_is_refused() -> None:
    cfg = load_site_config(REPO_DIR / "config" / "site.example.toml")
    ctx = SiteContext(cfg, Clock(1.0), load_limits(cfg.limits.dir), EventBus())
    brake = cfg.lines[0].stations[0]
    bogus = brake.model_copy(update={"kind": "headlamp"})  # skips validation on purpose
    with pytest.raises(ConfigError, match="hlt-ascii"):
        build_procedure(bogus, ctx, DeviceSet())
