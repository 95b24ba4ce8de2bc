"""Retry delays: exponential, capped, with jitter.

One rule for everything that reconnects (Modbus buses, serial ports, the MQTT
links): the n-th delay is drawn from the upper half of
`min(cap_s, initial_s * factor**n)`. The jitter keeps a site's devices and
connections (and many sites after a broker restart) from retrying in step.
"""

from __future__ import annotations

import random


class Backoff:
    def __init__(
        self,
        initial_s: float = 0.5,
        cap_s: float = 30.0,
        factor: float = 2.0,
        rng: random.Random | None = None,
    ) -> None:
        self.initial_s = initial_s
        self.cap_s = cap_s
        self.factor = factor
        self._rng = rng or random.Random()
        self._n = 0

    @property
    def failures(self) -> int:
        """Delays handed out since the last reset."""
        return self._n

    def next(self) -> float:
        top = min(self.cap_s, self.initial_s * self.factor**self._n)
        self._n += 1
        return top / 2 + self._rng.uniform(0, top / 2)

    def reset(self) -> None:
        self._n = 0
