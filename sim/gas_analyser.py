"""Emulator of the petrol exhaust gas analyser (`nha503`, devices.md section 3) on a pty.

One command byte in, the reply out, byte for byte: 0x81 gives the 21-byte
reading, the other commands 06 (accepted), 05 (busy: a zero, leak check or
back-flush still runs) or 15 (refused during warm-up; any unknown byte). The
analyser warms up after power-on (`start()`), zeroes, checks for leaks and
back-flushes for a while of clock time (8, 12 and 20 s unless told), with
its STATUS bits telling so. Values refresh once a second of clock time, at
the whole second: every read within one second gets the values, STATUS
included, as they were at its start. So a reading taken just after a
command was accepted still says "ready": the line computer that trusts it
has not waited for the operation at all. What the probe sees comes from the
`Engine` of the vehicle the world placed at the station (`place_vehicle`);
with the probe out, or no vehicle, the bench sees air (lambda 0: not
computable). Tests inject faults: `leak_fault` (the next leak check fails),
`low_flow`, `stuck_busy` (a running operation never ends).

Referee (sim/referee.py): a command answered busy (05) or refused (15) is a
violation; the world reports a probe inserted while an operation runs
(`operation()`).
"""

from __future__ import annotations

import math
import random
import zlib

from linectl.clock import Clock
from linectl.config import DeviceConfig
from linectl.drivers.framing import (
    NHA_BACK_FLUSH,
    NHA_COMMANDS,
    NHA_LEAK_CHECK,
    NHA_PUMP_OFF,
    NHA_PUMP_ON,
    NHA_READ,
    NHA_ZERO,
    GasFrame,
    NhaReply,
    NhaStatus,
    encode_gas_frame,
)
from sim.exhaust import AIR, Engine
from sim.referee import Referee
from sim.serial_emulator import SerialEmulator

FLOW_L_MIN = 12.0
LOW_FLOW_L_MIN = 3.5
AMBIENT_C = 20.0
COMMAND_NAMES = {
    NHA_ZERO: "zero",
    NHA_LEAK_CHECK: "leak check",
    NHA_BACK_FLUSH: "back-flush",
    NHA_PUMP_OFF: "pump off",
    NHA_PUMP_ON: "pump on",
}


