"""Simulated proxy drivers walking back and checking in, one of them colluding.

On a line whose drivers check in (`input`: their card on the line I/O;
`console`: an operator presses for them), a simulated driver who has left
his vehicle walks back in 25..40 s and checks in as he arrives. With
`colluder`, one driver of each line (drawn here from the simulator's seeded
generator; nothing names him) works for an owner: when he leaves a vehicle
he picks a target, the first vehicle just outside the line's draw window
(or the last queued), and, once back, waits to check in until that vehicle
is within the window, but no longer than `max_linger_s` (he would be
reported late). A target counts as hit when he is assigned it, missed when
someone else is. What he sees is what the board shows anyone: the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from linectl.clock import Clock
from linectl.events import EventBus

WALK_S = (25.0, 40.0)  # within the default walk_back_s: an honest driver is not late


class PoolView(Protocol):
    line: str
    on_release: Callable[[str], None] | None

    def on_duty(self) -> list[str]: ...


class LineView(Protocol):
    id: str
    pool: PoolView

    def window(self) -> list[tuple[str, str]]: ...
    def queued(self) -> Sequence[Any]: ...


# Checks a driver in: (line id, driver id).
CheckIn = Callable[[str, str], Awaitable[None]]


@dataclass
class ColluderTally:
    line: str
    driver: str
    drivers_on_duty: int
    targets: int = 0
    hits: int = 0
    target: str | None = None
    lingered_s: list[float] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        chance = 1 / self.drivers_on_duty if self.drivers_on_duty else None
        rate = self.hits / self.targets if self.targets else None
        return {
            "line": self.line,
            "targets": self.targets,
            "hits": self.hits,
            "success": None if rate is None else round(rate, 3),
            "chance": None if chance is None else round(chance, 3),
            "of_chance": None if rate is None or not chance else round(rate / chance, 2),
        }


class SimCheckins:
    def __init__(
        self,
        clock: Clock,
        lines: Sequence[LineView],
        check_in: CheckIn,
        *,
        colluder: bool = False,
        seed: int = 0,
        max_linger_s: float = 600.0,
    ) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.lines = {ln.id: ln for ln in lines}
        self._check_in = check_in
        self.max_linger_s = max_linger_s
        self.colluders: dict[str, ColluderTally] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._driving: set[str] = set()
        for ln in lines:
            ln.pool.on_release = lambda d, ln=ln: self._released(ln, d)
            if colluder:
                duty = ln.pool.on_duty()
                who = self.rng.choice(duty)
                self.colluders[ln.id] = ColluderTally(ln.id, who, len(duty))
                self._aim(ln)

    def _aim(self, ln: LineView) -> None:
        col = self.colluders.get(ln.id)
        if col is None or col.target is not None:
            return
        queued = list(ln.queued())
        if not queued:
            return
        k = len(ln.window())
        col.target = queued[min(k, len(queued) - 1)].inspection_id

    def _released(self, ln: LineView, driver: str) -> None:
        self._driving.discard(driver)
        col = self.colluders.get(ln.id)
        if col is not None and col.driver == driver:
            self._aim(ln)
        task = asyncio.create_task(self._walk(ln, driver), name=f"walk-{driver}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _walk(self, ln: LineView, driver: str) -> None:
        await self.clock.sleep(self.rng.uniform(*WALK_S))
        col = self.colluders.get(ln.id)
        if col is not None and col.driver == driver:
            arrived = self.clock.now()
            while self.clock.now() - arrived < self.max_linger_s:
                if col.target is None:
                    self._aim(ln)
                window = [iid for iid, _ in ln.window()]
                if col.target is None or col.target in window:
                    break
                await self.clock.poll_sleep(1.0)
            col.lingered_s.append(self.clock.now() - arrived)
        await self._check_in(ln.id, driver)

    async def watch(self, events: EventBus) -> None:
        """Score the colluders' targets from the assignments the line announces."""
        with events.subscribe({"driver_assigned"}) as sub:
            async for ev in sub:
                p = ev.payload()
                col = self.colluders.get(str(ev.line))
                if col is None:
                    continue
                if p.get("inspection_id") == col.target:
                    col.targets += 1
                    col.hits += int(p.get("proxy_driver") == col.driver)
                    col.target = None
                    self._aim(self.lines[col.line])

    def summary(self) -> list[dict[str, Any]]:
        return [c.to_json() for c in self.colluders.values()]

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._tasks, return_exceptions=True)
