"""Driver of a line's I/O module and guide displays (`model = "lineio-modbus"`).

Speaks devices.md section 2 through a `ModbusBus`, with the addresses of
maps/lineio-modbus.toml: the photo switches of every station, the entry
lights, and the display blocks that tell the proxy driver what to do.

A new prompt is one FC 16 write of the whole block with SEQ + 1; a refresh
(a countdown) rewrites the block with the same SEQ, code and plate. SEQ is
counted here, continuing from what the module holds when the daemon starts,
and it moves on even when a write fails: the module may have taken the
block without the reply coming back, and a SEQ used twice for two different
prompts would be read as a refresh and never acted on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

from linectl.config import DeviceConfig, RtuTransport, TcpTransport
from linectl.drivers.health import DeviceHealth
from linectl.drivers.modbus import ModbusBus
from linectl.drivers.regmap import load_map, text_from_registers, text_to_registers

log = logging.getLogger(__name__)
MAP = load_map("lineio-modbus")


class Prompt(IntEnum):
    BLANK = 0
    DRIVE_IN = 1
    STOP_HERE = 2
    RELEASE_BRAKE = 3
    APPLY_BRAKE = 4
    APPLY_PARKING_BRAKE = 5
    DRIVE_FORWARD = 6  # next axle
    HIGH_BEAM_ON = 7
    LOW_BEAM_ON = 8
    ENGINE_IDLE = 9
    ENGINE_HIGH_IDLE = 10
    ACCELERATE_FULLY = 11
    INSERT_PROBE = 12
    DRIVE_OUT = 13
    RESULT_PASS = 14
    RESULT_FAIL = 15
    WAIT = 16
    REMOVE_PROBE = 17


def prompt_name(code: int) -> str:
    """The prompt's name in lower case (`drive_in`), or `prompt_N` for a code not known."""
    try:
        return Prompt(code).name.lower()
    except ValueError:
        return f"prompt_{code}"


@dataclass(frozen=True)
class StationInputs:
    in_position: bool  # a vehicle is at the station
    exit_clear: bool  # the exit photo switch sees nothing

    @property
    def free(self) -> bool:
        """The station is free: nothing in position and the exit clear."""
        return not self.in_position and self.exit_clear


@dataclass
class Shown:
    """What a station's guide display holds: prompt code, plate, text, SEQ."""

    seq: int
    code: int
    plate: str
    text: str


