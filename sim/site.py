"""A whole site in simulation: every instrument of a site config, and the world.

`SimSite` reads the same site config as the daemon and stands up, for each
device, its emulator where the config says the device is: a Modbus server on
its TCP port (port 0: any free port, reported back in `live_config()`), or a
pseudo-terminal linked at its serial device path. The world of vehicles and
proxy drivers then acts on the line I/O emulators' guide displays. This is
what `linectl sim --config FILE` runs, and half of `linectl demo`. Run on
its own, its drivers on lines with `checkin.mode = "input"` press their card
when back, knowing their vehicle from the board (sim/board.py). One
`Referee` (`SimSite.referee`) hears every protocol violation of the site's
emulators and world.

Device faults (sim/faults.py) come from a plan (`--faults PLAN.toml`) or at
random (`--fault-rate F`, seeded by `--seed`); `SimSite.faults` plays them,
switching each on and off in its device's emulator. With `--seed` the world
also knows the first vehicles of that seed's population (sim.vehicles), the
ones `linectl registry-sim --seed` registers, so their built-in faults show.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from linectl.cli import CliError
from linectl.clock import Clock
from linectl.config import DeviceConfig, SiteConfig, TcpTransport, load_site_config
from sim.board import CardCheckins
from sim.board import warnings as checkin_warnings
from sim.faults import DeviceSpot, Fault, FaultPlan, FaultPlanError, FaultRunner, random_faults
from sim.gas_analyser import GasAnalyserEmulator
from sim.headlamp_tester import HeadlampTesterEmulator
from sim.lineio import LineIOEmulator
from sim.modbus_server import serve_rtu, serve_tcp
from sim.opacimeter import OpacimeterEmulator
from sim.pty import NullModem
from sim.rbt import BrakeTesterEmulator
from sim.referee import Referee
from sim.vehicles import Population
from sim.world import SimLine, SimStation, World

log = logging.getLogger(__name__)

# With --seed, how many of that population's vehicles the world knows (as linectl.demo).
KNOWN_VEHICLES = 500

# Emulators of the serial (non-Modbus) instruments: model -> factory(clock, device config,
# referee). Each returns an object with `async start(device_path: str)` and `async aclose()`.
SerialEmulatorFactory = Callable[[Clock, DeviceConfig, Referee], Any]
SERIAL_EMULATORS: dict[str, SerialEmulatorFactory] = {
    "nha503": GasAnalyserEmulator.for_device,
    "nht6": OpacimeterEmulator.for_device,
    "hlt-ascii": HeadlampTesterEmulator.for_device,
}


class SimSite:
    def __init__(self, cfg: SiteConfig, clock: Clock, seed: int = 0) -> None:
        self.cfg = cfg
        self.clock = clock
        self.referee = Referee()
        self.emulators: dict[str, Any] = {}  # device id -> emulator
        self._servers: list[Any] = []
        self._closers: list[Any] = []
        self._ports: dict[str, int] = {}  # device id -> bound TCP port
        self._handles: dict[str, Any] = {}  # Modbus device id -> its server
        self._modems: dict[str, NullModem] = {}  # RTU Modbus device id -> its cable
        self.faults = FaultRunner(clock, {})
        lines = []
        for ln in cfg.lines:
            io = LineIOEmulator(
                clock, len(ln.stations), unit=ln.io.unit, name=ln.io.id, referee=self.referee
            )
            self.emulators[ln.io.id] = io
            stations = []
            for k, st in enumerate(ln.stations):
                devs: dict[str, Any] = {}
                for d in st.devices:
                    emu = self._emulator(d)
                    self.emulators[d.id] = emu
                    devs[d.model] = emu
                stations.append(SimStation(k, st.id, st.kind, devs))
            lines.append(SimLine(ln.id, io, stations))
        self.world = World(clock, lines, seed=seed, referee=self.referee)

    def ios(self) -> dict[str, LineIOEmulator]:
        """Each line's I/O emulator by device id."""
        return {ln.io.id: self.emulators[ln.io.id] for ln in self.cfg.lines}

    def _emulator(self, d: DeviceConfig) -> Any:
        if d.model == "rbt-modbus":
            return BrakeTesterEmulator(self.clock, unit=d.unit, name=d.id, referee=self.referee)
        if d.model in SERIAL_EMULATORS:
            return SERIAL_EMULATORS[d.model](self.clock, d, self.referee)
        raise ValueError(f"no emulator for device model {d.model} ({d.id})")

    def spots(self) -> dict[str, DeviceSpot]:
        """Every device's model and transport, for fault plans."""
        out = {}
        for d in self._devices():
            t = d.transport
            kind = "tcp" if isinstance(t, TcpTransport) else "serial"
            if kind == "serial" and d.model in ("rbt-modbus", "lineio-modbus"):
                kind = "rtu"
            out[d.id] = DeviceSpot(d.id, d.model, kind)
        return out

    def _switch(self, f: Fault, on: bool) -> Any:
        """Turn fault `f` on or off in its emulator; an awaitable when that takes I/O."""
        emu = self.emulators[f.device]
        if f.kind in ("modbus_drop", "lineio_gone"):
            if on and f.device in self._ports:  # a TCP connection goes too
                self._handles[f.device].drop_connections()
        elif f.kind in ("rtu_bad_crc", "rtu_short_frame"):
            modem = self._modems[f.device]
            if not on:
                modem.tamper = None
            elif f.kind == "rtu_bad_crc":
                modem.tamper = lambda b: b[:-1] + bytes([b[-1] ^ 0x5A]) if b else b
            else:
                modem.tamper = lambda b: b[: max(1, len(b) - 3)]
        elif f.kind == "serial_silent":
            emu.mute = on
        elif f.kind == "serial_garbled":
            emu.garbled = on
        elif f.kind == "serial_port_gone":
            return emu.unplug() if on else emu.replug()
        elif f.kind == "photo_chatter":
            emu.chatter = on
        elif f.kind == "lift_stuck":
            emu.stick_lift(on)
        elif f.kind == "analyser_busy":
            emu.stay_busy(on)
        elif f.kind == "head_lost":
            emu.stuck_head = on
        return None

    def plan_faults(
        self, plan: str | None = None, rate: float = 0.0, seed: int = 0, until_s: float = 86400.0
    ) -> list[Fault]:
        """The faults to play: the plan file's, or drawn at `rate` (FaultPlanError
        names what is wrong with a plan)."""
        spots = self.spots()
        self.faults.switches = {d: self._switch for d in spots}
        if plan:
            return FaultPlan.load(plan, spots).faults
        return random_faults(spots, rate, seed, until_s)

    def know_population(self, seed: int, n: int) -> None:
        """The world knows the first `n` vehicles of the population of `seed`."""
        population = Population(seed=seed)
        for _ in range(n):
            self.world.add(population.next())

    def _devices(self) -> list[DeviceConfig]:
        out = []
        for ln in self.cfg.lines:
            out.append(ln.io)
            out += [d for st in ln.stations for d in st.devices]
        return out

    async def start(self) -> None:
        """Listen where the config says; serial devices get pty links at their paths."""
        modbus_groups: dict[tuple[str, ...], list[DeviceConfig]] = defaultdict(list)
        for d in self._devices():
            t = d.transport
            if d.model in ("rbt-modbus", "lineio-modbus"):
                if isinstance(t, TcpTransport):
                    key: tuple[str, ...] = ("tcp", t.host, str(t.port), d.id if t.port == 0 else "")
                else:
                    key = ("rtu", t.device)
                modbus_groups[key].append(d)
            else:
                emu = self.emulators[d.id]
                await emu.start(t.device)  # type: ignore[union-attr]
                self._closers.append(emu)
        for key, devs in modbus_groups.items():
            sim_devices = [self.emulators[d.id].sim_device() for d in devs]
            by_unit = {d.unit: d.id for d in devs}

            def gate(unit: int, by_unit: dict[int, str] = by_unit) -> str | None:
                dev = by_unit.get(unit)
                return self.faults.modbus_gate(dev) if dev is not None else None

            if key[0] == "tcp":
                t = devs[0].transport
                assert isinstance(t, TcpTransport)
                server = await serve_tcp(sim_devices, t.host, t.port, gate=gate)
                for d in devs:
                    self._ports[d.id] = server.port
                log.info("sim: %s on tcp %s:%d", ", ".join(d.id for d in devs), t.host, server.port)
            else:
                modem = NullModem()
                await modem.__aenter__()
                self._closers.append(modem)
                modem.link(key[1])
                server = await serve_rtu(
                    sim_devices,
                    modem.ends[0],
                    devs[0].transport.baudrate,  # type: ignore[union-attr]
                    gate=gate,
                )
                for d in devs:
                    self._modems[d.id] = modem
                log.info("sim: %s on rtu %s", ", ".join(d.id for d in devs), key[1])
            self._servers.append(server)
            for d in devs:
                self._handles[d.id] = server

    def live_config(self) -> SiteConfig:
        """The config with every TCP port 0 replaced by the port actually bound."""

        def fix(d: DeviceConfig) -> DeviceConfig:
            if isinstance(d.transport, TcpTransport) and d.id in self._ports:
                return d.model_copy(
                    update={"transport": d.transport.model_copy(update={"port": self._ports[d.id]})}
                )
            return d

        lines = []
        for ln in self.cfg.lines:
            stations = [
                st.model_copy(update={"devices": [fix(d) for d in st.devices]})
                for st in ln.stations
            ]
            lines.append(ln.model_copy(update={"io": fix(ln.io), "stations": stations}))
        return self.cfg.model_copy(update={"lines": lines})

    async def run(self, faults: list[Fault] | None = None) -> None:
        if not faults:
            await self.world.run()
            return
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self.world.run(), name="world")
            tg.create_task(self.faults.play(faults), name="faults")

    async def aclose(self) -> None:
        for server in self._servers:
            with contextlib.suppress(Exception):
                await server.close()
        for c in reversed(self._closers):
            with contextlib.suppress(Exception):
                if hasattr(c, "aclose"):
                    await c.aclose()
                else:
                    await c.__aexit__(None, None, None)


