"""The site daemon: one process per site, one TaskGroup over everything it runs.

`Site` wires the parts together from the config: the store (migrated on
start), the limits, the device drivers, each line's procedures, proxy-driver
pool and runner, and the registration door. `Site.run()` supervises the
lines and the status ticker; whatever else attaches to the site (the MQTT
upstream, the simulator in a demo) subscribes to its event stream.

On start, inspections the previous run left unfinished are dealt with:
queued ones go back into their line's queue in their old order; one that was
on a station when the daemon stopped is aborted (the vehicle's position is
unknown), so its result says so instead of vanishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Sequence
from typing import Any

from linectl.clock import Clock, utc_iso
from linectl.config import SiteConfig, load_site_config
from linectl.drivers.devices import DeviceSet
from linectl.events import EventBus
from linectl.registration import (
    Registration,
    accepted_reply,
    parse_registration,
    read_request_id,
    refused_reply,
)
from linectl.scheduler.dispatch import choose_line
from linectl.scheduler.line import LineRunner, Queued
from linectl.scheduler.pool import Draw, DriverState, ProxyDriverPool, csprng_choice
from linectl.scheduler.stats import JourneyTimes
from linectl.stations.base import SiteContext
from linectl.stations.limits import load_limits
from linectl.stations.registry import build_procedure
from linectl.store.repo import AsyncStore, DuplicateRequest, Store
from linectl.upstream import Upstream
from linectl.vehicle import InvalidField

log = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0  # mqtt.md: status on every change and at least every 10 s


class Site:
    def __init__(
        self,
        cfg: SiteConfig,
        clock: Clock,
        store: AsyncStore,
        *,
        events: EventBus | None = None,
        choose: Callable[[Sequence[str]], str] = csprng_choice,
    ) -> None:
        self.cfg = cfg
        self.id = cfg.site_id
        self.clock = clock
        self.store = store
        self.events = events or EventBus()
        self.limits = load_limits(cfg.limits.dir)
        self.ctx = SiteContext(cfg, clock, self.limits, self.events)
        self.devices = DeviceSet()
        self.lines: list[LineRunner] = []
        for line_cfg in cfg.lines:
            io = self.devices.lineio(line_cfg.io, len(line_cfg.stations))
            procedures = [build_procedure(st, self.ctx, self.devices) for st in line_cfg.stations]
            pool = ProxyDriverPool(
                line_cfg.id,
                line_cfg.proxy_drivers,
                clock,
                self._record_draw,
                walk_back_s=line_cfg.walk_back_s,
                choose=choose,
                tz=cfg.tz(),
                duty_changed=self._record_duty,
            )
            runner = LineRunner(line_cfg, self.ctx, io, procedures, pool, store)
            runner.on_change = self._status_changed
            self.lines.append(runner)
        self._status_dirty = asyncio.Event()
        self._register_lock = asyncio.Lock()
        self.ready = asyncio.Event()

    # --- status ---------------------------------------------------------------------

    def line(self, line_id: str) -> LineRunner:
        for ln in self.lines:
            if ln.id == line_id:
                return ln
        raise KeyError(line_id)

    def line_status(self, runner: LineRunner) -> dict[str, Any]:
        return {"online": True, "ts": utc_iso(self.clock.wall()), **runner.status()}

    def _status_changed(self) -> None:
        self._status_dirty.set()

    async def _status_ticker(self) -> None:
        """Publish every line's status on change (coalesced) and every 10 s."""
        while True:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for can turn a
            # cancellation that meets the timeout into TimeoutError, and this
            # loop would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.clock.to_real(STATUS_EVERY_S)):
                    await self._status_dirty.wait()
            self._status_dirty.clear()
            for runner in self.lines:
                self.events.publish(
                    "line_status",
                    self.clock.wall(),
                    line=runner.id,
                    status=self.line_status(runner),
                )
            # Coalesce bursts of changes into one update per short while.
            await asyncio.sleep(0.05)

    # --- records --------------------------------------------------------------------

    async def _record_duty(self, driver_id: str, state: DriverState) -> None:
        duty = {DriverState.BREAK: "break", DriverState.OFF_DUTY: "off_duty"}.get(state, "on_duty")
        await self.store.set_driver_state(driver_id, duty, self.clock.wall())

    async def _record_draw(self, draw: Draw) -> None:
        await self.store.record_draw(
            line=draw.line,
            inspection_id=draw.inspection_id,
            candidates=list(draw.candidates),
            chosen=draw.chosen,
            at=draw.at,
        )

    # --- registration ---------------------------------------------------------------

    async def register(self, request: Any) -> dict[str, Any]:
        """Validate a registration and queue the inspection; the reply of mqtt.md.

        A request_id seen before gets the stored reply again and creates
        nothing, also across restarts (the reply is in the database).
        """
        rid = read_request_id(request)
        async with self._register_lock:
            if rid is not None:
                known = await self.store.registration_reply(rid)
                if known is not None:
                    return known
            try:
                reg = parse_registration(request)
                runner = choose_line(self.lines, reg.vehicle, reg.items)
            except InvalidField as e:
                log.info("registration %s refused: %s", rid or "(no request_id)", e)
                reply = refused_reply(rid, e)
                if rid is not None:
                    reply = await self.store.refuse_registration(rid, reply, self.clock.wall())
                return reply
            return await self._accept(reg, runner)

    async def _accept(self, reg: Registration, runner: Any) -> dict[str, Any]:
        line: LineRunner = runner
        try:
            inspection_id = await self.store.create_inspection(
                site=self.id,
                vehicle=reg.vehicle,
                inspection_type=reg.inspection_type,
                items=reg.items,
                at=self.clock.wall(),
                request_id=reg.request_id,
                reply_for=lambda iid: accepted_reply(reg.request_id, iid, line.id),
            )
        except DuplicateRequest as e:
            return e.reply
        await self.store.assign_line(inspection_id, line.id)
        await self.store.set_state(inspection_id, "queued", self.clock.wall())
        line.enqueue(
            Queued(
                inspection_id,
                reg.vehicle,
                reg.inspection_type,
                reg.items,
                JourneyTimes(self.clock.now()),
            )
        )
        return accepted_reply(reg.request_id, inspection_id, line.id)

    async def _recover(self) -> None:
        for rec in await self.store.unfinished_inspections():
            if rec.state == "in_progress" or rec.line is None:
                reason = "daemon restarted while the vehicle was on the line"
                await self.store.complete_inspection(
                    rec.id, at=self.clock.wall(), abort_reason=reason
                )
                log.warning("inspection %s (%s) aborted: %s", rec.id, rec.plate, reason)
                continue
            try:
                runner = self.line(rec.line)
            except KeyError:
                await self.store.complete_inspection(
                    rec.id,
                    at=self.clock.wall(),
                    abort_reason=f"line {rec.line} no longer configured",
                )
                continue
            runner.enqueue(
                Queued(
                    rec.id,
                    rec.vehicle,
                    rec.inspection_type,
                    list(rec.items),
                    JourneyTimes(self.clock.now()),
                )
            )
            log.info("inspection %s (%s) back in the queue of %s", rec.id, rec.plate, rec.line)

    # --- running --------------------------------------------------------------------

    async def run(self) -> None:
        for ln_cfg in self.cfg.lines:
            await self.store.sync_proxy_drivers(
                ln_cfg.id,
                [(d.id, d.name, d.on_duty) for d in ln_cfg.proxy_drivers],
                at=self.clock.wall(),
            )
        await self._recover()
        try:
            async with asyncio.TaskGroup() as tg:
                for runner in self.lines:
                    tg.create_task(runner.run(), name=f"line-{runner.id}")
                    tg.create_task(runner.pool.run_breaks(), name=f"breaks-{runner.id}")
                tg.create_task(self._status_ticker(), name="status")
                self.ready.set()
        finally:
            for runner in self.lines:
                await runner.pool.aclose()
                for slot in runner.slots:
                    await slot.procedure.close()
            await self.devices.aclose()


async def open_store(url: str) -> AsyncStore:
    store = Store(url)
    await asyncio.to_thread(store.upgrade)
    return AsyncStore(store)


async def _run_daemon(cfg: SiteConfig, time_scale: float) -> None:
    clock = Clock(time_scale)
    store = await open_store(cfg.database.url)
    site = Site(cfg, clock, store)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, main.cancel)
    log.info("site %s: %d line(s), database %s", cfg.site_id, len(cfg.lines), cfg.database.url)
    try:
        # A bad [mqtt] table or an unreadable secret stops the start here, in one line.
        upstream = Upstream(site, cfg.mqtt) if cfg.mqtt is not None else None
        if upstream is None:
            backlog = await store.outbox_backlog()
            log.info("no [mqtt] configured: results wait in the outbox (%d waiting)", backlog)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(site.run(), name="site")
            if upstream is not None:
                tg.create_task(upstream.run(), name="upstream")
    except asyncio.CancelledError:
        log.info("site %s: stopping", cfg.site_id)
    finally:
        await store.aclose()


def cli(args: Any) -> int:
    cfg = load_site_config(args.config)
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    asyncio.run(_run_daemon(cfg, args.time_scale))
    return 0
