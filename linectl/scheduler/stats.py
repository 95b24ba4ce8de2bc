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
from typing import Any


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

    def settled_service_s(self, warmup: int, at_least: int = 3) -> float | None:
        """Mean service after the first `warmup` vehicles, once there are enough."""
        settled = self.services[warmup:]
        return fmean(settled) if len(settled) >= at_least else None


@dataclass
class JourneyTimes:
    """One vehicle's way through the line, for the driver-cycle part of the bound."""

    queued: float
    called: float | None = None  # its driver drawn, station 0 free
    left_last: float | None = None
    queue_behind: int = 0  # vehicles still queued when it was called


@dataclass
class LineStats:
    line: str
    stations: list[StationStats]
    started: float = 0.0
    journeys: list[JourneyTimes] = field(default_factory=list)
    completions: list[float] = field(default_factory=list)  # clock time each vehicle left
    # inspections ended on this line, by verdict (pass, fail, incomplete) or "aborted"
    verdicts: dict[str, int] = field(default_factory=dict)

    def ended(self, verdict: str) -> None:
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1

    @classmethod
    def for_line(cls, line: str, station_ids: list[str], t0: float) -> LineStats:
        return cls(line, [StationStats(s) for s in station_ids], started=t0)

    @property
    def warmup(self) -> int:
        """Vehicles counted as warm-up: until the pipeline has been full once."""
        return len(self.stations) + 1

    def queue_waits(self) -> list[float]:
        return [j.called - j.queued for j in self.journeys if j.called is not None]

    def steady_window(self) -> tuple[float, float, int, int] | None:
        """(start, end, vehicles, warm-up vehicles) of the steady state, or None.

        Warm-up: until as many vehicles as the line has stations, plus one, have
        left it (the pipeline has been full once, instruments warmed up). Drain:
        after the last vehicle that was called while others still queued, the
        line empties and its rate says nothing about its capacity.
        """
        done = sorted(
            (j for j in self.journeys if j.left_last is not None and j.called is not None),
            key=lambda j: j.called or 0.0,
        )
        warmup = self.warmup
        busy = [j for j in done if j.queue_behind > 0]
        if len(busy) <= warmup + 1:
            return None
        start = sorted(j.left_last for j in done if j.left_last is not None)[warmup - 1]
        end = max(j.left_last for j in busy if j.left_last is not None)
        n = sum(1 for j in done if j.left_last is not None and start < j.left_last <= end)
        if end <= start or n < 2:
            return None
        return start, end, n, warmup

    def report(
        self,
        now: float,
        driver_utilisation: dict[str, float],
        drivers_on_duty: int,
        walk_back_s: float,
    ) -> dict[str, Any]:
        """The line's figure, in clock time (see README, "The throughput bound")."""
        elapsed = max(now - self.started, 1e-9)
        # The bound, like the rate, leaves the warm-up vehicles out: the first ones
        # wait for instruments to warm up, which is not what a station costs a vehicle.
        warm = self.warmup
        services = [
            st.settled_service_s(warm, at_least=1) or st.mean_service_s for st in self.stations
        ]
        known = [x for x in services if x is not None]
        station_bound = 3600 / max(known) if known and len(known) == len(services) else None
        cycle = sum(known) + walk_back_s if known and len(known) == len(services) else None
        driver_bound = drivers_on_duty * 3600 / cycle if cycle else None
        bounds = [b for b in (station_bound, driver_bound) if b is not None]
        bound = min(bounds) if bounds else None
        window = self.steady_window()
        vph = window[2] / (window[1] - window[0]) * 3600 if window else None
        waits = self.queue_waits()
        slowest = max(range(len(services)), key=lambda i: services[i] or 0.0) if known else None
        return {
            "line": self.line,
            "vehicles": len(self.completions),
            "vehicles_per_hour": _r(vph),
            "bound_per_hour": _r(bound),
            "of_bound": _r(vph / bound if vph and bound else None, 3),
            "station_bound_per_hour": _r(station_bound),
            "driver_bound_per_hour": _r(driver_bound),
            "limited_by": (
                None
                if bound is None
                else ("proxy drivers" if bound == driver_bound else self.stations[slowest or 0].id)
            ),
            "steady_state": (
                {
                    "from_s": _r(window[0]),
                    "to_s": _r(window[1]),
                    "vehicles": window[2],
                    "warmup_vehicles": window[3],
                }
                if window
                else None
            ),
            "mean_queue_wait_s": _r(fmean(waits) if waits else None),
            "stations": [
                {
                    "id": st.id,
                    "utilisation": _r(st.occupied_until(now) / elapsed, 3),
                    "mean_service_s": _r(services[i]),
                    "blocked_share": _r(st.blocked_s / elapsed, 3),
                }
                for i, st in enumerate(self.stations)
            ],
            "proxy_drivers": {
                "on_duty": drivers_on_duty,
                "walk_back_s": walk_back_s,
                "utilisation": {k: _r(v, 3) for k, v in sorted(driver_utilisation.items())},
                "mean_utilisation": _r(
                    fmean(driver_utilisation.values()) if driver_utilisation else None, 3
                ),
            },
            "simulated_s": _r(elapsed),
        }


def _r(x: float | None, digits: int = 1) -> float | None:
    return None if x is None else round(x, digits)
