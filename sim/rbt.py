"""Emulator of the roller brake tester with axle scale (devices.md section 1).

`BrakeTesterEmulator` answers every register and discrete input of the
`rbt-modbus` map as the controller does: the state machine of TARE, WEIGH,
BRAKE, STOP and the lift, the 1024-sample ring, slip latches, FAULT 6 for a
command with no axle, and exceptions 02/03 for undefined addresses and
out-of-range values. What stands on the rollers comes from the world as an
`AxleOnRollers`.

Time comes only from the Clock. The model is advanced lazily to
`clock.now()` on every request and every call from the world, taking each
sample at its own clock time (sample i of a run at BRAKE + i * period), so
however requests fall, the ring holds exactly the samples that are due and
`AxleOnRollers.sample()` is asked once per sample, in order.

Choices where devices.md is silent (a real controller's behaviour):
- SAMPLE_PERIOD_MS and MAX_TEST_MS are latched at BRAKE; writing them during
  a run changes the next run, not this one.
- One FC 16 write covering parameters and COMMAND applies the parameters
  first, then the command.
- TARE takes 1 s (TARING, then IDLE); WEIGH takes 1.5 s. STOP outside a run
  aborts taring or weighing (IDLE).
- The lift (sim/lift.py) moves only on LIFT_UP/LIFT_DOWN and takes
  `lift_travel_s` (1 s unless told) from one end to the other; input 4
  changes only when it arrives. Its power-up position is a constructor
  argument (down unless told). `stick_lift()` is a fault a test injects: the
  lift stops where it is and commands no longer move it.
- Part of the axle rests on a lift that is not down: a WEIGH started with
  the lift not down (or the lift moving during it) reads only
  `1 - ON_LIFT_SHARE` of the load, and so do a brake run's forces.

What the controller tolerates but a line computer must not do is reported to
the `Referee` (sim/referee.py): a WEIGH or BRAKE with the lift not down, an
axle driven onto or off the rollers with the lift not up, a command ignored
while RUNNING, a command refused (FAULT 6), an APPLY prompt shown earlier
than 1.5 s after BRAKE (the world reports that one, `apply_shown`).
- The axle leaving during WEIGHING or RUNNING ends it with FAULT 6.
- A sensor fault reads FAULT with its code as soon as it occurs; while the
  sensor stays broken TARE, WEIGH and BRAKE are refused (state stays FAULT);
  once cleared, the next valid command clears the FAULT as for code 6.
- The live forces during a run are those of the latest sample.
"""

from __future__ import annotations

import math
from typing import Protocol

from pymodbus.constants import ExcCodes
from pymodbus.simulator import DataType, SimData, SimDevice

from linectl.clock import Clock
from linectl.drivers.regmap import Field, load_map, text_from_registers, u32_to_registers
from sim.lift import Lift
from sim.referee import Referee

# devices.md section 1, written out here so the emulator does not borrow the
# driver's enums (a shared mistake would then pass every test).
IDLE, TARING, WEIGHING, WEIGHED, RUNNING, DONE, FAULT = 0, 1, 2, 3, 4, 5, 9
CMD_NONE, CMD_TARE, CMD_WEIGH, CMD_BRAKE, CMD_STOP, CMD_LIFT_UP, CMD_LIFT_DOWN = range(7)
STOP_LEFT_SLIP, STOP_RIGHT_SLIP, STOP_BOTH_SLIP, STOP_TIME_LIMIT, STOP_COMMAND = 1, 2, 3, 4, 5
FAULT_NO_AXLE = 6
_SLIP_REASON = {
    (True, False): STOP_LEFT_SLIP,
    (False, True): STOP_RIGHT_SLIP,
    (True, True): STOP_BOTH_SLIP,
}

TARE_S = 1.0
WEIGH_S = 1.5
LIFT_TRAVEL_S = 1.0  # devices.md: about 1 s (up to 3 s)
ON_LIFT_SHARE = 0.4  # of the axle's weight a lift that is not down carries
APPLY_NOT_BEFORE_S = 1.5  # devices.md: APPLY no earlier than 1.5 s after BRAKE
COMMAND_NAMES = {1: "TARE", 2: "WEIGH", 3: "BRAKE", 4: "STOP", 5: "LIFT_UP", 6: "LIFT_DOWN"}


class AxleOnRollers(Protocol):
    left_load_kg: float
    right_load_kg: float

    def sample(self, t: float) -> tuple[float, float, bool, bool]:
        """Left and right brake force (N) at clock time t (clock.now() scale,
        absolute), and whether each wheel slips at that moment."""
        ...


