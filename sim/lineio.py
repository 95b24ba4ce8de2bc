"""Emulator of the line I/O module and its guide displays (devices.md section 2).

`LineIOEmulator` holds, for every station of a line, the photo switches
(IN_POSITION, EXIT_CLEAR) that the world sets, the entry light coil and the
display block (PROMPT, PLATE, TEXT, SEQ) that the daemon writes. Simulated
proxy drivers read the displays and the lights through `prompt()`,
`wait_prompt()` and `wait_entry_light()`, as real ones read the board.

Enforced as the contract states it: a block whose SEQ is unchanged is a
refresh and may change TEXT only; a write that keeps SEQ but changes the
code or the plate is refused with exception 03, which catches a line
computer that forgets to count. Undefined addresses (between station
blocks, input registers) answer 02; spare inputs read 0; spare coils keep
what was written.

The referee (sim/referee.py) hears of every such refused write, of DRIVE_IN
shown and of an entry light turned green while the station is not free
(IN_POSITION 1 or EXIT_CLEAR 0): a vehicle would be called into another.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from linectl.clock import Clock
from linectl.drivers.regmap import load_map, text_from_registers
from sim.referee import Referee

BOUNCE_S = 2.0  # how long a chattering photo switch bounces after a change (clock s)
DRIVE_IN = 1  # devices.md prompt code, written out (the emulator borrows no driver enum)


@dataclass(frozen=True)
class PromptBlock:
    """One station's display as last written. `shown_at` is the clock time of
    the write that brought this SEQ (0.0 before any)."""

    code: int
    plate: str
    text: str
    seq: int
    shown_at: float = 0.0


class _Changed:
    """Wake every waiter on a change (one-shot futures, made on demand so the
    emulator can be built outside an event loop)."""

    def __init__(self) -> None:
        self._waiters: list[asyncio.Future[None]] = []

    async def wait(self) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        try:
            await fut
        finally:
            if fut in self._waiters:
                self._waiters.remove(fut)

    def notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)


class LineIOEmulator:
    """The I/O module of a line of `n_stations` stations, at unit `unit`."""

    def __init__(
        self,
        clock: Clock,
        n_stations: int,
        unit: int = 1,
        *,
        name: str = "lineio",
        referee: Referee | None = None,
    ) -> None:
        if n_stations < 1:
            raise ValueError(f"a line has at least one station, got {n_stations}")
        self.clock = clock
        self.name = name
        self.referee = referee or Referee()
        self.n_stations = n_stations
        self.unit = unit
        self.map = m = load_map("lineio-modbus")
        self._bits = m.stride("discrete_inputs")
        self._stride = m.stride("holding_registers")
        self._base = m["PROMPT"].address
        self._size = m["SEQ"].end - self._base  # registers of one display block
        self._inputs = [False] * (self._bits * n_stations)
        for s in range(n_stations):
            self._inputs[m.station_address("EXIT_CLEAR", s)] = True
        self._coils = [False] * (self._bits * n_stations)
        self._blocks = [[0] * self._size for _ in range(n_stations)]
        self._shown_at = [0.0] * n_stations
        self._written = [False] * n_stations
        self._changed = _Changed()
        # An injected fault (sim/faults.py): IN_POSITION bounces after it changes.
        self.chatter = False
        self._chatter_rng = random.Random(unit)
        self._edge_at = [float("-inf")] * n_stations  # clock time IN_POSITION last changed

    # -- the world's side -----------------------------------------------------

    def _check(self, station: int) -> None:
        if not 0 <= station < self.n_stations:
            raise IndexError(f"station {station} of a line of {self.n_stations}")

    def set_inputs(
        self, station: int, in_position: bool | None = None, exit_clear: bool | None = None
    ) -> None:
        """Set the photo switches of `station` (None leaves one as it is)."""
        self._check(station)
        if in_position is not None:
            a = self.map.station_address("IN_POSITION", station)
            if self._inputs[a] != in_position:
                self._edge_at[station] = self.clock.now()
            self._inputs[a] = in_position
        if exit_clear is not None:
            self._inputs[self.map.station_address("EXIT_CLEAR", station)] = exit_clear
        self._changed.notify()

    async def press(self, address: int, held_s: float = 1.5) -> None:
        """A button or card reader wired to spare discrete input `address` (a
        driver's check-in, devices.md's spare inputs): on for `held_s`, then off."""
        if not 0 <= address < len(self._inputs) or address % self._bits in (
            self.map.station_address("IN_POSITION", 0),
            self.map.station_address("EXIT_CLEAR", 0),
        ):
            raise ValueError(f"input {address} is not a spare input of this module")
        self._inputs[address] = True
        self._changed.notify()
        try:
            await self.clock.sleep(held_s)
        finally:
            self._inputs[address] = False
            self._changed.notify()

    def inputs(self, station: int) -> tuple[bool, bool]:
        """(IN_POSITION, EXIT_CLEAR) of `station`."""
        self._check(station)
        return (
            self._inputs[self.map.station_address("IN_POSITION", station)],
            self._inputs[self.map.station_address("EXIT_CLEAR", station)],
        )

    def free(self, station: int) -> bool:
        """Nothing in position and the exit clear."""
        in_position, exit_clear = self.inputs(station)
        return not in_position and exit_clear

    def _violation(self, station: int, kind: str, detail: str) -> None:
        self.referee.note(self.clock.now(), f"{self.name} station {station}", kind, detail)

    def entry_light(self, station: int) -> bool:
        """True: green (drive in)."""
        self._check(station)
        return self._coils[self.map.station_address("ENTRY_LIGHT", station)]

    def prompt(self, station: int) -> PromptBlock:
        self._check(station)
        return self._decode(station)

    async def wait_prompt(self, station: int, after_seq: int) -> PromptBlock:
        """The display of `station` once a block with a SEQ other than
        `after_seq` has been written (at once if that is already so)."""
        self._check(station)
        while not (self._written[station] and self._seq(station) != after_seq):
            await self._changed.wait()
        return self._decode(station)

    async def wait_entry_light(self, station: int, green: bool) -> None:
        """Return when the entry light of `station` shows `green` (True) or red."""
        self._check(station)
        while self.entry_light(station) != green:
            await self._changed.wait()

    # -- the display blocks ---------------------------------------------------

    def _offset(self, name: str) -> int:
        return self.map[name].address - self._base

    def _seq(self, station: int) -> int:
        return self._blocks[station][self._offset("SEQ")]

    def _decode(self, station: int, block: list[int] | None = None) -> PromptBlock:
        b = self._blocks[station] if block is None else block
        plate, text = self.map["PLATE"], self.map["TEXT"]
        return PromptBlock(
            code=b[self._offset("PROMPT")],
            plate=text_from_registers(
                b[self._offset("PLATE") : self._offset("PLATE") + plate.count]
            ),
            text=text_from_registers(b[self._offset("TEXT") : self._offset("TEXT") + text.count]),
            seq=b[self._offset("SEQ")],
            shown_at=self._shown_at[station],
        )

    def _locate(self, address: int) -> tuple[int, int] | None:
        """(station, offset in its block) of a holding address, or None."""
        station, off = divmod(address - self._base, self._stride)
        if address < self._base or not 0 <= station < self.n_stations or off >= self._size:
            return None
        return station, off

    def _write_holding(self, address: int, values: list[int]) -> ExcCodes | None:
        where = self._locate(address)
        if where is None or where[1] + len(values) > self._size:
            return ExcCodes.ILLEGAL_ADDRESS
        station, off = where
        new = list(self._blocks[station])
        new[off : off + len(values)] = values
        if not self.map["PROMPT"].allows(new[self._offset("PROMPT")]):
            return ExcCodes.ILLEGAL_VALUE
        old_seq = self._seq(station)
        fresh = new[self._offset("SEQ")] != old_seq
        if not fresh:
            keep = slice(self._offset("PROMPT"), self._offset("TEXT"))  # code and plate
            if new[keep] != self._blocks[station][keep]:
                self._violation(
                    station,
                    "prompt_without_seq",
                    f"prompt {new[self._offset('PROMPT')]} written without a new SEQ "
                    f"(still {old_seq}): refused",
                )
                return ExcCodes.ILLEGAL_VALUE
        elif new[self._offset("PROMPT")] == DRIVE_IN and not self.free(station):
            self._violation(
                station, "drive_in_not_free", "DRIVE_IN shown while the station is not free"
            )
        self._blocks[station] = new
        if fresh:
            self._written[station] = True
            self._shown_at[station] = self.clock.now()
        self._changed.notify()
        return None

    # -- the wire -------------------------------------------------------------

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if function_code == 4:
            return ExcCodes.ILLEGAL_ADDRESS  # the module has no input registers
        if function_code in (1, 2, 5, 15):
            bits = self._inputs if function_code == 2 else self._coils
            if set_values is not None:
                if function_code in (5, 15):
                    self._check_lights(address, [bool(v) for v in set_values])
                bits[address : address + len(set_values)] = [bool(v) for v in set_values]
                self._changed.notify()
            if function_code == 2 and self.chatter:
                bits = self._chattering(bits)
            # The runtime answers from its words: refresh them from the model.
            for w in range(len(registers) - 1):
                chunk = bits[16 * w : 16 * w + 16]
                registers[w] = sum(1 << i for i, b in enumerate(chunk) if b)
            return None
        if set_values is not None:
            return self._write_holding(address, [int(v) for v in set_values])
        for a in range(address, address + count):
            where = self._locate(a)
            assert where is not None  # the runtime refused undefined addresses
            registers[a - start_address] = self._blocks[where[0]][where[1]]
        return None

    def _chattering(self, bits: list[bool]) -> list[bool]:
        """The inputs as a chattering photo switch reads them: for `BOUNCE_S` after
        IN_POSITION changed (a vehicle half in the beam), a read may still give the
        old state (the model's own state is untouched)."""
        out = list(bits)
        now = self.clock.now()
        for s in range(self.n_stations):
            a = self.map.station_address("IN_POSITION", s)
            if now - self._edge_at[s] < BOUNCE_S and self._chatter_rng.random() < 0.4:
                out[a] = not out[a]
        return out

    def _check_lights(self, address: int, values: list[bool]) -> None:
        for s in range(self.n_stations):
            at = self.map.station_address("ENTRY_LIGHT", s) - address
            turned_green = 0 <= at < len(values) and values[at] and not self._coils[at + address]
            if turned_green and not self.free(s):
                self._violation(
                    s, "green_not_free", "entry light turned green while the station is not free"
                )

    def sim_device(self) -> SimDevice:
        """The module as a pymodbus SimDevice, for sim.modbus_server."""
        n_bits = self._bits * self.n_stations
        holding = [
            SimData(self._base + s * self._stride, count=self._size, datatype=DataType.REGISTERS)
            for s in range(self.n_stations)
        ]
        # SimDevice wants an input register block; the action refuses FC 4.
        no_inputs = [SimData(0, count=1, datatype=DataType.REGISTERS)]
        return SimDevice(
            self.unit,
            simdata=(
                [SimData(0, values=[False] * n_bits, datatype=DataType.BITS)],
                [SimData(0, values=[False] * n_bits, datatype=DataType.BITS)],
                holding,
                no_inputs,
            ),
            action=self._action,
        )