async def _run_sim(cfg: SiteConfig, args: Any) -> None:
    time_scale, seed = args.time_scale, args.seed or 0
    clock = Clock(time_scale)
    site = SimSite(cfg, clock, seed)
    if args.seed is not None:
        site.know_population(args.seed, KNOWN_VEHICLES)
    faults = site.plan_faults(args.faults, args.fault_rate, seed)
    for warning in checkin_warnings(cfg):
        log.warning("sim: %s", warning)
    cards = CardCheckins(cfg, clock, site.ios(), seed)
    site.world.on_trip_end = cards.trip_ended
    board: asyncio.Task[None] | None = None
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    await site.start()
    print(f"simulating site {cfg.site_id} at time scale {time_scale:g}; Ctrl-C to stop", flush=True)
    if args.faults:
        print(f"fault plan {args.faults}: {len(faults)} fault(s)", flush=True)
    elif args.fault_rate:
        print(f"random faults at rate {args.fault_rate:g} a device-minute, seed {seed}", flush=True)
    if cards.active:
        board = asyncio.create_task(cards.watch_board(), name="sim-board")
    try:
        await site.run(faults)
    except asyncio.CancelledError:
        pass
    finally:
        if board is not None:
            board.cancel()
            await asyncio.gather(board, return_exceptions=True)
        await cards.aclose()
        await site.aclose()
        kinds = ", ".join(f"{k} {n}" for k, n in sorted(site.referee.by_kind().items()))
        print(
            f"protocol violations seen by the simulator: {site.referee.count}"
            + (f" ({kinds})" if kinds else ""),
            flush=True,
        )
        if faults:
            print(site.faults.summary(), flush=True)


def cli(args: Any) -> int:
    cfg = load_site_config(args.config)
    if args.faults and args.fault_rate:
        raise CliError("--faults and --fault-rate: give a plan or a rate, not both", 2)
    if args.faults:
        try:  # a bad plan is refused before anything listens
            SimSite(cfg, Clock(1.0)).plan_faults(args.faults)
        except FaultPlanError as e:
            raise CliError(f"--faults {e}", 2) from None
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    asyncio.run(_run_sim(cfg, args))
    return 0
