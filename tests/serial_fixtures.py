"""Shared rigs of the serial tests: an emulator on a real pty with its driver opened
on the slave path, a clock the test moves by hand, and a whole station (guide
display on a line I/O emulator over Modbus TCP, instruments on ptys, a simulated
driver following the display) for the procedures."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from linectl.clock import Clock
from linectl.config import DeviceConfig, StationConfig, parse_site_config
from linectl.drivers.lineio_modbus import LineIO, Prompt
from linectl.drivers.modbus import BusRegistry, ModbusBus
from linectl.drivers.serial import SerialDevice
from linectl.events import EventBus
from linectl.items import ItemResult
from linectl.stations.base import Guide, Procedure, Recorder, SiteContext, Visit
from linectl.stations.limits import load_limits
from linectl.vehicle import InspectionType
from sim.lineio import LineIOEmulator
from sim.modbus_server import serve_tcp
from sim.referee import Referee
from sim.serial_emulator import SerialEmulator
from sim.vehicles import SimVehicle
from sim.world import BEHAVIOURS, Agent, SimLine, SimStation, World

D = TypeVar("D", bound=SerialDevice)


class ManualClock(Clock):
    """A clock that only moves when the test says so."""

    def __init__(self, t: float = 0.0) -> None:
        super().__init__(1.0)
        self.t = t

    def now(self) -> float:
        return self.t


def device_config(model: str, path: str | Path, timeout_s: float = 0.3) -> DeviceConfig:
    return DeviceConfig.model_validate(
        {
            "id": f"{model}-1",
            "model": model,
            "transport": {"kind": "serial", "device": str(path)},
            "timeout_s": timeout_s,
        }
    )


@asynccontextmanager
async def on_pty(
    emu: SerialEmulator, driver: type[D], link: Path | None = None, timeout_s: float = 0.3
) -> AsyncIterator[D]:
    """`emu` served on a pty (linked at `link` when given), `driver` opened on it."""
    path = await emu.start(str(link) if link else None)
    dev = driver(device_config(driver.model, path, timeout_s))
    try:
        await dev.start()
        yield dev
    finally:
        await dev.aclose()
        await emu.aclose()


# --- a whole station: guide display over Modbus, instruments on ptys, a driver ------


class MemoryRecorder(Recorder):
    """Keeps every attempt the procedure commits, in order."""

    def __init__(self) -> None:
        self.attempts: list[tuple[ItemResult, str | None]] = []

    async def attempt(
        self,
        result: ItemResult,
        *,
        station: str,
        device: str | None,
        started_at: datetime,
        finished_at: datetime,
    ) -> int:
        self.attempts.append((result, device))
        return sum(r.code == result.code for r, _ in self.attempts)


@dataclass
class StationRig:
    clock: Clock
    ctx: SiteContext
    station: StationConfig
    devices: dict[str, DeviceConfig]  # model -> config (serial path of the pty)
    emulators: dict[str, SerialEmulator]  # model -> emulator
    io: LineIO
    world: World
    line: SimLine
    referee: Referee  # shared by the station's emulators, the line I/O and the world
    prompts: list[tuple[Prompt, str]] = field(default_factory=list)

    async def visit(
        self,
        procedure: Procedure,
        sv: SimVehicle,
        items: list[str],
        inspection_type: InspectionType = InspectionType.PERIODIC,
    ) -> tuple[list[ItemResult], MemoryRecorder]:
        """One vehicle through the station: its driver acts on the display while the
        procedure runs; DRIVE_OUT at the end, as the line would show it."""
        agent = Agent(self.world, self.line, sv, random.Random(sv.seed))
        st = self.line.stations[0]
        self.line.io.set_inputs(0, in_position=True)
        behaviour = asyncio.create_task(BEHAVIOURS[st.kind](agent, st))
        guide = Guide(
            self.io, 0, sv.plate, self.clock, on_prompt=lambda p, t: self.prompts.append((p, t))
        )
        recorder = MemoryRecorder()
        try:
            visit = Visit("I-1", sv.vehicle, inspection_type, items, line="L1")
            results = await asyncio.wait_for(procedure.run(visit, guide, recorder), 60.0)
            await guide.show(Prompt.DRIVE_OUT)
            await asyncio.wait_for(behaviour, 10.0)
        finally:
            behaviour.cancel()
            await asyncio.gather(behaviour, return_exceptions=True)
            self.line.io.set_inputs(0, in_position=False)
        return results, recorder

    def shown(self, prompt: Prompt) -> int:
        return sum(p == prompt for p, _ in self.prompts)


@asynccontextmanager
async def station_rig(
    tmp_path: Path,
    kind: str,
    emulators: dict[str, SerialEmulator],
    clock: Clock,
    **site: Any,
) -> AsyncIterator[StationRig]:
    """One station of `kind` with `emulators` (model -> emulator) on ptys linked under
    `tmp_path` (made with `clock`, as the rig is), its guide display on a line I/O emulator over Modbus TCP, and a world
    whose driver follows that display. `site` overrides site-config tables
    (e.g. emission={...}, limits={...}). One referee hears every emulator and
    the world (`rig.referee`)."""
    referee = Referee()
    for emu in emulators.values():
        emu.referee = referee
    io_emu = LineIOEmulator(clock, 1, referee=referee)
    async with await serve_tcp([io_emu.sim_device()], "127.0.0.1", 0) as handle:
        devices = []
        for model, emu in emulators.items():
            link = tmp_path / f"{model}.tty"
            await emu.start(str(link))
            devices.append(
                {
                    "id": f"{model}-1",
                    "model": model,
                    "transport": {"kind": "serial", "device": str(link)},
                    "timeout_s": 0.3,
                }
            )
        tcp = {"kind": "tcp", "host": "127.0.0.1", "port": handle.port}
        cfg = parse_site_config(
            {
                "site_id": "test",
                "lines": [
                    {
                        "id": "L1",
                        "io": {"id": "io-1", "model": "lineio-modbus", "transport": tcp},
                        "stations": [{"id": kind, "kind": kind, "devices": devices}],
                        "proxy_drivers": ["D1"],
                    }
                ],
                **site,
            }
        )
        line_cfg = cfg.lines[0]
        bus = ModbusBus.for_transport(line_cfg.io.transport, 1.0, registry=BusRegistry())  # type: ignore[arg-type]
        io = LineIO(line_cfg.io, bus, 1)
        try:
            await io.start()
            ctx = SiteContext(cfg, clock, load_limits(cfg.limits.dir), EventBus())
            sim_line = SimLine("L1", io_emu, [SimStation(0, kind, kind, emulators)])
            station = line_cfg.stations[0]
            yield StationRig(
                clock,
                ctx,
                station,
                {d.model: d for d in station.devices},
                emulators,
                io,
                World(clock, [sim_line], seed=1, referee=referee),
                sim_line,
                referee,
            )
        finally:
            await bus.close()
            for emu in emulators.values():
                await emu.aclose()