def force_units(newton: float) -> int:
    """A force in N as the controller reports it: 10 N units, rounded, 0..65535."""
    return min(0xFFFF, max(0, round(newton / 10.0)))


def _u16(value: float) -> int:
    return min(0xFFFF, max(0, round(value)))


class BrakeTesterEmulator:
    """One brake controller at Modbus unit `unit`."""

    def __init__(
        self,
        clock: Clock,
        unit: int = 1,
        *,
        name: str = "rbt",
        referee: Referee | None = None,
        lift_travel_s: float = LIFT_TRAVEL_S,
        lift_up: bool = False,
    ) -> None:
        self.clock = clock
        self.unit = unit
        self.name = name
        self.referee = referee or Referee()
        self.lift = Lift(lift_travel_s, up=lift_up)
        self.map = m = load_map("rbt-modbus")
        self._t = clock.now()
        self._axle: AxleOnRollers | None = None
        self._state = IDLE
        self._fault = 0
        self._sensor_fault = 0
        self._loads = (0, 0)
        self._live = (0, 0)
        self._stop_reason = 0
        self._slip = [False, False]
        self._rollers = False
        self._weigh_on_lift = False  # the current weighing saw the lift not down
        self._run_on_lift = False
        self.run_started_at: float | None = None  # clock time of the last BRAKE taken
        self._run_ended_at: float | None = None
        self._command = CMD_NONE
        self._holding: dict[str, int] = {
            f.name: f.default for f in m.table("holding_registers") if f.type == "u16"
        }
        self._tag = [0] * m["VEHICLE_TAG"].count
        self._ring = [0] * m["RING"].count
        self._slots = m["RING"].slots or 0
        self._count = 0
        self._phase_end = 0.0  # end of TARING / WEIGHING
        self._run_t0 = 0.0
        self._run_period_ms = self._holding["SAMPLE_PERIOD_MS"]  # latched at BRAKE
        self._run_max_ms = self._holding["MAX_TEST_MS"]

    # -- the world's side -----------------------------------------------------

    def place_axle(self, axle: AxleOnRollers | None) -> None:
        """Put an axle on the rollers (None: the rollers are empty)."""
        self._advance()
        if axle is self._axle:
            return
        if not self.lift_is_up:
            what = "onto" if axle is not None else "off"
            self._violation(
                "drive_lift_not_up", f"an axle drove {what} the rollers with the lift not up"
            )
        had = self._axle is not None
        self._axle = axle
        if had:
            # The slip latches belong to the axle that was tested.
            self._slip = [False, False]
            if self._state in (WEIGHING, RUNNING):
                self._end_run()
                self._set_fault(FAULT_NO_AXLE)

    def inject_fault(self, code: int) -> None:
        """A sensor fault (1..5) appears now; during a run it ends the run."""
        if not 1 <= code <= 5:
            raise ValueError(f"sensor fault codes are 1..5, got {code}")
        self._advance()
        self._sensor_fault = code
        self._end_run()
        self._set_fault(code)

    def stick_lift(self, stuck: bool = True) -> None:
        """The lift jams where it is now (True) or works again (False)."""
        self._advance()
        self.lift.stuck = stuck

    @property
    def lift_travel_s(self) -> float:
        return self.lift.travel_s

    @lift_travel_s.setter
    def lift_travel_s(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"lift travel must take some time, got {seconds}")
        self._advance()
        self.lift.travel_s = seconds

    def clear_fault(self) -> None:
        """The sensor works again; FAULT stays until the next valid command."""
        self._advance()
        self._sensor_fault = 0

    @property
    def state(self) -> int:
        self._advance()
        return self._state

    @property
    def fault_code(self) -> int:
        self._advance()
        return self._fault

    @property
    def command(self) -> int:
        """The last value written to COMMAND."""
        return self._command

    @property
    def vehicle_tag(self) -> str:
        return text_from_registers(self._tag)

    @property
    def test_kind(self) -> int:
        return self._holding["TEST_KIND"]

    @property
    def sample_period_ms(self) -> int:
        return self._holding["SAMPLE_PERIOD_MS"]

    @property
    def max_test_ms(self) -> int:
        return self._holding["MAX_TEST_MS"]

    @property
    def lift_up(self) -> bool:
        """Input 4 as the controller reports it (latched at the last end reached)."""
        self._advance()
        return self.lift.input

    @property
    def lift_is_up(self) -> bool:
        """The lift stands at its top: a vehicle may drive on or off."""
        self._advance()
        return self.lift.is_up

    @property
    def lift_is_down(self) -> bool:
        """The lift stands at its bottom: the axle rests on the rollers alone."""
        self._advance()
        return self.lift.is_down

    def apply_shown(self, at: float, parking: bool) -> None:
        """The world saw an APPLY prompt shown at clock time `at` (a referee's check)."""
        what = "APPLY_PARKING_BRAKE" if parking else "APPLY_BRAKE"
        self._advance()
        start, end = self.run_started_at, self._run_ended_at
        if start is None or at < start or (end is not None and end >= start and at > end):
            self._violation("apply_without_run", f"{what} shown with no brake run going")
        elif at - self.run_started_at < APPLY_NOT_BEFORE_S:
            self._violation(
                "apply_too_early",
                f"{what} shown {at - self.run_started_at:.2f} s after BRAKE "
                f"(no earlier than {APPLY_NOT_BEFORE_S} s)",
            )

    def _violation(self, kind: str, detail: str) -> None:
        self.referee.note(self.clock.now(), self.name, kind, detail)

    @property
    def rollers_running(self) -> bool:
        self._advance()
        return self._rollers

    @property
    def in_position(self) -> bool:
        return self._axle is not None

    @property
    def sample_count(self) -> int:
        self._advance()
        return self._count

    @property
    def stop_reason(self) -> int:
        self._advance()
        return self._stop_reason

    # -- the model ------------------------------------------------------------

    def _advance(self) -> None:
        """Bring the model to clock.now(): finish timed phases, take due samples."""
        now = max(self._t, self.clock.now())
        self.lift.advance(now - self._t)
        if self._state == TARING and now >= self._phase_end:
            self._state = IDLE
        if self._state == WEIGHING and now >= self._phase_end:
            axle = self._axle
            assert axle is not None  # leaving during WEIGHING faults at once
            on_rollers = 1.0 - ON_LIFT_SHARE if self._weigh_on_lift else 1.0
            self._loads = (
                _u16(axle.left_load_kg * on_rollers),
                _u16(axle.right_load_kg * on_rollers),
            )
            self._state = WEIGHED
        if self._state == RUNNING:
            self._run_until(now)
        self._t = now

    def _run_until(self, now: float) -> None:
        axle = self._axle
        assert axle is not None
        n_max = math.ceil(self._run_max_ms / self._run_period_ms)
        while self._state == RUNNING:
            i = self._count
            if i >= n_max:
                if now >= self._run_t0 + self._run_max_ms / 1000.0:
                    self._finish(STOP_TIME_LIMIT, self._run_t0 + self._run_max_ms / 1000.0)
                return
            t_i = self._run_t0 + i * self._run_period_ms / 1000.0
            if t_i > now:
                return
            left, right, slip_l, slip_r = axle.sample(t_i)
            if self._run_on_lift:
                left, right = left * (1.0 - ON_LIFT_SHARE), right * (1.0 - ON_LIFT_SHARE)
            slot = 2 * (i % self._slots)
            self._live = (force_units(left), force_units(right))
            self._ring[slot], self._ring[slot + 1] = self._live
            self._count = i + 1
            if slip_l or slip_r:
                self._slip = [bool(slip_l), bool(slip_r)]
                self._finish(_SLIP_REASON[bool(slip_l), bool(slip_r)], t_i)

    def _finish(self, reason: int, at: float) -> None:
        self._run_ended_at = at
        self._state = DONE
        self._stop_reason = reason
        self._rollers = False
        self._live = (0, 0)

    def _end_run(self) -> None:
        if self._state == RUNNING:
            self._run_ended_at = self._t
        self._rollers = False
        self._live = (0, 0)

    def _set_fault(self, code: int) -> None:
        self._state = FAULT
        self._fault = code

    def _apply_command(self, cmd: int) -> None:
        self._command = cmd
        now = self._t
        if cmd == CMD_NONE:
            return
        if self._state == RUNNING:
            if cmd == CMD_STOP:
                self._finish(STOP_COMMAND, self._t)
            else:
                self._violation(
                    "command_ignored", f"{COMMAND_NAMES.get(cmd, cmd)} ignored while RUNNING"
                )
            return
        moved = cmd in (CMD_LIFT_UP, CMD_LIFT_DOWN) and self.lift.command(up=cmd == CMD_LIFT_UP)
        if moved and self._state == WEIGHING:
            self._weigh_on_lift = True
        if self._sensor_fault:
            self._set_fault(self._sensor_fault)
            return
        if cmd in (CMD_WEIGH, CMD_BRAKE) and self._axle is None:
            self._violation(
                "command_refused", f"{COMMAND_NAMES[cmd]} refused: no axle in position (FAULT 6)"
            )
            self._set_fault(FAULT_NO_AXLE)
            return
        if cmd in (CMD_WEIGH, CMD_BRAKE) and not self.lift.is_down:
            self._violation(
                "lift_not_down",
                f"{COMMAND_NAMES[cmd]} with the lift not down ({self.lift.describe()})",
            )
        self._fault = 0
        if self._state == FAULT:
            self._state = IDLE
        if cmd == CMD_TARE:
            self._state, self._phase_end, self._loads = TARING, now + TARE_S, (0, 0)
        elif cmd == CMD_WEIGH:
            self._state, self._phase_end, self._loads = WEIGHING, now + WEIGH_S, (0, 0)
            self._weigh_on_lift = not self.lift.is_down or self.lift.moving
        elif cmd == CMD_BRAKE:
            self._state = RUNNING
            self._run_on_lift = not self.lift.is_down or self.lift.moving
            self.run_started_at = now
            self._count = 0
            self._stop_reason = 0
            self._slip = [False, False]
            self._rollers = True
            self._live = (0, 0)
            self._run_t0 = now
            self._run_period_ms = self._holding["SAMPLE_PERIOD_MS"]
            self._run_max_ms = self._holding["MAX_TEST_MS"]
        elif cmd == CMD_STOP and self._state in (TARING, WEIGHING):
            self._state = IDLE

    # -- the wire -------------------------------------------------------------

    def _input_register(self, address: int) -> int:
        f = self.map.at("input_registers", address)
        assert f is not None  # the runtime refused undefined addresses
        if f.name == "RING":
            return self._ring[address - f.address]
        if f.name == "SAMPLE_COUNT":
            return u32_to_registers(self._count & 0xFFFFFFFF)[address - f.address]
        return {
            "STATE": self._state,
            "FAULT_CODE": self._fault,
            "LEFT_LOAD": self._loads[0],
            "RIGHT_LOAD": self._loads[1],
            "LEFT_FORCE": self._live[0],
            "RIGHT_FORCE": self._live[1],
            "STOP_REASON": self._stop_reason,
        }[f.name]

    def _holding_register(self, address: int) -> int:
        f = self.map.at("holding_registers", address)
        assert f is not None
        if f.name == "VEHICLE_TAG":
            return self._tag[address - f.address]
        if f.name == "COMMAND":
            return self._command
        return self._holding[f.name]

    def _discrete_inputs(self) -> list[bool]:
        return [
            self._axle is not None,
            self._slip[0],
            self._slip[1],
            self._rollers,
            self.lift.input,
        ]

    def _write_holding(self, address: int, values: list[int]) -> ExcCodes | None:
        fields: list[tuple[Field, int, int]] = []
        for i, v in enumerate(values):
            f = self.map.at("holding_registers", address + i)
            if f is None:
                return ExcCodes.ILLEGAL_ADDRESS
            if f.type == "u16" and not f.allows(v):
                return ExcCodes.ILLEGAL_VALUE
            fields.append((f, address + i, v))
        command: int | None = None
        for f, addr, v in fields:
            if f.name == "COMMAND":
                command = v
            elif f.name == "VEHICLE_TAG":
                self._tag[addr - f.address] = v
            else:
                self._holding[f.name] = v
        if command is not None:
            self._apply_command(command)
        return None

    async def _action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        self._advance()
        if function_code in (1, 5, 15):
            return ExcCodes.ILLEGAL_ADDRESS  # the controller has no coils
        if function_code == 2:
            word = sum(1 << i for i, b in enumerate(self._discrete_inputs()) if b)
            registers[0] = word  # inputs 0..4 share the block's first word
            return None
        if function_code == 4:
            for a in range(address, address + count):
                registers[a - start_address] = self._input_register(a)
            return None
        if set_values is not None:
            return self._write_holding(address, [int(v) for v in set_values])
        for a in range(address, address + count):
            registers[a - start_address] = self._holding_register(a)
        return None

    def sim_device(self) -> SimDevice:
        """The controller as a pymodbus SimDevice, for sim.modbus_server."""

        def regs(table: str) -> list[SimData]:
            return [
                SimData(f.address, count=f.count, datatype=DataType.REGISTERS)
                for f in self.map.table(table)  # type: ignore[arg-type]
            ]

        inputs = [
            SimData(f.address, values=[False] * f.count, datatype=DataType.BITS)
            for f in self.map.table("discrete_inputs")
        ]
        # SimDevice wants a bit block for coils too; the action refuses them all.
        no_coils = [SimData(0, values=[False] * 16, datatype=DataType.BITS)]
        return SimDevice(
            self.unit,
            simdata=(no_coils, inputs, regs("holding_registers"), regs("input_registers")),
            action=self._action,
        )
