"""The devices of one daemon: every driver it opened, and the buses they share.

Built from the site config by the stations that need them; closed together
when the daemon stops. `drivers()` lists every one by device id, with its
health and statistics, for whoever reports on the daemon's devices. Modbus devices on one TCP gateway or one RTU port get
one bus (one lock) from the site's own `BusRegistry`; an RS-232 instrument
owns its port alone (RS-232 is point to point).
"""

from __future__ import annotations

import contextlib
from typing import Protocol, TypeVar

from linectl.config import DeviceConfig, RtuTransport, TcpTransport
from linectl.drivers.health import DeviceHealth
from linectl.drivers.lineio_modbus import LineIO
from linectl.drivers.modbus import BusRegistry, ModbusBus
from linectl.drivers.rbt_modbus import RbtModbus
from linectl.drivers.serial import SerialDevice

S = TypeVar("S", bound=SerialDevice)
D = TypeVar("D", bound="Driver")


class Driver(Protocol):
    """What every device driver shows of itself."""

    id: str
    cfg: DeviceConfig
    health: DeviceHealth


class DeviceSet:
    def __init__(self) -> None:
        self.buses = BusRegistry()
        self._serial: list[SerialDevice] = []
        self._drivers: dict[str, Driver] = {}

    def _keep(self, dev: D) -> D:
        self._drivers[dev.id] = dev
        return dev

    def drivers(self) -> dict[str, Driver]:
        """Every driver opened so far, by device id."""
        return dict(self._drivers)

    def _bus(self, cfg: DeviceConfig) -> ModbusBus:
        assert isinstance(cfg.transport, TcpTransport | RtuTransport)
        return ModbusBus.for_transport(cfg.transport, cfg.timeout_s, registry=self.buses)

    def rbt(self, cfg: DeviceConfig) -> RbtModbus:
        return self._keep(RbtModbus(cfg, self._bus(cfg)))

    def lineio(self, cfg: DeviceConfig, n_stations: int) -> LineIO:
        return self._keep(LineIO(cfg, self._bus(cfg), n_stations))

    def serial(self, driver: type[S], cfg: DeviceConfig) -> S:
        dev = driver(cfg)
        self._serial.append(dev)
        return self._keep(dev)

    async def aclose(self) -> None:
        for dev in self._serial:
            with contextlib.suppress(Exception):
                await dev.aclose()
        await self.buses.close_all()
