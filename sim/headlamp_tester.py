"""Emulator of the headlamp tester (`hlt-ascii`, devices.md section 5) on a pty.

ASCII frames `STX payload ETX BCC` both ways. MEA starts the head's search
for a lamp, which takes 2 to 4 s of clock time (RES answers BUSY meanwhile,
another MEA gets E3); the result is what the lamp showed when the head found
it, and RES repeats it until the next MEA or RST. E1 when the lamp is not
there (at MEA) or the beam asked for was not on when the head got there (from
RES), E2 with no vehicle in position, E4 for RES with no measurement since
RST or power-up, E9 for a frame with a bad BCC or a command it does not
know. The lamps come from the `LampSwitch` the world placed
(`place_vehicle`); readings carry a little measurement noise. The inner
lamps of a four-lamp system (LI, RI) have no low beam: asked for it, the
head searches and finds none (E1 from RES). `search_s` sets the head's
travel (2 to 4 s, devices.md); `stuck_head` is a fault a test injects: the
head never arrives, RES answers BUSY until RST.

Referee (sim/referee.py): an MEA while the head searches (E3) or with no
vehicle (E2), a RES with no measurement (E4), a frame it could not take
(E9), an MEA for a lamp the vehicle does not have or for an inner lamp's
low beam, and (reported by the world) a vehicle sent off with the head out
(not homed by RST since its last MEA).
"""

from __future__ import annotations

import random
import zlib

from linectl.clock import Clock
from linectl.config import DeviceConfig
from linectl.drivers.framing import (
    FrameError,
    HltError,
    HltResult,
    encode_hlt,
    parse_hlt_command,
    parse_hlt_request,
)
from sim.lamps import INNER_LAMPS, LampSwitch
from sim.referee import Referee
from sim.serial_emulator import SerialEmulator

SEARCH_S = (2.0, 4.0)


class HeadlampTesterEmulator(SerialEmulator):
    def __init__(
        self,
        clock: Clock,
        *,
        seed: int = 0,
        report_low_intensity: bool = True,
        search_s: tuple[float, float] = SEARCH_S,
        name: str = "hlt-ascii",
        referee: Referee | None = None,
    ) -> None:
        super().__init__(clock, name=name, referee=referee)
        self.vehicle: LampSwitch | None = None
        self.report_low_intensity = report_low_intensity
        self.search_s = search_s
        self.stuck_head = False  # a fault: the head never arrives
        self.head_out = False  # moved out by an MEA, not homed by RST since
        self.measurements = 0  # MEA taken, for tests
        self._rng = random.Random(seed)
        self._buf = bytearray()
        self._mea: tuple[str, str, float] | None = None  # lamp, beam, found at
        self._outcome: HltResult | HltError | None = None

    @classmethod
    def for_device(
        cls, clock: Clock, cfg: DeviceConfig, referee: Referee | None = None
    ) -> HeadlampTesterEmulator:
        return cls(clock, seed=zlib.crc32(cfg.id.encode()), name=cfg.id, referee=referee)

    def place_vehicle(self, lamps: LampSwitch | None) -> None:
        self.vehicle = lamps

    @property
    def searching(self) -> bool:
        return (
            self._mea is not None
            and self._outcome is None
            and (self.stuck_head or self.clock.now() < self._mea[2])
        )

    def on_bytes(self, data: bytes) -> list[bytes]:
        self._buf += data
        out = []
        while True:
            payload, used, broken = parse_hlt_request(self._buf)
            if used == 0:
                return out
            del self._buf[:used]
            if broken:
                self.violation("bad_frame", "a frame with a bad BCC (E9)")
                out.append(encode_hlt(f"ERR,{HltError.FRAME_ERROR}"))
            elif payload is not None:
                out.append(encode_hlt(self._answer(payload)))

    def _answer(self, payload: str) -> str:
        try:
            cmd = parse_hlt_command(payload)
        except FrameError:
            self.violation("bad_frame", f"{payload!r} is no command (E9)")
            return f"ERR,{HltError.FRAME_ERROR}"
        now = self.clock.now()
        if cmd.name == "RST":
            self._mea, self._outcome = None, None
            self.head_out = False
            return "ACK"
        if cmd.name == "MEA":
            assert cmd.lamp is not None and cmd.beam is not None
            if self.searching:
                self.violation("mea_while_searching", f"{payload} while the head searches (E3)")
                return f"ERR,{HltError.BUSY}"
            if self.vehicle is None:
                self.violation("mea_no_vehicle", f"{payload} with no vehicle in position (E2)")
                return f"ERR,{HltError.NOT_IN_POSITION}"
            if self.vehicle.lamp(cmd.lamp) is None:
                self.violation("mea_no_such_lamp", f"{payload}: the vehicle has no lamp {cmd.lamp}")
                return f"ERR,{HltError.NO_LAMP}"
            if cmd.beam == "L" and cmd.lamp in INNER_LAMPS:
                self.violation(
                    "mea_inner_low_beam",
                    f"{payload}: inner lamp {cmd.lamp} of a four-lamp system has no low beam",
                )
            self.measurements += 1
            self.head_out = True
            self._mea = (cmd.lamp, cmd.beam, now + self._rng.uniform(*self.search_s))
            self._outcome = None
            return "ACK"
        # RES
        if self._mea is None:
            self.violation("res_no_measurement", "RES with no measurement since RST (E4)")
            return f"ERR,{HltError.NO_MEASUREMENT}"
        if self._outcome is None:
            if now < self._mea[2] or self.stuck_head:
                return "BUSY"
            self._outcome = self._found(*self._mea)
        if isinstance(self._outcome, HltError):
            return f"ERR,{self._outcome}"
        return self._outcome.payload()

    def _found(self, lamp_name: str, beam: str, at: float) -> HltResult | HltError:
        v = self.vehicle
        if v is None:
            return HltError.NOT_IN_POSITION
        lamp = v.lamp(lamp_name)
        b = lamp.beam(beam) if lamp is not None else None
        if lamp is None or b is None or v.beam_at(at) != beam:
            return HltError.NO_LAMP
        r = self._rng
        intensity = max(0, round(b.intensity_cd * r.gauss(1.0, 0.01)))
        if beam == "L" and not self.report_low_intensity:
            intensity = 0
        return HltResult(
            lamp_name,
            beam,
            intensity,
            round(b.h_mm + r.gauss(0.0, 3.0)),
            round(b.v_mm + r.gauss(0.0, 3.0)),
            round(lamp.height_mm + r.gauss(0.0, 1.5)),
        )


__all__ = ["HeadlampTesterEmulator"]
