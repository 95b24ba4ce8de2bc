"""How a device has been answering since the daemon started: counters and a latency histogram.

One `DeviceStats` per device, kept by the drivers as requests go (the Modbus
bus per unit, the serial port for its instrument, the ring reader for
overruns) and read by whoever reports on the daemon (`GET /api/devices`,
`GET /metrics`, `linectl diag stats`). Nothing here talks to a device.

The hot path is a request: one `bisect` into a short tuple and a few integer
increments, no allocation, no lock (one event loop). Latency is the wire
round trip, from the request leaving to its reply being parsed, in real
seconds; time spent waiting for the bus lock is not the device's. Quantiles
come from the histogram (linear inside a bucket), as Prometheus computes
them, so p50/p99 of the API and of a dashboard agree.

Semantics: `requests` counts every request the driver was asked to make,
including those refused at once because the link is down; `errors` counts
those that failed, by kind, so `errors <= requests`. A Modbus exception
reply is an error of kind `exception` with a latency (the device answered).
"""

from __future__ import annotations

import time
from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import UTC, datetime

# Upper bounds (seconds) of the latency buckets; the last bucket is +Inf. A
# Modbus TCP read answers in about a millisecond, an RS-232 frame at 9600 Bd
# in tens; the device timeout is 1 s by default.
LATENCY_BOUNDS_S: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)

# Kinds of failed request, as counted in `errors_by_kind` and labelled in metrics.
ERROR_KINDS = ("timeout", "unreachable", "checksum", "protocol", "exception")


@dataclass
class DeviceStats:
    requests: int = 0
    errors_by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ERROR_KINDS, 0))
    reconnects: int = 0  # the link opened again after it had been open
    ring_overruns: int = 0
    noise_events: int = 0  # stray bytes found on a serial line outside any reply
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_S) + 1))
    latency_sum_s: float = 0.0
    last_error: str | None = None
    last_error_at: datetime | None = None  # wall clock, UTC
    last_answer_at: datetime | None = None
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    _answered_ts: float = 0.0  # time.time() of the latest answer; 0: none yet

    # --- the drivers' side (hot path) -------------------------------------------------

    def answered(self, latency_s: float) -> None:
        """One request answered by the device after `latency_s` (real seconds)."""
        self.requests += 1
        self.buckets[bisect_left(LATENCY_BOUNDS_S, latency_s)] += 1
        self.latency_sum_s += latency_s
        self._answered_ts = time.time()

    def failed(self, kind: str, reason: str, latency_s: float | None = None) -> None:
        """One request failed; `latency_s` when the device did answer (an exception reply)."""
        if latency_s is None:
            self.requests += 1
        else:
            self.answered(latency_s)
        self.errors_by_kind[kind] += 1
        self.last_error = reason
        self.last_error_at = datetime.now(UTC)

    # --- the readers' side ------------------------------------------------------------

    @property
    def errors(self) -> int:
        return sum(self.errors_by_kind.values())

    @property
    def timeouts(self) -> int:
        return self.errors_by_kind["timeout"]

    @property
    def checksum_failures(self) -> int:
        return self.errors_by_kind["checksum"]

    @property
    def answers(self) -> int:
        """Requests the device answered (a latency was measured)."""
        return sum(self.buckets)

    @property
    def answered_at(self) -> datetime | None:
        """Wall time of the latest answer."""
        return datetime.fromtimestamp(self._answered_ts, UTC) if self._answered_ts else None

    def cumulative_buckets(self) -> list[tuple[float, int]]:
        """(upper bound, answers at or below it) per bucket, +Inf last, as Prometheus wants."""
        out, total = [], 0
        for bound, n in zip((*LATENCY_BOUNDS_S, float("inf")), self.buckets, strict=True):
            total += n
            out.append((bound, total))
        return out

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the latency (seconds) from the histogram; None without answers.
        Linear inside a bucket; in the +Inf bucket, its lower bound."""
        total = self.answers
        if total == 0:
            return None
        rank = q * total
        below, lower = 0, 0.0
        for bound, n in zip((*LATENCY_BOUNDS_S, float("inf")), self.buckets, strict=True):
            if n and below + n >= rank:
                if bound == float("inf"):
                    return lower
                return lower + (bound - lower) * max(0.0, rank - below) / n
            below += n
            lower = bound if bound != float("inf") else lower
        return lower
