"""What a line measures about itself: station occupancy, service, blocking, queue waits.

All in clock time, so a sped-up simulation reports simulated hours. A
station's *service* time is the time it holds a vehicle minus the time it
was blocked (its vehicle done, the next station still busy); the throughput
bound of a line is set by the slowest mean service time and by how fast the
proxy drivers can go round (see README, "The throughput bound").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import fmean


@dataclass
class StationStats:
    id: str
    occupied_s: float = 0.0
    blocked_s: float = 0.0
    services: list[float] = field(default_factory=list)  # one per vehicle
    _since: float | None = None
    _blocked_since: float | None = None

    def occupy(self, t: float) -> None:
        self._since = t

    def block(self, t: float) -> None:
        self._blocked_since = t

    def unblock(self, t: float) -> None:
        if self._blocked_since is not None:
            self.blocked_s += t - self._blocked_since
            self._blocked_since = None

    def vacate(self, t: float, blocked_s: float) -> None:
        if self._since is None:
            return
        held = t - self._since
        self.occupied_s += held
        self.services.append(held - blocked_s)
        self._since = None

    def occupied_until(self, t: float) -> float:
        return self.occupied_s + (t - self._since if self._since is not None else 0.0)

    @property
    def mean_service_s(self) -> float | None:
        return fmean(self.services) if self.services else None


@dataclass
class JourneyTimes:
    """One vehicle's way through the line, for the driver-cycle part of the bound."""

    queued: float
    called: float | None = None  # its driver drawn, station 0 free
    left_last: float | None = None
    blocked_s: float = 0.0


@dataclass
class LineStats:
    line: str
    stations: list[StationStats]
    started: float = 0.0
    journeys: list[JourneyTimes] = field(default_factory=list)
    completions: list[float] = field(default_factory=list)  # clock time each vehicle left

    @classmethod
    def for_line(cls, line: str, station_ids: list[str], t0: float) -> LineStats:
        return cls(line, [StationStats(s) for s in station_ids], started=t0)

    def queue_waits(self) -> list[float]:
        return [j.called - j.queued for j in self.journeys if j.called is not None]
