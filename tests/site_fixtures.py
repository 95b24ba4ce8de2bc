"""A running site against the simulator, for end-to-end tests: the demo's wiring
(real sockets, real ptys, one shared clock) with a test's own vehicles."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linectl.clock import Clock
from linectl.config import SiteConfig
from linectl.demo import STATION_KINDS, demo_config, registration_for
from linectl.ops.actor import Actor
from linectl.ops.operations import Operations
from linectl.site import Site, open_store
from linectl.store.records import InspectionRecord
from linectl.store.repo import AsyncStore
from sim.site import SimSite
from sim.vehicles import SimVehicle

FINISHED = {"completed", "aborted"}
# The brake procedure's APPLY prompt has 2 s of clock time to reach the display
# (brake.py, APPLY_LATE_S). At time scale 100 that is 20 ms of real time, and on a
# shared 2-core machine under load one Modbus round trip alone took 10 to 25 ms and
# a woken task 15 ms more: runs were not judged (guide_late). At 20 it is 100 ms,
# the demo's own scale.
E2E_SCALE = 20.0


# The actor of registrations a test makes directly (the registry's rights and more).
TESTER = Actor.system("test")


@dataclass
class Rig:
    site: Site
    sim: SimSite
    store: AsyncStore
    clock: Clock
    ops: Operations
    n: int = 0

    async def register(self, sv: SimVehicle, items: list[str] | None = None) -> dict[str, Any]:
        self.n += 1
        self.sim.world.add(sv)
        return await self.ops.register(TESTER, registration_for(sv, self.n, items))

    async def inspect_all(
        self, vehicles: Sequence[SimVehicle], items: list[str] | None = None, within_s: float = 120
    ) -> list[InspectionRecord]:
        """Register every vehicle, wait (real seconds) until each has finished."""
        with self.site.events.subscribe(FINISHED) as sub:
            ids = []
            for sv in vehicles:
                reply = await self.register(sv, items)
                assert reply["accepted"], reply
                ids.append(reply["inspection_id"])
            pending = set(ids)

            async def drain() -> None:
                while pending:
                    pending.discard((await sub.get()).inspection_id)

            await asyncio.wait_for(drain(), within_s)
        return [await self.store.inspection(i) for i in ids]


def offline_config(cfg: SiteConfig) -> SiteConfig:
    """A demo config with a distinct made-up TCP port per device, for a site that is
    built and registers vehicles but never talks to its devices."""
    port = iter(range(20001, 30000))

    def fix(d: Any) -> Any:
        if d.transport.kind == "tcp":
            return d.model_copy(
                update={"transport": d.transport.model_copy(update={"port": next(port)})}
            )
        return d

    lines = [
        ln.model_copy(
            update={
                "io": fix(ln.io),
                "stations": [
                    s.model_copy(update={"devices": [fix(d) for d in s.devices]})
                    for s in ln.stations
                ],
            }
        )
        for ln in cfg.lines
    ]
    return cfg.model_copy(update={"lines": lines})


@asynccontextmanager
async def running_site(
    tmp_path: Path,
    *,
    lines: int = 1,
    kinds: tuple[str, ...] = STATION_KINDS,
    time_scale: float = E2E_SCALE,
    adjust: Callable[[SiteConfig], SiteConfig] | None = None,
    url: str | None = None,
    **site_kwargs: Any,
) -> AsyncIterator[Rig]:
    clock = Clock(time_scale)
    url = url or f"sqlite:///{tmp_path / 'site.db'}"
    (tmp_path / "tty").mkdir(exist_ok=True)
    cfg = demo_config("t1", lines, url, tmp_path / "tty", kinds)
    if adjust:
        cfg = adjust(cfg)
    sim = SimSite(cfg, clock, seed=3)
    await sim.start()
    store = await open_store(url)
    site = Site(sim.live_config(), clock, store, **site_kwargs)
    ops = Operations(site)
    ops.on_accept.append(lambda reg: sim.world.learn(reg.vehicle))
    tasks = [asyncio.create_task(sim.run()), asyncio.create_task(site.run())]
    try:
        await asyncio.wait_for(site.ready.wait(), 10)
        yield Rig(site, sim, store, clock, ops)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await store.aclose()
        await sim.aclose()
