"""Emulator of the diesel smoke opacimeter (`nht6`, devices.md section 4) on a pty.

Frames `cmd CS` in; A5 answers the live opacity N, coefficient K, rpm and
oil temperature, A6 the peaks of N and K since the last A7 (rpm and oil
temperature live), A7 and A4 are echoed. A frame with a bad CS or an
unknown command gets no reply. The smoke chamber is sampled every 50 ms of
clock time, lazily up to the moment of each request, so the peaks hold the
true maxima of a free acceleration whatever the host's polling rate. What
the chamber sees comes from the `Engine` the world placed (`place_vehicle`).
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
from sim.serial_emulator import SerialEmulator

SAMPLE_S = 0.05
MAX_SAMPLES = 4000  # per request; a longer quiet span is sampled more coarsely
AMBIENT_C = 20.0


class OpacimeterEmulator(SerialEmulator):
    def __init__(self, clock: Clock, *, seed: int = 0) -> None:
        super().__init__(clock)
        self.engine: Engine | None = None
        self.peak_k = 0.0
        self.zeroed = 0  # A4 frames taken
        self.cleared = 0  # A7 frames taken
        self._rng = random.Random(seed)
        self._buf = bytearray()
        self._last_t = clock.now()

    @classmethod
    def for_device(cls, clock: Clock, cfg: DeviceConfig) -> OpacimeterEmulator:
        return cls(clock, seed=zlib.crc32(cfg.id.encode()))

    def place_vehicle(self, engine: Engine | None) -> None:
        self._advance(self.clock.now())
        self.engine = engine

    def _k(self, t: float) -> float:
        return self.engine.smoke_k(t) if self.engine is not None else 0.0

    def _advance(self, now: float) -> None:
        span = now - self._last_t
        if span <= 0:
            return
        n = min(MAX_SAMPLES, max(1, round(span / SAMPLE_S)))
        for i in range(1, n + 1):
            self.peak_k = max(self.peak_k, self._k(self._last_t + span * i / n))
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
            del self._buf[:used]
            if cmd is not None:
                out.append(self._answer(cmd))

    def _answer(self, cmd: int) -> bytes:
        now = self.clock.now()
        self._advance(now)
        if cmd == NHT_REALTIME:
            k = self._k(now)
            return self._frame(cmd, k + abs(self._rng.gauss(0.0, 0.005)) if k else 0.0, now)
        if cmd == NHT_PEAKS:
            return self._frame(cmd, self.peak_k, now)
        if cmd == NHT_CLEAR_PEAKS:
            self.peak_k = 0.0
            self.cleared += 1
        elif cmd == NHT_ZERO:
            self.zeroed += 1
        return nht_command(cmd)


__all__ = ["OpacimeterEmulator"]
