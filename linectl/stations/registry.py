"""Which procedure runs a station of a given kind, built with its devices."""

from __future__ import annotations

from linectl.config import ConfigError, StationConfig
from linectl.drivers.devices import DeviceSet
from linectl.stations.base import Procedure, SiteContext


def build_procedure(cfg: StationConfig, ctx: SiteContext, devices: DeviceSet) -> Procedure:
    if cfg.kind == "brake":
        from linectl.stations.brake import BrakeProcedure

        dev = cfg.device("rbt-modbus")
        if dev is None:
            raise ConfigError(f"station {cfg.id}: a brake station needs an rbt-modbus device")
        return BrakeProcedure(cfg, ctx, devices.rbt(dev))
    if cfg.kind == "headlamp":
        from linectl.drivers.hlt_ascii import HltAscii
        from linectl.stations.headlamp import HeadlampProcedure

        dev = cfg.device("hlt-ascii")
        if dev is None:
            raise ConfigError(f"station {cfg.id}: a headlamp station needs an hlt-ascii device")
        return HeadlampProcedure(cfg, ctx, devices.serial(HltAscii, dev))
    if cfg.kind == "emission":
        from linectl.drivers.nha503 import Nha503
        from linectl.drivers.nht6 import Nht6
        from linectl.stations.emission import EmissionProcedure

        gas, smoke = cfg.device("nha503"), cfg.device("nht6")
        if gas is None and smoke is None:
            raise ConfigError(
                f"station {cfg.id}: an emission station needs an nha503 gas analyser, "
                "an nht6 opacimeter, or both"
            )
        return EmissionProcedure(
            cfg,
            ctx,
            devices.serial(Nha503, gas) if gas else None,
            devices.serial(Nht6, smoke) if smoke else None,
        )
    raise ConfigError(f"station {cfg.id}: {cfg.kind} stations are not supported yet")
