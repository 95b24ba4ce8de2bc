"""Driver of the roller brake tester with axle scale (`model = "rbt-modbus"`).

Speaks devices.md section 1 through a `ModbusBus`, with the addresses of
maps/rbt-modbus.toml: status, commands, test parameters, the vehicle tag,
and the `RingReader` that streams a brake run's samples out of the
controller's 1024-sample ring while the run goes on, detecting (never
hiding) samples overwritten before they were read, and counting each
overrun in the device's statistics.

Units are those of the wire: loads in kg, forces in 10 N units.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeVar

import numpy as np

from linectl.config import DeviceConfig, RtuTransport, TcpTransport
from linectl.drivers.errors import DeviceProtocolError, RingOverrun
from linectl.drivers.health import DeviceHealth
from linectl.drivers.modbus import ModbusBus
from linectl.drivers.regmap import load_map, text_to_registers, u32_from_registers

log = logging.getLogger(__name__)
MAP = load_map("rbt-modbus")


class RbtState(IntEnum):
    IDLE = 0
    TARING = 1
    WEIGHING = 2
    WEIGHED = 3
    RUNNING = 4
    DONE = 5
    FAULT = 9


class RbtCommand(IntEnum):
    NONE = 0
    TARE = 1
    WEIGH = 2
    BRAKE = 3
    STOP = 4
    LIFT_UP = 5
    LIFT_DOWN = 6


class StopReason(IntEnum):
    NONE = 0  # no run has ended since power-up or the last BRAKE
    LEFT_SLIP = 1
    RIGHT_SLIP = 2
    BOTH_SLIP = 3
    TIME_LIMIT = 4  # also the normal end of a run
    STOP_COMMAND = 5


class FaultCode(IntEnum):
    NONE = 0
    LEFT_LOAD_CELL = 1
    RIGHT_LOAD_CELL = 2
    LEFT_FORCE_SENSOR = 3
    RIGHT_FORCE_SENSOR = 4
    MOTOR_OVERLOAD = 5
    NO_AXLE = 6  # command refused: no axle in position


@dataclass(frozen=True)
class RbtStatus:
    """One consistent look at the controller (one input-register read and one
    discrete-input read). Loads in kg (valid from WEIGHED on), forces in 10 N
    units (0 outside a run)."""

    state: RbtState
    fault_code: FaultCode
    left_load_kg: int
    right_load_kg: int
    left_force: int
    right_force: int
    stop_reason: StopReason
    sample_count: int
    in_position: bool
    slip_left: bool
    slip_right: bool
    rollers_running: bool
    lift_up: bool


E = TypeVar("E", bound=IntEnum)


def _enum(kind: type[E], name: str, value: int) -> E:
    try:
        return kind(value)
    except ValueError:
        raise DeviceProtocolError(f"{name} {value} is not defined by devices.md") from None


class RbtModbus:
    """One brake controller on a bus."""

    def __init__(self, cfg: DeviceConfig, bus: ModbusBus) -> None:
        if cfg.model != "rbt-modbus":
            raise ValueError(f"device {cfg.id} is a {cfg.model}, not an rbt-modbus")
        self.cfg = cfg
        self.id = cfg.id
        self.unit = cfg.unit
        self.bus = bus
        self.health = DeviceHealth(cfg.id, log)
        bus.attach(cfg.unit, self.health)

    @classmethod
    def from_config(cls, cfg: DeviceConfig) -> RbtModbus:
        """The driver on the shared bus of its transport."""
        assert isinstance(cfg.transport, TcpTransport | RtuTransport)
        return cls(cfg, ModbusBus.for_transport(cfg.transport, cfg.timeout_s))

    async def status(self) -> RbtStatus:
        first = MAP["STATE"].address
        end = MAP["SAMPLE_COUNT"].end
        regs = await self.bus.read_input_registers(self.unit, first, end - first)

        def reg(name: str) -> int:
            return regs[MAP[name].address - first]

        di0 = MAP["IN_POSITION"].address
        di_end = MAP.span("discrete_inputs")[1]  # type: ignore[index]
        bits = await self.bus.read_discrete_inputs(self.unit, di0, di_end - di0)

        def bit(name: str) -> bool:
            return bits[MAP[name].address - di0]

        count_at = MAP["SAMPLE_COUNT"].address - first
        return RbtStatus(
            state=_enum(RbtState, "STATE", reg("STATE")),
            fault_code=_enum(FaultCode, "FAULT_CODE", reg("FAULT_CODE")),
            left_load_kg=reg("LEFT_LOAD"),
            right_load_kg=reg("RIGHT_LOAD"),
            left_force=reg("LEFT_FORCE"),
            right_force=reg("RIGHT_FORCE"),
            stop_reason=_enum(StopReason, "STOP_REASON", reg("STOP_REASON")),
            sample_count=u32_from_registers(regs[count_at : count_at + 2]),
            in_position=bit("IN_POSITION"),
            slip_left=bit("SLIP_LEFT"),
            slip_right=bit("SLIP_RIGHT"),
            rollers_running=bit("ROLLERS_RUNNING"),
            lift_up=bit("LIFT_UP"),
        )

    async def lift_is_up(self) -> bool:
        """Input 4 alone (one request): the lift has arrived at its top. It changes
        only when the lift arrives at an end, so after LIFT_DOWN it stays 1
        until the lift is down."""
        di0 = MAP["IN_POSITION"].address
        di_end = MAP.span("discrete_inputs")[1]  # type: ignore[index]
        bits = await self.bus.read_discrete_inputs(self.unit, di0, di_end - di0)
        return bits[MAP["LIFT_UP"].address - di0]

    async def command(self, cmd: RbtCommand) -> None:
        await self.bus.write_register(self.unit, MAP["COMMAND"].address, int(RbtCommand(cmd)))

    async def configure(self, sample_period_ms: int = 10, max_test_ms: int = 8000) -> None:
        """Sampling period and run time limit, in one write."""
        period, limit = MAP["SAMPLE_PERIOD_MS"], MAP["MAX_TEST_MS"]
        for f, v in ((period, sample_period_ms), (limit, max_test_ms)):
            if not f.allows(v):
                raise ValueError(f"{f.name} must be {f.describe_range()}, got {v}")
        assert limit.address == period.address + 1
        await self.bus.write_registers(self.unit, period.address, [sample_period_ms, max_test_ms])

    async def set_test_kind(self, parking: bool) -> None:
        """Service (False) or parking (True) brake; write it before BRAKE."""
        await self.bus.write_register(self.unit, MAP["TEST_KIND"].address, int(parking))

    async def set_vehicle_tag(self, plate: str) -> None:
        """The plate on the station, UTF-8 in 20 bytes, cut between characters."""
        f = MAP["VEHICLE_TAG"]
        await self.bus.write_registers(self.unit, f.address, text_to_registers(plate, f.count))

    def ring_reader(self) -> RingReader:
        return RingReader(self)


class RingReader:
    """Reads a run's samples out of the ring as they come.

    Call `reset()` right after writing BRAKE, then `poll()` as often as
    needed (at 100 Hz, at least every 10 s; every 0.1..0.5 s is usual). A
    poll that fails with a timeout leaves the reader as it was: poll again.
    """

    def __init__(self, rbt: RbtModbus) -> None:
        self._rbt = rbt
        ring = MAP["RING"]
        assert ring.slots and ring.record == 2
        self.slots = ring.slots
        self._base = ring.address
        self._per_read = MAP.limits["max_read_registers"] // ring.record
        self._chunks: list[np.ndarray] = []
        self.count = 0  # samples read so far: the index of the next one

    def reset(self) -> None:
        """Forget what was read: the next sample is sample 0 of a new run."""
        self._chunks = []
        self.count = 0

    async def _sample_count(self) -> int:
        f = MAP["SAMPLE_COUNT"]
        return u32_from_registers(
            await self._rbt.bus.read_input_registers(self._rbt.unit, f.address, 2)
        )

    async def poll(self) -> int:
        """Read every sample not read yet; returns how many were new.

        Raises RingOverrun if more than a ring's worth was unread, or if the
        controller may have overwritten samples while they were being read.
        """
        first = self.count
        count = await self._sample_count()
        if count < first:
            raise DeviceProtocolError(
                f"{self._rbt.id}: SAMPLE_COUNT went back from {first} to {count} "
                "(a BRAKE not followed by reset(), or a controller restart)"
            )
        if count - first > self.slots:
            self._rbt.health.stats.ring_overruns += 1
            raise RingOverrun(count - first - self.slots, first, count)
        if count == first:
            return 0
        out = np.empty((count - first, 2), dtype=np.int32)
        i = first
        while i < count:
            slot = i % self.slots
            n = min(self._per_read, count - i, self.slots - slot)  # split at the wrap
            regs = await self._rbt.bus.read_input_registers(
                self._rbt.unit, self._base + 2 * slot, 2 * n
            )
            out[i - first : i - first + n] = np.asarray(regs, dtype=np.int32).reshape(n, 2)
            i += n
        after = await self._sample_count()
        if after < count:
            raise DeviceProtocolError(
                f"{self._rbt.id}: SAMPLE_COUNT went back from {count} to {after} during a read"
            )
        if after - first > self.slots:
            self._rbt.health.stats.ring_overruns += 1
            raise RingOverrun(after - first - self.slots, first, after)
        self._chunks.append(out)
        self.count = count
        return count - first

    def samples(self) -> np.ndarray:
        """Every sample read since reset(): shape (n, 2), (left, right) in 10 N units."""
        if not self._chunks:
            return np.empty((0, 2), dtype=np.int32)
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0].copy()