class LineIO:
    """The I/O module of one line of `n_stations` stations."""

    def __init__(self, cfg: DeviceConfig, bus: ModbusBus, n_stations: int) -> None:
        if cfg.model != "lineio-modbus":
            raise ValueError(f"device {cfg.id} is a {cfg.model}, not a lineio-modbus")
        if n_stations < 1:
            raise ValueError(f"a line has at least one station, got {n_stations}")
        self.cfg = cfg
        self.id = cfg.id
        self.unit = cfg.unit
        self.bus = bus
        self.n_stations = n_stations
        self.health = DeviceHealth(cfg.id, log)
        bus.attach(cfg.unit, self.health)
        self._block0 = MAP["PROMPT"].address
        self._block_len = MAP["SEQ"].end - self._block0
        self._shown: list[Shown | None] = [None] * n_stations
        # Told of every prompt that reached a display (station, what it shows): the
        # line publishes it, so the console shows what the driver reads.
        self.on_show: Callable[[int, Shown], None] | None = None

    @classmethod
    def from_config(cls, cfg: DeviceConfig, n_stations: int) -> LineIO:
        """The driver on the shared bus of its transport."""
        assert isinstance(cfg.transport, TcpTransport | RtuTransport)
        return cls(cfg, ModbusBus.for_transport(cfg.transport, cfg.timeout_s), n_stations)

    def _check(self, station: int) -> None:
        if not 0 <= station < self.n_stations:
            raise IndexError(f"station {station} of a line of {self.n_stations}")

    async def start(self) -> None:
        """Read every station's display block, so SEQ continues from the module's."""
        for s in range(self.n_stations):
            await self._read_block(s)

    async def _read_block(self, station: int) -> Shown:
        regs = await self.bus.read_holding_registers(
            self.unit, MAP.station_address("PROMPT", station), self._block_len
        )

        def field(name: str) -> list[int]:
            f = MAP[name]
            at = f.address - self._block0
            return regs[at : at + f.count]

        shown = Shown(
            seq=field("SEQ")[0],
            code=field("PROMPT")[0],
            plate=text_from_registers(field("PLATE")),
            text=text_from_registers(field("TEXT")),
        )
        self._shown[station] = shown
        return shown

    async def read_display(self, station: int) -> Shown:
        """What `station`'s display holds now, read from the module."""
        self._check(station)
        return await self._read_block(station)

    def shown(self, station: int) -> Shown | None:
        """What was last written to (or read from) `station`'s display; None before start()."""
        self._check(station)
        return self._shown[station]

    def seq(self, station: int) -> int | None:
        """The SEQ last written to (or read from) `station`; None before start()."""
        self._check(station)
        shown = self._shown[station]
        return shown.seq if shown else None

    def _block(self, code: int, plate: str, text: str, seq: int) -> list[int]:
        regs = [code]
        regs += text_to_registers(plate, MAP["PLATE"].count)
        regs += text_to_registers(text, MAP["TEXT"].count)
        regs.append(seq)
        assert len(regs) == self._block_len
        return regs

    async def show(self, station: int, prompt: Prompt, plate: str = "", text: str = "") -> int:
        """Show a new prompt on `station`'s display; returns its SEQ."""
        self._check(station)
        code = int(Prompt(prompt))
        last = self._shown[station] or await self._read_block(station)
        seq = (last.seq + 1) % 0x10000
        shown = self._shown[station] = Shown(seq, code, plate, text)
        await self.bus.write_registers(
            self.unit, MAP.station_address("PROMPT", station), self._block(code, plate, text, seq)
        )
        if self.on_show is not None:
            self.on_show(station, shown)
        return seq

    async def refresh(self, station: int, text: str) -> None:
        """New text for the prompt on display (same SEQ, code and plate)."""
        self._check(station)
        last = self._shown[station] or await self._read_block(station)
        last.text = text
        await self.bus.write_registers(
            self.unit,
            MAP.station_address("PROMPT", station),
            self._block(last.code, last.plate, text, last.seq),
        )
        if self.on_show is not None:
            self.on_show(station, last)

    async def set_entry_light(self, station: int, green: bool) -> None:
        self._check(station)
        await self.bus.write_coil(self.unit, MAP.station_address("ENTRY_LIGHT", station), green)

    def _inputs_of(self, bits: list[bool], station: int, base: int) -> StationInputs:
        return StationInputs(
            in_position=bits[MAP.station_address("IN_POSITION", station) - base],
            exit_clear=bits[MAP.station_address("EXIT_CLEAR", station) - base],
        )

    async def inputs(self, station: int) -> StationInputs:
        self._check(station)
        first = MAP.station_address("IN_POSITION", station)
        n = MAP["EXIT_CLEAR"].end - MAP["IN_POSITION"].address
        bits = await self.bus.read_discrete_inputs(self.unit, first, n)
        return self._inputs_of(bits, station, first)

    async def discrete_inputs(self) -> list[bool]:
        """Every discrete input of the module, spare ones included, in one request."""
        stride = MAP.stride("discrete_inputs")
        return await self.bus.read_discrete_inputs(self.unit, 0, stride * self.n_stations)

    async def all_inputs(self) -> list[StationInputs]:
        """Every station's inputs in one request."""
        stride = MAP.stride("discrete_inputs")
        bits = await self.bus.read_discrete_inputs(self.unit, 0, stride * self.n_stations)
        return [self._inputs_of(bits, s, 0) for s in range(self.n_stations)]