class GasAnalyserEmulator(SerialEmulator):
    def __init__(
        self,
        clock: Clock,
        *,
        warmup_s: float = 120.0,
        zero_s: float = 8.0,
        leak_check_s: float = 12.0,
        back_flush_s: float = 20.0,
        seed: int = 0,
        name: str = "nha503",
        referee: Referee | None = None,
    ) -> None:
        super().__init__(clock, name=name, referee=referee)
        self.warmup_s = warmup_s
        self.durations = {
            NHA_ZERO: zero_s,
            NHA_LEAK_CHECK: leak_check_s,
            NHA_BACK_FLUSH: back_flush_s,
        }
        self.engine: Engine | None = None
        self.pump_on = True
        self.leak_fault = False
        self.low_flow = False
        self.leak_failed = False
        self.stuck_busy = False  # a fault: the running operation never ends
        self.commands: list[int] = []  # every command byte taken, for tests
        self._powered_at = clock.now()
        self._op: tuple[int, float, float] | None = None  # (command, from, until)
        self._rng = random.Random(seed)
        self._second: int | None = None
        self._frame = b""

    @classmethod
    def for_device(
        cls, clock: Clock, cfg: DeviceConfig, referee: Referee | None = None
    ) -> GasAnalyserEmulator:
        return cls(clock, seed=zlib.crc32(cfg.id.encode()), name=cfg.id, referee=referee)

    async def start(self, device_path: str | None = None) -> str:
        self._powered_at = self.clock.now()
        return await super().start(device_path)

    def place_vehicle(self, engine: Engine | None) -> None:
        self.engine = engine

    def stay_busy(self, on: bool = True) -> None:
        """A fault (sim/faults.py): the running operation never ends, and with none
        running a back-flush starts by itself and never ends either."""
        self.stuck_busy = on
        now = self.clock.now()
        if on and self._running(now) is None:
            self._op = (NHA_BACK_FLUSH, now, now + self.durations[NHA_BACK_FLUSH])

    # --- state ---------------------------------------------------------------------

    def _running(self, t: float) -> int | None:
        if self._op is None:
            return None
        cmd, since, until = self._op
        if t < since:
            return None  # a look back at a moment before it began (a refresh)
        if t < until or self.stuck_busy:
            return cmd
        self._op = None
        if cmd == NHA_LEAK_CHECK:
            self.leak_failed = self.leak_fault
        return None

    def operation(self, t: float | None = None) -> str | None:
        """The zero, leak check or back-flush running at `t` (now), or None."""
        op = self._running(self.clock.now() if t is None else t)
        return COMMAND_NAMES.get(op) if op is not None else None

    def status(self, t: float | None = None) -> NhaStatus:
        t = self.clock.now() if t is None else t
        s = NhaStatus.READY
        if t < self._powered_at + self.warmup_s:
            s |= NhaStatus.WARMING_UP
        op = self._running(t)
        if op == NHA_ZERO:
            s |= NhaStatus.ZEROING
        elif op in (NHA_LEAK_CHECK, NHA_BACK_FLUSH):
            s |= NhaStatus.LEAK_CHECK_OR_BACK_FLUSH
        if self.pump_on and self.low_flow:
            s |= NhaStatus.LOW_FLOW
        if self.leak_failed:
            s |= NhaStatus.LEAK_CHECK_FAILED
        return s

    # --- protocol ------------------------------------------------------------------

    def on_bytes(self, data: bytes) -> list[bytes]:
        return [self._answer(b) for b in data]

    def _answer(self, b: int) -> bytes:
        t = self.clock.now()
        if b == NHA_READ:
            return self._reading(t)
        if b not in NHA_COMMANDS:
            self.violation("unknown_command", f"unknown command byte {b:02X}: refused (15)")
            return bytes([NhaReply.REFUSED])
        what = COMMAND_NAMES[b]
        if t < self._powered_at + self.warmup_s:
            self.violation("command_refused", f"{what} during warm-up: refused (15)")
            return bytes([NhaReply.REFUSED])
        if (op := self._running(t)) is not None:
            self.violation(
                "command_busy", f"{what} while the {COMMAND_NAMES[op]} still runs: busy (05)"
            )
            return bytes([NhaReply.BUSY])
        self.commands.append(b)
        if b in self.durations:
            # The STATUS of this second's reading stays as it was (refreshed at the
            # second): the operation shows from the next refresh on.
            self._op = (b, t, t + self.durations[b])
            self.pump_on = True  # zero and leak check need the pump; back-flush blows through it
        elif b == NHA_PUMP_OFF:
            self.pump_on = False
        elif b == NHA_PUMP_ON:
            self.pump_on = True
        return bytes([NhaReply.ACCEPTED])

    def _reading(self, t: float) -> bytes:
        second = math.floor(t)
        if second == self._second:
            return self._frame
        status = self.status(float(second))
        busy = status & (NhaStatus.ZEROING | NhaStatus.LEAK_CHECK_OR_BACK_FLUSH)
        eng = self.engine
        gas = AIR if eng is None or busy or not self.pump_on else eng.gases(second)
        r = self._rng
        flow = 0.0 if not self.pump_on else (LOW_FLOW_L_MIN if self.low_flow else FLOW_L_MIN)
        frame = GasFrame(
            hc_ppm=round(max(0.0, gas.hc_ppm * r.gauss(1.0, 0.03) + r.gauss(0.0, 0.7))),
            co_pct=max(0.0, gas.co_pct * r.gauss(1.0, 0.03) + r.gauss(0.0, 0.003)),
            co2_pct=max(0.0, gas.co2_pct * r.gauss(1.0, 0.005)),
            o2_pct=max(0.0, gas.o2_pct * r.gauss(1.0, 0.01)),
            no_ppm=round(max(0.0, gas.no_ppm * r.gauss(1.0, 0.03))),
            rpm=round(eng.rpm(second)) if eng is not None else 0,
            oil_temp_c=eng.traits.oil_temp_c if eng is not None else AMBIENT_C,
            flow_l_min=flow + r.gauss(0.0, 0.1) if flow else 0.0,
            status=status,
            lambda_=gas.lambda_ * r.gauss(1.0, 0.002) if gas.lambda_ else 0.0,
        )
        self._second, self._frame = second, encode_gas_frame(frame)
        return self._frame


__all__ = ["GasAnalyserEmulator"]
