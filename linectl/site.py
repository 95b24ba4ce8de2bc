"""The site: its lines, store, event stream and limits, wired from the config.

`Site` builds the store-backed parts from the config: the limits, the device
drivers, each line's procedures, proxy-driver pool and runner. `Site.run()`
supervises the lines, the status ticker and the alarm monitor; whatever else attaches to the
site (the operations layer and its transports, the simulator in a demo)
subscribes to its event stream. What people and the registry may ask of the
site (register, abort, duty, pause) are operations in linectl.ops, which call
the site; the site knows nothing of who asks or how (no import of ops,
upstream or http here), and linectl.daemon composes them.

The database's health (linectl.store.health) is watched while the site
runs and shown in every line's status (`storage`); a write the procedures
depend on (an attempt, a completion, a draw, a duty change) waits for the
database instead of being lost. Delivered outbox rows older than
`database.delivered_outbox_days` are pruned every few hours.

On start, inspections the previous run left unfinished are dealt with:
queued ones (first visits, and retests with their own items) go back into
their line's queue in their old order; one that was on a station when the
daemon stopped is aborted (the vehicle's position is unknown), so its result
says so instead of vanishing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from linectl.alarms.monitor import AlarmMonitor
from linectl.clock import Clock, utc_iso
from linectl.config import SiteConfig
from linectl.drivers.devices import DeviceSet
from linectl.drivers.liveness import LivenessWatch
from linectl.events import EventBus
from linectl.registration import Registration, accepted_reply, retest_reply
from linectl.scheduler.assign import overtaken_in
from linectl.scheduler.dispatch import choose_line
from linectl.scheduler.line import LineRunner, Queued
from linectl.scheduler.pool import Draw, DriverState, ProxyDriverPool, csprng_choice
from linectl.scheduler.stats import JourneyTimes
from linectl.stations.base import SiteContext
from linectl.stations.limits import load_limits
from linectl.stations.registry import build_procedure
from linectl.store.health import StorageHealth
from linectl.store.repo import AsyncStore, DuplicateRequest, Store, StoreError
from linectl.store.retests import NotRetestable
from linectl.vehicle import InvalidField

log = logging.getLogger(__name__)

STATUS_EVERY_S = 10.0  # mqtt.md: status on every change and at least every 10 s
PRUNE_EVERY_S = 6 * 3600.0  # real seconds between outbox prunes


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
        self.storage = StorageHealth(
            cfg.database.url, min_free_mb=cfg.database.min_free_mb, on_change=self._status_changed
        )
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
                policy=line_cfg.assignment.build(),
                checkin=line_cfg.checkin.mode,
            )
            runner = LineRunner(line_cfg, self.ctx, io, procedures, pool, store)
            runner.on_change = self._status_changed
            runner.storage = self.storage
            self.lines.append(runner)
        self._status_dirty = asyncio.Event()
        self.ready = asyncio.Event()
        # Alarms (linectl.alarms): raised from the conditions above, each round.
        self.alarms = AlarmMonitor(self)
        self.liveness = LivenessWatch(
            self.devices.drivers, self._device_idle, every_s=cfg.alarms.probe_idle_s
        )

    # --- status ---------------------------------------------------------------------

    def line(self, line_id: str) -> LineRunner:
        for ln in self.lines:
            if ln.id == line_id:
                return ln
        raise KeyError(line_id)

    def line_status(self, runner: LineRunner) -> dict[str, Any]:
        # `storage` is added to mqtt.md's fields: a line whose results cannot be
        # saved holds its vehicles, and the registry and console should see why.
        return {
            "online": True,
            "ts": utc_iso(self.clock.wall()),
            **runner.status(),
            "storage": self.storage.snapshot(),
        }

    def _device_idle(self, device_id: str) -> bool:
        """No vehicle at the device's station (a line's I/O module: always)."""
        for ln in self.lines:
            if ln.cfg.io.id == device_id:
                return True
            for slot, st in zip(ln.slots, ln.cfg.stations, strict=True):
                if any(d.id == device_id for d in st.devices):
                    return slot.state == "free" and slot.plate is None
        return False

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
        at = self.clock.wall()
        await self.storage.commit(
            f"duty of {driver_id}", lambda: self.store.set_driver_state(driver_id, duty, at)
        )

    async def _record_draw(self, draw: Draw) -> None:
        # Waits for the database: an unrecorded draw would break the audit chain.
        await self.storage.commit(
            f"draw for {draw.inspection_id}",
            lambda: self.store.record_draw(
                line=draw.line,
                inspection_id=draw.inspection_id,
                candidates=list(draw.candidates),
                chosen=draw.chosen,
                at=draw.at,
                vehicles=None if draw.vehicles is None else list(draw.vehicles),
            ),
        )

    async def _housekeeping(self) -> None:
        """Prune delivered outbox rows past their keeping time, now and every few hours."""
        keep = timedelta(days=self.cfg.database.delivered_outbox_days)
        while True:
            try:
                n = await self.store.prune_outbox(self.clock.wall() - keep)
                if n:
                    log.info("outbox: %d delivered row(s) older than %s pruned", n, keep)
            except StoreError as e:
                self.storage.failed(e)
                log.warning("outbox: prune failed, tried again later: %s", e)
            await asyncio.sleep(PRUNE_EVERY_S)

    # --- admission ------------------------------------------------------------------

    def line_for(self, reg: Registration) -> LineRunner:
        """The line expected to finish this vehicle first among those that can measure
        it; `InvalidField` (no_line) when none can."""
        line: LineRunner = choose_line(self.lines, reg.vehicle, reg.items)
        return line

    def proxy_driver_line(self, driver_id: str) -> LineRunner:
        """The line whose pool holds this proxy driver; KeyError when none does."""
        for ln in self.lines:
            if driver_id in ln.pool.drivers:
                return ln
        raise KeyError(driver_id)

    async def admit(
        self,
        reg: Registration,
        line: LineRunner,
        *,
        journal_for: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Keep a validated registration as an inspection and queue it on `line`; the
        reply of mqtt.md. A request_id answered before gets its stored reply again
        and nothing is created. `journal_for(reply)` is the journal entry kept with
        it, in the same transaction (`Store.create_inspection`).

        The inspection is created with its line in one transaction, and queued
        once it is kept: a database that fails in between (a connection lost on
        COMMIT, a disk full) is waited for, so an accepted vehicle is never left
        out of its queue, where no one would call it until the next start."""
        at = self.clock.wall()
        try:
            inspection_id = await self.storage.commit(
                f"registration {reg.request_id}",
                lambda: self.store.create_inspection(
                    site=self.id,
                    vehicle=reg.vehicle,
                    inspection_type=reg.inspection_type,
                    items=reg.items,
                    at=at,
                    request_id=reg.request_id,
                    reply_for=lambda iid: accepted_reply(reg.request_id, iid, line.id),
                    line=line.id,
                    journal_for=journal_for,
                ),
            )
        except DuplicateRequest as e:
            # Kept by an earlier try whose COMMIT went through unseen: queue it now
            # if that try never got as far.
            await self.queue_if_left_out(e.reply)
            return e.reply
        await self._queue(inspection_id, line, reg)
        return accepted_reply(reg.request_id, inspection_id, line.id)

    async def _queue(self, inspection_id: str, line: LineRunner, reg: Registration) -> None:
        at = self.clock.wall()
        await self.storage.commit(
            f"queueing {inspection_id}",
            lambda: self.store.set_state(inspection_id, "queued", at),
        )
        line.enqueue(
            Queued(
                inspection_id,
                reg.vehicle,
                reg.inspection_type,
                reg.items,
                JourneyTimes(self.clock.now()),
            )
        )

    async def queue_if_left_out(self, reply: dict[str, Any]) -> None:
        iid = reply.get("inspection_id")
        if not reply.get("accepted") or not isinstance(iid, str):
            return
        rec = await self.store.inspection(iid)
        if rec.state != "registered" or rec.line is None:
            return  # queued (so in its line's queue), on the line, or done
        line = self.line(rec.line)
        log.warning("inspection %s (%s) was kept but never queued: queued now", iid, rec.plate)
        # A retest kept this way is queued with its own items.
        reg = Registration(
            rec.request_id, rec.inspection_type, rec.vehicle, rec.visit_items(), True
        )
        await self._queue(iid, line, reg)

    async def admit_retest(
        self,
        reg: Registration,
        line: LineRunner,
        *,
        journal_for: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """Keep a validated retest and queue the vehicle again on `line`; the reply of
        mqtt.md with `retest_of` and `revision`. A request_id answered before gets its
        stored reply again; `InvalidField` (not_retestable) if the inspection is no
        longer retestable. Kept, journalled and queued as `admit` does a registration."""
        assert reg.retest_of is not None and reg.request_id is not None
        rid, iid = reg.request_id, reg.retest_of
        at = self.clock.wall()
        try:
            retest = await self.storage.commit(
                f"retest {rid}",
                lambda: self.store.create_retest(
                    inspection_id=iid,
                    request_id=rid,
                    items=reg.items,
                    line=line.id,
                    at=at,
                    reply_for=lambda rev: retest_reply(rid, iid, line.id, rev, reg.items),
                    journal_for=journal_for,
                ),
            )
        except DuplicateRequest as e:
            await self.queue_if_left_out(e.reply)
            return e.reply
        except NotRetestable as e:
            raise InvalidField("not_retestable", "retest_of", str(e)) from None
        await self._queue(iid, line, reg)
        return retest_reply(rid, iid, line.id, retest.revision, reg.items)

    async def _recover(self) -> None:
        windows: dict[str, list[tuple[str, list[str] | None]]] = {}
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
            if rec.line not in windows:
                windows[rec.line] = [
                    (d.inspection_id, d.vehicles) for d in await self.store.draws(rec.line)
                ]
            runner.enqueue(
                Queued(
                    rec.id,
                    rec.vehicle,
                    rec.inspection_type,
                    rec.visit_items(),  # a retest's own items
                    JourneyTimes(self.clock.now()),
                    # Places it lost before the restart count against its k - 1.
                    overtaken=overtaken_in(rec.id, windows[rec.line]),
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
                tg.create_task(self.storage.watch(), name="storage")
                tg.create_task(self._housekeeping(), name="housekeeping")
                tg.create_task(self.alarms.run(), name="alarms")
                tg.create_task(self.liveness.run(), name="liveness")
                self.ready.set()
        finally:
            for runner in self.lines:
                await runner.pool.aclose()
                for slot in runner.slots:
                    await slot.procedure.close()
            await self.devices.aclose()


async def open_store(url: str) -> AsyncStore:
    """The site's store, migrated to the schema this code needs."""
    store = Store(url)
    await asyncio.to_thread(store.upgrade)
    return AsyncStore(store)
