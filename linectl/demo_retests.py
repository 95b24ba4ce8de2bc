"""The demo's failed vehicles coming back for their retest (`linectl demo --retest-rate R`).

A share R of the vehicles whose first visit ends fail or incomplete (aborted
ones included) goes to a simulated garage for a while (`REPAIR_DELAY_S`,
clock time), where each of its faults is put right with probability
`--repair-rate` (sim/repair.py); then the simulated world gets the vehicle
that came back under its plate, and the retest is asked for through the
same operation as any registration (`retest_of`, the default items). Every
draw (who goes back, how long, what is repaired) comes from one generator
seeded by `--seed`. A vehicle comes back once, so a demo with `--vehicles N`
ends.

`pass_rates` gives the summary's two figures over the vehicles: passed at
their first result, and passed at their latest (after the retest).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from linectl.ops.actor import Actor
from linectl.ops.operations import Operations
from sim.repair import Repair, repair
from sim.site import SimSite
from sim.vehicles import SimVehicle

log = logging.getLogger(__name__)

REPAIR_DELAY_S = (300.0, 900.0)  # clock seconds at the garage: 5 to 15 minutes
SENT_BACK = ("fail", "incomplete", "aborted")


@dataclass
class Return:
    """One vehicle sent back: what it was built with, and what the garage did."""

    inspection_id: str
    built: SimVehicle
    delay_s: float
    repair: Repair | None = None
    request_id: str | None = None
    refused: dict[str, Any] | None = None


class Returns:
    """Sends failed vehicles back after their repair; knows which are still away."""

    def __init__(
        self,
        ops: Operations,
        sim: SimSite,
        actor: Actor,
        *,
        rate: float,
        repair_rate: float,
        seed: int,
        on_back: Callable[[str, SimVehicle], None] | None = None,
    ) -> None:
        self.ops = ops
        self.sim = sim
        self.actor = actor
        self.rate = rate
        self.repair_rate = repair_rate
        self.rng = random.Random(f"retests:{seed}")
        self.on_back = on_back
        self.sent: dict[str, Return] = {}
        self.away: set[str] = set()  # at the garage, or back in the queue for the retest
        self.settled = asyncio.Event()  # set whenever none is away
        self.settled.set()
        self._tasks: set[asyncio.Task[None]] = set()

    def consider(self, inspection_id: str, verdict: str, built: SimVehicle | None) -> bool:
        """A first visit has ended with `verdict`: send the vehicle back, maybe."""
        if self.rate <= 0 or verdict not in SENT_BACK or built is None:
            return False
        if inspection_id in self.sent or self.rng.random() >= self.rate:
            return False
        ret = Return(inspection_id, built, self.rng.uniform(*REPAIR_DELAY_S))
        self.sent[inspection_id] = ret
        self.away.add(inspection_id)
        self.settled.clear()
        task = asyncio.create_task(self._come_back(ret), name=f"garage-{inspection_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    def is_retest(self, inspection_id: str) -> bool:
        """Whether the next end of this inspection is its retest's."""
        return inspection_id in self.away

    def finished(self, inspection_id: str) -> None:
        """The retest of this inspection has ended."""
        self.away.discard(inspection_id)
        if not self.away:
            self.settled.set()

    async def _come_back(self, ret: Return) -> None:
        try:
            await self.ops.clock.sleep(ret.delay_s)
            ret.repair = repair(ret.built, self.rng, self.repair_rate)
            # The world drives the repaired vehicle when it is called in again.
            self.sim.world.add(ret.repair.vehicle)
            if self.on_back:
                self.on_back(ret.inspection_id, ret.repair.vehicle)
            ret.request_id = f"retest-{ret.inspection_id}"
            reply = await self.ops.register(
                self.actor,
                {
                    "request_id": ret.request_id,
                    "retest_of": ret.inspection_id,
                    "vehicle": {"vin": ret.built.vehicle.vin},
                },
            )
            if not reply.get("accepted"):
                ret.refused = reply.get("error")
                log.warning("retest of %s refused: %s", ret.inspection_id, ret.refused)
                self.finished(ret.inspection_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the retest of %s could not be asked for", ret.inspection_id)
            self.finished(ret.inspection_id)

    async def aclose(self) -> None:
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def describe(self, inspection_id: str) -> str:
        """What the garage did, for a progress line."""
        ret = self.sent.get(inspection_id)
        if ret is None or ret.repair is None:
            return ""
        fixed = ", ".join(f.label() for f in ret.repair.repaired)
        left = ", ".join(f.label() for f in ret.repair.left)
        parts = [f"repaired {fixed}" if fixed else "", f"not repaired {left}" if left else ""]
        return "; ".join(p for p in parts if p) or "nothing to repair"

    def summary(self) -> dict[str, Any]:
        done = [r for r in self.sent.values() if r.repair is not None and r.refused is None]
        return {
            "retest_rate": self.rate,
            "repair_rate": self.repair_rate,
            "sent_back": len(self.sent),
            "retested": sum(1 for r in done if r.inspection_id not in self.away),
            "refused": {r.inspection_id: r.refused for r in self.sent.values() if r.refused},
        }


def pass_rates(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Over the vehicles of the summary: passed at the first result, and at the latest."""
    n = len(rows)
    first = sum(1 for r in rows if r.get("first_verdict") == "pass")
    latest = sum(1 for r in rows if r.get("verdict") == "pass")
    retested = [r for r in rows if r.get("revisions", 1) > 1]
    return {
        "vehicles": n,
        "first_time_pass": first,
        "first_time_pass_rate": round(first / n, 4) if n else None,
        "after_retest_pass": latest,
        "after_retest_pass_rate": round(latest / n, 4) if n else None,
        "retested": len(retested),
        "passed_on_retest": sum(1 for r in retested if r.get("verdict") == "pass"),
    }
