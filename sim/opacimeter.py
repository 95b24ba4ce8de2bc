"""Emulator of the diesel smoke opacimeter (`nht6`, devices.md section 4) on a pty.

Frames `cmd CS` in; A5 answers the live opacity N, coefficient K, rpm and
oil temperature, A6 the peaks of N and K since the last A7 (rpm and oil
temperature live), A7 and A4 are echoed. A frame with a bad CS or an
unknown command gets no reply. The smoke chamber is sampled every 50 ms of
clock time, lazily up to the moment of each request, so the peaks hold the
true maxima of a free acceleration whatever the host's polling rate. What
the chamber sees comes from the `Engine` the world placed (`place_vehicle`).

What devices.md leaves to the instrument, as a real one behaves:
- The optics drift: soot settles on the windows (in proportion to the smoke
  that passed) and the light source ages with time, so an instrument not
  zeroed for a while reads a little above 0 in clean air (0.08 m^-1 at
  power-up). Every reading is the chamber's K plus that drift, less what the
  last zero took off.
- A4 is echoed at once, but the zero takes `zero_s` (3 s unless told): it
  measures the chamber for that long and applies the new reference at the
  end, so until then the readings are the old, drifted ones; afterwards
  clean air reads exactly 0. Smoke in the chamber during the zero (a probe
  put in too early) becomes part of the reference: the instrument then
  under-reads by that much.
- A7 is echoed at once; the peak memory restarts `clear_s` later (1 s
  unless told: the end of the instrument's measuring cycle). Until then A6
  still gives the old peaks.
The world reports to the referee a probe inserted during a zero and an
ACCELERATE_FULLY shown while the old peak is still held; the emulator
itself a frame it could not take (bad CS, unknown command) and an A4 during
a zero.
"""

from __future__ import annotations

import random
import zlib

from linectl.clock import Clock
from linectl.config import DeviceConfig
from linectl.drivers.framing import (
    NHT_CLEAR_PEAKS,
    NHT_PEAKS,
    NHT_REALTIME,
    NHT_ZERO,
    SmokeFrame,
    encode_smoke_frame,
    nht_command,
    parse_nht_request,
)
from sim.exhaust import Engine, opacity_pct
from sim.referee import Referee
from sim.serial_emulator import SerialEmulator

SAMPLE_S = 0.05
MAX_SAMPLES = 4000  # per request; a longer quiet span is sampled more coarsely
AMBIENT_C = 20.0
ZERO_S = 3.0
CLEAR_S = 1.0
DRIFT_AT_POWER_UP = 0.08  # m^-1 read in clean air by an instrument never zeroed
DRIFT_PER_S = 0.0002  # m^-1 per second: the light source and detector age
SOOT_PER_K_S = 0.005  # m^-1 of drift per m^-1 * s of smoke through the chamber
PEAK_HELD_TOLERANCE = 0.02  # m^-1: an old peak this far above the live K still shows


class OpacimeterEmulator(SerialEmulator):
    def __init__(
        self,
        clock: Clock,
        *,
        seed: int = 0,
        zero_s: float = ZERO_S,
        clear_s: float = CLEAR_S,
        name: str = "nht6",
        referee: Referee | None = None,
    ) -> None:
        super().__init__(clock, name=name, referee=referee)
        self.engine: Engine | None = None
        self.zero_s = zero_s
        self.clear_s = clear_s
        self.peak_k = 0.0  # as the instrument reads it (drift and reference included)
        self.zeroed = 0  # A4 frames taken
        self.cleared = 0  # A7 frames taken
        self._rng = random.Random(seed)
        self._buf = bytearray()
        self._last_t = clock.now()
        self._drift = DRIFT_AT_POWER_UP
        self._reference = 0.0
        self._zero_until: float | None = None
        self._clear_at: float | None = None

    @classmethod
    def for_device(
        cls, clock: Clock, cfg: DeviceConfig, referee: Referee | None = None
    ) -> OpacimeterEmulator:
        return cls(clock, seed=zlib.crc32(cfg.id.encode()), name=cfg.id, referee=referee)

    def place_vehicle(self, engine: Engine | None) -> None:
        self._advance(self.clock.now())
        self.engine = engine

    @property
    def zeroing(self) -> bool:
        self._advance(self.clock.now())
        return self._zero_until is not None

    @property
    def old_peak_held(self) -> bool:
        """A clear was taken but has not landed, and the old peak still shows above
        the live reading: an acceleration now would be measured against it."""
        now = self.clock.now()
        self._advance(now)
        return self._clear_at is not None and self.peak_k > self._reading(now) + (
            PEAK_HELD_TOLERANCE
        )

    def _k(self, t: float) -> float:
        return self.engine.smoke_k(t) if self.engine is not None else 0.0

    def _reading(self, t: float) -> float:
        """K as the instrument reads it at `t` (no noise)."""
        return max(0.0, self._k(t) + self._drift - self._reference)

    def _advance(self, now: float) -> None:
        span = now - self._last_t
        if span <= 0:
            return
        n = min(MAX_SAMPLES, max(1, round(span / SAMPLE_S)))
        dt = span / n
        for i in range(1, n + 1):
            t = self._last_t + span * i / n
            k = self._k(t)
            self._drift += DRIFT_PER_S * dt + SOOT_PER_K_S * k * dt
            if self._clear_at is not None and t >= self._clear_at:
                self.peak_k, self._clear_at = 0.0, None
            if self._zero_until is not None and t >= self._zero_until:
                self._reference, self._zero_until = self._drift + k, None
            self.peak_k = max(self.peak_k, self._reading(t))
        self._last_t = now

    def _frame(self, cmd: int, k: float, now: float) -> bytes:
        eng = self.engine
        return encode_smoke_frame(
            SmokeFrame(
                cmd,
                opacity_pct(k),
                k,
                round(eng.rpm(now)) if eng is not None else 0,
                eng.traits.oil_temp_c if eng is not None else AMBIENT_C,
            )
        )

    def on_bytes(self, data: bytes) -> list[bytes]:
        self._buf += data
        out = []
        while True:
            cmd, used = parse_nht_request(self._buf)
            if used == 0:
                return out
            bad = bytes(self._buf[:used])
            del self._buf[:used]
            if cmd is not None:
                out.append(self._answer(cmd))
            else:
                self.violation("bad_frame", f"frame {bad.hex(' ')} not taken (no reply)")

    def _answer(self, cmd: int) -> bytes:
        now = self.clock.now()
        self._advance(now)
        if cmd == NHT_REALTIME:
            k = self._reading(now)
            return self._frame(cmd, k + abs(self._rng.gauss(0.0, 0.005)) if k else 0.0, now)
        if cmd == NHT_PEAKS:
            return self._frame(cmd, self.peak_k, now)
        if cmd == NHT_CLEAR_PEAKS:
            self._clear_at = now + self.clear_s
            self.cleared += 1
        elif cmd == NHT_ZERO:
            if self._zero_until is not None:
                self.violation("zero_while_zeroing", "A4 while a zero runs: ignored")
            else:
                self._zero_until = now + self.zero_s
                self.zeroed += 1
        return nht_command(cmd)


__all__ = ["OpacimeterEmulator"]
