"""Live values of a running test, for the console's board: throttled and cheap.

A procedure tells its station's `LiveFeed` what it reads as it reads it:
brake forces as the ring reader delivers them (`BrakeTrace`), each emission
reading, each lamp result. The feed publishes them as `live` events on the
site's event stream, at most `MAX_PER_S` per station per second of real time
(the console's load does not grow with the time scale); what comes in
between is dropped, never queued, and a brake trace's next event carries on
from the last sample sent, so the curve has no holes. The last event of a
run is never dropped (`force`). The hot path pays a clock read and a
comparison when nothing is due.

Event data: `kind` ("brake", "gas", "smoke", "lamp"), the station, and per kind:
- brake: `axle`, `parking`, `t0_s` (time of the first point after BRAKE),
  `dt_s` (between points), `left_n` and `right_n` (forces in N), `start`
  (a new run), `done` (the run's last points);
- gas: `phase`, `rpm`, `co_pct`, `hc_ppm`, `band` ([low, high] rpm);
- smoke: `rpm`, `k_per_m`;
- lamp: `lamp`, `beam`, `intensity_cd`, `h_mm`, `v_mm`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from linectl.clock import Clock
from linectl.events import EventBus

MAX_PER_S = 5.0
BRAKE_POINTS = 25  # at most this many points per side in one brake event


class LiveFeed:
    """One station's live values, published throttled on the site's event stream."""

    def __init__(self, events: EventBus, clock: Clock, station: str) -> None:
        self.events = events
        self.clock = clock
        self.station = station
        self.line = ""
        self.inspection_id: str | None = None
        self.plate = ""
        self._gap_s = 1.0 / MAX_PER_S
        self._last = -math.inf
        self.sent = 0  # events published, for tests and the benchmark
        self.dropped = 0

    def begin(self, line: str, inspection_id: str, plate: str) -> None:
        """A new vehicle on the station: its values from now on."""
        self.line, self.inspection_id, self.plate = line, inspection_id, plate

    def due(self) -> bool:
        return time.monotonic() - self._last >= self._gap_s

    def publish(self, kind: str, *, force: bool = False, **data: Any) -> bool:
        """Publish unless one went out less than 1/MAX_PER_S s ago; True if it did."""
        now = time.monotonic()
        if not force and now - self._last < self._gap_s:
            self.dropped += 1
            return False
        self._last = now
        self.sent += 1
        self.events.publish(
            "live",
            self.clock.wall(),
            line=self.line,
            inspection_id=self.inspection_id,
            station=self.station,
            plate=self.plate,
            kind=kind,
            **data,
        )
        return True


class BrakeTrace:
    """One brake run's forces, sent as they come, downsampled to `BRAKE_POINTS`."""

    def __init__(self, feed: LiveFeed, period_ms: int, axle: int, parking: bool) -> None:
        self.feed = feed
        self.period_s = period_ms / 1000.0
        self.axle = axle
        self.parking = parking
        self._next = 0  # index of the first sample not sent yet
        self._started = False

    def update(self, samples: Callable[[], np.ndarray], *, done: bool = False) -> None:
        """Send the samples not sent yet, if an event is due (always when `done`).
        `samples` is only called then: copying the run's samples is the cost."""
        if not done and not self.feed.due():
            return
        arr = samples()
        new = arr[self._next :]
        if len(new) == 0 and not done and self._started:
            return
        step = max(1, math.ceil(len(new) / BRAKE_POINTS))
        picked = new[::step]
        sent = self.feed.publish(
            "brake",
            force=done,
            axle=self.axle,
            parking=self.parking,
            t0_s=round(self._next * self.period_s, 3),
            dt_s=round(step * self.period_s, 3),
            left_n=(picked[:, 0].astype(np.int64) * 10).tolist(),
            right_n=(picked[:, 1].astype(np.int64) * 10).tolist(),
            start=not self._started,
            done=done,
        )
        if sent:
            self._started = True
            self._next += len(new)
