"""A line's calls and draws as discrete events, with a proxy driver who colludes.

The full simulator (sim/world.py against the daemon) runs a line in real
time scaled; to measure an assignment policy to a few percent takes
thousands of draws, so this model runs the same policy code
(linectl.scheduler.assign: when a call may be drawn, the uniform pair draw)
on an event queue instead: three stations in a row, one vehicle each, a
vehicle moves on when the next station is free (blocking the one it is on
until then), a call begins when the first station is free and a vehicle
waits. Service times are those the full demo measured (benchmarks/README.md:
brake about 52 s, headlamp about 48 s, emission about 113 s, an electric car
a few seconds at emission), and drivers walk back in 30..50 s.

How a driver's return is known (`checkin`): `timer`, ready walk_back_s after
he left his vehicle; `input` (or `console`, the same to this model), ready
when he checks in, which an honest driver does as he arrives.

The colluder is one driver (whichever; the model numbers drivers, it names
none) who wants one vehicle at a time, his target: the first vehicle just
outside the policy's window when he leaves his car. He sees the queue and the
pool. With a check-in he stays back, after he has arrived, until a call is
open whose window holds his target, then checks in; he gives up lingering
after `max_linger_s` (he would be reported late, then noticed). With the
timer he can only drive slowly: he keeps his car on the last station until
his target is within the window or next to it. Each target is a success when
he drives it, a failure when someone else does.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from statistics import fmean
from typing import Any

from linectl.scheduler.assign import AssignmentPolicy, bits, draw_pair, eligible

SERVICE_S = {
    "brake": (40.0, 64.0),
    "headlamp": (40.0, 56.0),
    "emission": (100.0, 126.0),
}
ELECTRIC_SHARE = 0.1
ELECTRIC_EMISSION_S = (4.0, 8.0)
WALK_S = (30.0, 50.0)
WALK_BACK_S = 40.0  # the config's walk_back_s: the timer, and the mean walk
STATIONS = ("brake", "headlamp", "emission")


@dataclass
class Vehicle:
    n: int  # registration order: 0 first
    service: tuple[float, ...]
    called_at: float | None = None
    left_at: float | None = None
    driver: int | None = None
    overtaken: int = 0


@dataclass
class Driver:
    n: int
    state: str = "idle"  # idle | driving | walking | lingering
    colluder: bool = False
    arrived_at: float = 0.0


@dataclass
class Outcome:
    """What one run measured."""

    policy: str
    checkin: str
    drivers: int
    vehicles: int
    draws: list[tuple[int, int]] = field(default_factory=list)  # (drivers, vehicles) offered
    rate_per_h: float = 0.0
    bound_per_h: float = 0.0
    max_jump: int = 0
    targets: int = 0
    hits: int = 0

    @property
    def bits_per_draw(self) -> float:
        return fmean(bits(d, v) for d, v in self.draws) if self.draws else 0.0

    @property
    def single_share(self) -> float:
        return sum(1 for d, v in self.draws if d * v == 1) / len(self.draws) if self.draws else 0.0

    @property
    def of_bound(self) -> float:
        return self.rate_per_h / self.bound_per_h if self.bound_per_h else 0.0

    @property
    def success(self) -> float:
        return self.hits / self.targets if self.targets else math.nan

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "checkin": self.checkin,
            "drivers": self.drivers,
            "vehicles": self.vehicles,
            "draws": len(self.draws),
            "bits_per_draw": round(self.bits_per_draw, 3),
            "single_candidate_share": round(self.single_share, 3),
            "rate_per_h": round(self.rate_per_h, 2),
            "bound_per_h": round(self.bound_per_h, 2),
            "of_bound": round(self.of_bound, 3),
            "max_queue_jump": self.max_jump,
            "colluder_targets": self.targets,
            "colluder_hits": self.hits,
            "colluder_success": round(self.success, 3) if self.targets else None,
            "chance": round(1 / self.drivers, 3),
        }


class AssignmentLine:
    """One saturated line: every vehicle queued at time 0 (a morning queue)."""

    def __init__(
        self,
        policy: AssignmentPolicy,
        *,
        checkin: str = "input",
        drivers: int = 4,
        vehicles: int = 400,
        colluder: bool = True,
        max_linger_s: float = 600.0,
        seed: int = 1,
    ) -> None:
        self.policy = policy
        self.checkin = checkin
        self.rng = random.Random(seed)
        self.draw_rng = random.Random(seed + 1)  # the daemon's is the CSPRNG
        self.max_linger_s = max_linger_s
        self.vehicles = [self._vehicle(i) for i in range(vehicles)]
        self.queue: list[Vehicle] = list(self.vehicles)
        self.drivers = [Driver(i, colluder=colluder and i == 0) for i in range(drivers)]
        self.stations: list[Vehicle | None] = [None] * len(STATIONS)
        self.done: list[int] = [0] * len(STATIONS)  # station s holds a finished vehicle
        self.now = 0.0
        self._events: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = itertools.count()
        self.call_from: float | None = None
        self.target: Vehicle | None = None
        self.out = Outcome(policy.label(), checkin, drivers, vehicles)
        self.services: list[list[float]] = [[] for _ in STATIONS]

    def _vehicle(self, n: int) -> Vehicle:
        electric = self.rng.random() < ELECTRIC_SHARE
        service = tuple(
            self.rng.uniform(
                *(ELECTRIC_EMISSION_S if k == "emission" and electric else SERVICE_S[k])
            )
            for k in STATIONS
        )
        return Vehicle(n, service)

    # --- events ------------------------------------------------------------------------

    def at(self, t: float, fn: Callable[[], None]) -> None:
        heapq.heappush(self._events, (t, next(self._seq), fn))

    def run(self) -> Outcome:
        self._aim(self.drivers[0])
        self.step()
        while self._events:
            self.now, _, fn = heapq.heappop(self._events)
            fn()
            self.step()
        self._figures()
        return self.out

    # --- the line ----------------------------------------------------------------------

    def idle(self) -> list[Driver]:
        return [d for d in self.drivers if d.state == "idle"]

    def window(self) -> list[Vehicle]:
        k = eligible([v.overtaken for v in self.queue[: self.policy.window]], self.policy.window)
        return self.queue[:k]

    def step(self) -> None:
        """Whatever can happen now: colluder's check-in, a draw, moves down the line."""
        self._move_on()
        if self.stations[0] is None and self.queue:
            if self.call_from is None:
                self.call_from = self.now
                if self.policy.hold_s > 0:
                    self.at(self.now + self.policy.hold_s + 1e-6, lambda: None)
            self._colluder_decides()
            idle = self.idle()
            held = self.now - self.call_from
            if self.policy.ready(len(idle), len(self.drivers), held):
                self._draw(idle)
        else:
            self.call_from = None

    def _draw(self, idle: list[Driver]) -> None:
        window = self.window()
        ids = [str(d.n) for d in idle]
        vids = [str(v.n) for v in window]
        dn, vn = draw_pair(ids, vids, self.draw_rng.choice)
        d = self.drivers[int(dn)]
        v = next(x for x in window if x.n == int(vn))
        self.out.draws.append((len(ids), len(vids)))
        for w in self.queue[: self.queue.index(v)]:
            w.overtaken += 1
        self.queue.remove(v)
        v.called_at, v.driver = self.now, d.n
        d.state = "driving"
        self.call_from = None
        if self.target is v:
            self.out.targets += 1
            self.out.hits += int(d.colluder)
            self.target = None
            col = self.drivers[0]
            if col.colluder and col.state in ("idle", "lingering", "walking"):
                self._aim(col)
        self.stations[0] = v
        self.at(self.now + v.service[0], lambda s=0: self._finish(s))

    def _finish(self, s: int) -> None:
        self.done[s] = 1
        v = self.stations[s]
        assert v is not None
        self.services[s].append(v.service[s])

    def _move_on(self) -> None:
        last = len(STATIONS) - 1
        for s in range(last, -1, -1):
            v = self.stations[s]
            if v is None or not self.done[s]:
                continue
            if s == last:
                d = self.drivers[v.driver or 0]
                if d.colluder and self.checkin == "timer" and not self._colluder_leaves():
                    continue  # he keeps the car on the station, slowly
                self.stations[s], self.done[s] = None, 0
                v.left_at = self.now
                self._release(d)
            elif self.stations[s + 1] is None:
                self.stations[s], self.done[s] = None, 0
                self.stations[s + 1] = v
                self.at(self.now + v.service[s + 1], lambda s=s + 1: self._finish(s))

    def _release(self, d: Driver) -> None:
        d.state = "walking"
        if d.colluder:
            self._aim(d)
        if self.checkin == "timer":
            self.at(self.now + WALK_BACK_S, lambda: self._back(d))
        else:
            self.at(self.now + self.rng.uniform(*WALK_S), lambda: self._arrive(d))

    def _arrive(self, d: Driver) -> None:
        d.arrived_at = self.now
        if d.colluder and self.target is not None:
            d.state = "lingering"
            self.at(self.now + self.max_linger_s, lambda: self._linger_over(d))
        else:
            d.state = "idle"

    def _back(self, d: Driver) -> None:
        d.state = "idle"

    # --- the colluder ------------------------------------------------------------------

    def _aim(self, d: Driver) -> None:
        """A new target: the first vehicle just outside the window (or the last one)."""
        if not d.colluder or self.target is not None or not self.queue:
            return
        k = self.policy.window
        self.target = self.queue[min(k, len(self.queue) - 1)]

    def _colluder_decides(self) -> None:
        col = self.drivers[0]
        if col.colluder and col.state == "lingering" and self.target in self.window():
            col.state = "idle"

    def _linger_over(self, d: Driver) -> None:
        if d.state == "lingering" and self.now - d.arrived_at >= self.max_linger_s - 1e-6:
            d.state = "idle"

    def _colluder_leaves(self) -> bool:
        if self.target is None or self.target not in self.queue:
            return True
        return self.queue.index(self.target) <= self.policy.window

    # --- figures -----------------------------------------------------------------------

    def _figures(self) -> None:
        order = sorted(self.vehicles, key=lambda v: v.called_at or 0.0)
        jump = 0
        for i, v in enumerate(order):
            # Vehicles registered after v but called before it.
            jump = max(jump, sum(1 for w in order[:i] if w.n > v.n))
        self.out.max_jump = jump
        lefts = sorted(v.left_at for v in self.vehicles if v.left_at is not None)
        warm = len(STATIONS) + 1
        # Steady state: after the warm-up, up to the last vehicle called with others queued.
        steady = lefts[warm - 1 : len(lefts) - warm]
        if len(steady) >= 2:
            self.out.rate_per_h = (len(steady) - 1) / (steady[-1] - steady[0]) * 3600
        means = [fmean(x) for x in self.services]
        station_bound = 3600 / max(means)
        driver_bound = len(self.drivers) * 3600 / (sum(means) + WALK_BACK_S)
        self.out.bound_per_h = min(station_bound, driver_bound)


def run(policy: AssignmentPolicy, **kw: Any) -> Outcome:
    return AssignmentLine(policy, **kw).run()
