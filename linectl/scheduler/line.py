"""One inspection line: its queue, its stations' occupancy, and each vehicle's way through.

The line is a pipeline, one vehicle per station. A call begins when the
first station is free and a vehicle waits: the pool draws a proxy driver and
the vehicle together, as the line's assignment policy says (among the idle
drivers and the first k queued, maybe holding the call for more idle
drivers; see assign.py), and once the station's photo switches
say it is empty and its procedure has made it ready (`Procedure.prepare`),
the guide display shows DRIVE_IN with its plate and the entry light turns
green. At each station the procedure runs; then the vehicle moves on as soon as the next station is free (until
then its display shows WAIT and the station counts as blocked). A station
is free again when its photo switches say so (IN_POSITION 0, EXIT_CLEAR 1).
After the last station the inspection is completed (verdict, result and
outbox row in one transaction), the display shows the result and DRIVE_OUT,
and the driver walks back to the start. First come, first served, but for
the policy's window: an owner's place slips by at most k - 1; every
station's lock is FIFO. A vehicle found on a station when the line
starts (left by a run that crashed) is sent off before anything is called in.

A station may be put in maintenance (`set_maintenance`, through linectl.ops):
like a pause of the line for the vehicles that need that station (one of
their items is measured there), which wait in the queue while those that do
not are called past them; the vehicle already on it finishes.

Two things an operator may do to a line (through linectl.ops): `pause()` it,
so it calls no new vehicle while those on it finish (a call already waiting
for the first station or a driver is held back, the vehicle stays first in
the queue), and `abort()` one inspection: taken out of the queue, or, on the
line, its journey ends where it is (the item being measured is not judged,
`aborted`; the vehicle is sent off with DRIVE_OUT "see the operator"; its
stations and its driver are given back). Either way it ends `aborted` with
the reason and its result goes out through the outbox.

What the line writes while a vehicle is on it (its state, every attempt, its
completion, an abort) waits for the database when the database refuses it
(linectl.store.health): the data stays in memory, the vehicle stays where it
is with WAIT and a line of text on its display, and the line goes on once the
write went through. Nothing measured is dropped for a full disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from linectl.backoff import Backoff
from linectl.config import LineConfig
from linectl.drivers.errors import DeviceError
from linectl.drivers.lineio_modbus import LineIO, Prompt, Shown, prompt_name
from linectl.items import STATION_OF_ITEM, InspectionVerdict, ItemResult, not_judged
from linectl.scheduler.assign import eligible
from linectl.scheduler.checkin import watch_checkin_inputs
from linectl.scheduler.occupancy import Queued, Slot, StoreRecorder
from linectl.scheduler.pool import Draw, ProxyDriverPool
from linectl.scheduler.stats import LineStats
from linectl.stations.base import Guide, Procedure, Recorder, SiteContext, Visit
from linectl.store.health import StorageHealth
from linectl.store.repo import AsyncStore

log = logging.getLogger(__name__)

RESULT_SHOWN_S = 3.0  # the verdict on the last display before DRIVE_OUT
# Shown with WAIT while a write waits for the database (at most 21 characters of
# Chinese fit the display's 64 bytes): "saving the data, please wait".
HOLD_TEXT = "数据保存中，请稍候"
# With DRIVE_OUT to a vehicle found on a station at start: "please see the operator".
LEFTOVER_TEXT = "请联系操作员"
ABORTED_ITEM = "aborted"  # reason of an item cut short by an abort
SEE_THE_OPERATOR = "see the operator"


class NotAbortable(Exception):
    """The inspection is not on this line any more (or is completing): `str()` says why."""


class LineRunner:
    def __init__(
        self,
        cfg: LineConfig,
        ctx: SiteContext,
        io: LineIO,
        procedures: list[Procedure],
        pool: ProxyDriverPool,
        store: AsyncStore,
    ) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.ctx = ctx
        self.clock = ctx.clock
        self.io = io
        self.pool = pool
        self.store = store
        self.slots = [Slot(i, p) for i, p in enumerate(procedures)]
        self._queue: deque[Queued] = deque()
        self._queued = asyncio.Event()
        self._journeys: set[asyncio.Task[None]] = set()
        self.paused = False
        # Stations in maintenance: station id -> the technician's reason.
        self.maintenance: dict[str, str] = {}
        # The call under way (waiting for the first station, drivers, the draw) and,
        # once drawn, the vehicle it called.
        self._call_task: asyncio.Task[None] | None = None
        self._calling: Queued | None = None
        self._withdrawn: set[str] = set()
        self._on_line: dict[str, asyncio.Task[None]] = {}  # journeys by inspection id
        self._completing: set[str] = set()
        self._abort_reasons: dict[str, str] = {}
        self.stats = LineStats.for_line(self.id, [p.id for p in procedures], self.clock.now())
        self.on_change: Callable[[], None] | None = None
        self.storage: StorageHealth | None = None  # the site's: writes wait for the database
        pool.on_change = self._changed
        io.on_show = self._prompted

    # --- what the site asks of a line ------------------------------------------------

    def station_kinds(self) -> list[str]:
        return [s.kind for s in self.slots]

    def device_models(self) -> set[str]:
        return self.cfg.device_models()

    def mean_service_s(self, kind: str) -> float | None:
        """Settled mean service time of this line's station of `kind` (None: not yet
        known: warm-up vehicles, waiting for instruments, do not count)."""
        for slot, st in zip(self.slots, self.stats.stations, strict=True):
            if slot.kind == kind:
                return st.settled_service_s(self.stats.warmup)
        return None

    def kinds_in_maintenance(self) -> set[str]:
        return {s.kind for s in self.slots if s.procedure.id in self.maintenance}

    def held_back(self, q: Queued) -> bool:
        """Whether `q` needs a station in maintenance: not called meanwhile."""
        kinds = self.kinds_in_maintenance()
        return bool(kinds) and any(STATION_OF_ITEM[c] in kinds for c in q.items)

    def callable(self) -> list[Queued]:
        """The queued vehicles the line may call now (none needs a station in maintenance)."""
        return [q for q in self._queue if not self.held_back(q)]

    def set_maintenance(self, station_id: str, on: bool, reason: str = "") -> bool:
        """Put a station in maintenance (or take it out); False if it already was (not).
        KeyError for a station not on this line."""
        if station_id not in {s.procedure.id for s in self.slots}:
            raise KeyError(station_id)
        if on == (station_id in self.maintenance):
            if on:
                self.maintenance[station_id] = reason  # the newer reason stands
            return False
        if on:
            self.maintenance[station_id] = reason
        else:
            del self.maintenance[station_id]
        log.info("%s: station %s %s maintenance", self.id, station_id, "in" if on else "out of")
        self._queued.set()
        self.pool.wake()  # a call waiting looks at the window again
        self._changed()
        return True

    def queue_length(self) -> int:
        return len(self._queue)

    def queued(self) -> list[Queued]:
        """The vehicles waiting to be called, first first (a copy)."""
        return list(self._queue)

    def _prompted(self, station: int, shown: Shown) -> None:
        """A prompt reached a guide display: the console shows what the driver reads."""
        slot = self.slots[station]
        self.ctx.events.publish(
            "prompt",
            self.clock.wall(),
            line=self.id,
            inspection_id=slot.inspection_id,
            station=slot.procedure.id,
            prompt=prompt_name(shown.code),
            plate=shown.plate,
            text=shown.text,
        )

    def in_line(self) -> int:
        return sum(1 for s in self.slots if s.plate is not None)

    def enqueue(self, q: Queued) -> None:
        self._queue.append(q)
        self._queued.set()
        self.pool.wake()
        self.ctx.events.publish(
            "queued",
            self.clock.wall(),
            line=self.id,
            inspection_id=q.inspection_id,
            plate=q.plate,
            position=len(self._queue),
        )
        self._changed()

    def status(self) -> dict[str, Any]:
        return {
            "stations": [
                {
                    "id": s.procedure.id,
                    "kind": s.kind,
                    "state": s.state,
                    "plate": s.plate,
                    "device_ok": all(s.procedure.device_health().values()),
                    "maintenance": s.procedure.id in self.maintenance,
                    "maintenance_reason": self.maintenance.get(s.procedure.id),
                }
                for s in self.slots
            ],
            "queue": len(self._queue),
            "proxy_drivers": self.pool.snapshot(),
            "paused": self.paused,
        }

    def _changed(self) -> None:
        if self.on_change:
            self.on_change()

    async def commit(
        self, what: str, write: Callable[[], Any], slot: Slot | None, inspection_id: str
    ) -> Any:
        """`await write()`, waiting for the database while it refuses; the vehicle
        on `slot` sees WAIT and why on its display meanwhile."""
        if self.storage is None:
            return await write()

        async def hold(state: str) -> None:
            if slot is not None and slot.inspection_id == inspection_id:
                await Guide(self.io, slot.index, slot.plate or "", self.clock).show(
                    Prompt.WAIT, HOLD_TEXT
                )

        return await self.storage.commit(what, write, hold=hold)

    # --- running ----------------------------------------------------------------------

    async def _start_io(self) -> None:
        """Read the displays' SEQ before the first prompt, however long the line I/O
        takes to answer: a station PC often boots before the module is powered, and
        the daemon must wait for it (its health logs the outage once), not stop."""
        delays = Backoff(0.5, 10.0)
        while True:
            try:
                await self.io.start()
                return
            except DeviceError:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Stopping: a cancellation swallowed inside the request (3.11's
                    # wait_for, in pymodbus's connect) must not become a retry loop.
                    raise asyncio.CancelledError from None
                await asyncio.sleep(delays.next())

    async def run(self) -> None:
        await self._start_io()
        for s in self.slots:
            guide = Guide(self.io, s.index, "", self.clock)
            await guide.entry_light(False)
            inputs = await guide._retry(lambda s=s: self.io.inputs(s.index))
            if inputs.free:
                await guide.show(Prompt.BLANK)
            else:
                await self._send_off_leftover(s, guide)
        if self.cfg.checkin.mode == "input":
            self._spawn(
                watch_checkin_inputs(self.io, self.pool, dict(self.cfg.checkin.inputs), self.clock)
            )
        try:
            while True:
                await self._next()
                # Its own task, so a pause or an abort can call it off while it waits.
                call = asyncio.create_task(self._call(), name=f"call-{self.id}")
                self._call_task = call
                try:
                    await call
                except BaseException as e:
                    task = asyncio.current_task()
                    q = self._calling
                    if isinstance(e, asyncio.CancelledError) and task and task.cancelling():
                        raise
                    if q is not None and q.inspection_id in self._withdrawn:
                        self._withdrawn.discard(q.inspection_id)
                    elif q is not None:
                        # Drawn, then held back by a pause (or its draw not recorded):
                        # first again when the line resumes.
                        self._queue.appendleft(q)
                        self._changed()
                    if not isinstance(e, asyncio.CancelledError):
                        raise
                finally:
                    self._calling = None
                    self._call_task = None
        finally:
            for t in list(self._journeys):
                t.cancel()
            await asyncio.gather(*self._journeys, return_exceptions=True)

    def window(self) -> list[tuple[str, str]]:
        """The vehicles a call may be drawn among: the first k queued (inspection, plate),
        passing over those that need a station in maintenance."""
        k = self.pool.policy.window
        first = self.callable()[:k]
        n = eligible([q.overtaken for q in first], k)
        return [(q.inspection_id, q.plate) for q in first[:n]]

    def _take(self, inspection_id: str) -> None:
        """The draw chose this vehicle: out of the queue, it is the one being called."""
        q = next(x for x in self._queue if x.inspection_id == inspection_id)
        for ahead in list(self._queue)[: self._queue.index(q)]:
            ahead.overtaken += 1
        self._queue.remove(q)
        self._calling = q
        self._changed()

    async def _call(self) -> None:
        """Wait for the first station, draw the call (driver and vehicle, see pool.py),
        and start the vehicle's journey.

        A pause or an abort that cancels this while the draw is being recorded
        leaves that draw in the chain, voided: the driver goes back to the pool
        and the vehicle, if called again, gets a draw of its own."""
        first = self.slots[0]
        await first.lock.acquire()
        try:
            draw = await self.pool.draw_call(self.window, self._take)
        except BaseException:
            first.lock.release()
            raise
        q = self._calling
        assert q is not None and q.inspection_id == draw.inspection_id
        q.times.called = self.clock.now()
        q.times.queue_behind = len(self._queue)
        self.stats.journeys.append(q.times)
        task = asyncio.create_task(self._journey(q, draw), name=f"journey-{q.inspection_id}")
        self._journeys.add(task)
        self._on_line[q.inspection_id] = task
        task.add_done_callback(self._journeys.discard)

    async def _send_off_leftover(self, slot: Slot, guide: Guide) -> None:
        """A vehicle stands on the station as the line starts: one a previous run
        left there (a crash, a power cut; its inspection was aborted on start).
        It is sent off, and nothing is called into the station until its photo
        switches say it is free: the next vehicle's test must never run on it."""
        log.warning("%s: station %s is occupied at start: vehicle sent off", self.id, slot.index)
        await slot.lock.acquire()
        slot.state = "leaving"
        await guide.show(Prompt.DRIVE_OUT, LEFTOVER_TEXT)

        async def vacated() -> None:
            await guide.wait_inputs(lambda i: i.free)
            await guide.show(Prompt.BLANK)
            slot.state = "free"
            slot.lock.release()
            self._changed()

        self._spawn(vacated())

    async def _next(self) -> None:
        """Until a vehicle the line may call waits and the line is not paused."""
        while not self.callable() or self.paused:
            self._queued.clear()
            await self._queued.wait()

    # --- pause and abort --------------------------------------------------------------

    def pause(self) -> bool:
        """Call no new vehicle until `resume()`; those on the line finish. False if
        already paused. A call waiting for the first station or a driver is held back."""
        if self.paused:
            return False
        self.paused = True
        if self._call_task is not None:
            self._call_task.cancel()
        log.info("%s: paused", self.id)
        self._changed()
        return True

    def resume(self) -> bool:
        """Call vehicles again; False if the line was not paused."""
        if not self.paused:
            return False
        self.paused = False
        self._queued.set()
        log.info("%s: resumed", self.id)
        self._changed()
        return True

    async def abort(self, inspection_id: str, reason: str) -> str:
        """End one inspection `aborted` with `reason`; where it was: "queued" or "on_line".

        Returns once the abort is recorded and its result is in the outbox.
        `NotAbortable` when the inspection is neither queued here nor on the line,
        or is already being completed."""
        for q in self._queue:
            if q.inspection_id == inspection_id:
                self._queue.remove(q)
                self.pool.wake()  # a call held for it looks at the window again
                await self._end_queued(q, reason)
                return "queued"
        calling, call = self._calling, self._call_task
        if calling is not None and call is not None and calling.inspection_id == inspection_id:
            q = calling
            self._withdrawn.add(inspection_id)
            if call.cancel():
                await asyncio.wait([call])
                if call.cancelled():
                    await self._end_queued(q, reason)
                    return "queued"
            # The call got there first: the vehicle is on the line now.
            self._withdrawn.discard(inspection_id)
        journey = self._on_line.get(inspection_id)
        if journey is None or journey.done():
            raise NotAbortable(f"inspection {inspection_id} is not queued or on line {self.id}")
        if inspection_id in self._completing:
            raise NotAbortable(f"inspection {inspection_id} is being completed")
        self._abort_reasons[inspection_id] = reason
        journey.cancel()
        # Waited for, not awaited: a caller cancelled now must not cancel the abort.
        await asyncio.wait([journey])
        if self._abort_reasons.pop(inspection_id, None) is not None:
            # Never reached an abort point: it completed first.
            raise NotAbortable(f"inspection {inspection_id} completed before it could be aborted")
        return "on_line"

    def _abort_point(self, q: Queued) -> None:
        """Where an abort is taken even if its cancellation got lost on the way (a
        device library that turns a cancelled request into an error the procedure
        then handles): raises CancelledError when an abort is pending."""
        if q.inspection_id in self._abort_reasons:
            raise asyncio.CancelledError

    async def _end_queued(self, q: Queued, reason: str) -> None:
        await self.store.complete_inspection(
            q.inspection_id, at=self.clock.wall(), abort_reason=reason
        )
        log.info(
            "%s: inspection %s (%s) aborted in the queue: %s",
            self.id,
            q.inspection_id,
            q.plate,
            reason,
        )
        self.ctx.events.publish(
            "aborted",
            self.clock.wall(),
            line=self.id,
            inspection_id=q.inspection_id,
            plate=q.plate,
            reason=reason,
        )
        self._changed()

    async def _journey(self, q: Queued, draw: Draw) -> None:
        """One vehicle from the call into the first station to leaving the last."""
        held: list[Slot] = [self.slots[0]]  # stations this vehicle holds the lock of
        self.ctx.events.publish(
            "driver_assigned",
            draw.at,
            line=self.id,
            inspection_id=q.inspection_id,
            plate=q.plate,
            proxy_driver=draw.chosen,
            candidates=list(draw.candidates),
            vehicles=list(draw.vehicles or [q.inspection_id]),
        )
        recorder = StoreRecorder(self.store, q.inspection_id, self)
        try:
            at = self.clock.wall()
            await self.commit(
                f"start of {q.inspection_id}",
                lambda: self.store.set_state(q.inspection_id, "in_progress", at),
                self.slots[0],
                q.inspection_id,
            )
            n = len(self.slots)
            for k, slot in enumerate(self.slots):
                last = k == n - 1
                blocked_s = await self._at_station(q, slot, recorder, last=last, held=held)
                await Guide(self.io, k, q.plate, self.clock).show(Prompt.DRIVE_OUT)
                slot.state = "leaving"
                self._changed()
                self._spawn(self._vacate(slot, blocked_s, (draw, q) if last else None, held))
        except asyncio.CancelledError:
            reason = self._abort_reasons.pop(q.inspection_id, None)
            task = asyncio.current_task()
            # Only an operator's abort is handled here; a shutdown goes on up.
            if reason is None or (task is not None and task.uncancel() > 0):
                raise
            log.info(
                "%s: inspection %s (%s) aborted: %s", self.id, q.inspection_id, q.plate, reason
            )
            await self._abort(q, draw, held, reason, recorder)
        except Exception as e:
            log.exception("%s: inspection %s (%s) aborted", self.id, q.inspection_id, q.plate)
            await self._abort(q, draw, held, f"internal error: {e}", recorder)
        finally:
            self._on_line.pop(q.inspection_id, None)
            self._completing.discard(q.inspection_id)

    async def _at_station(
        self, q: Queued, slot: Slot, recorder: Recorder, last: bool, held: list[Slot]
    ) -> float:
        """Call the vehicle in, run the procedure, then hold it until it may move on.

        Returns the time the station was blocked by this vehicle afterwards.
        """
        st = self.stats.stations[slot.index]
        guide = Guide(self.io, slot.index, q.plate, self.clock)
        slot.state, slot.plate, slot.inspection_id = "calling", q.plate, q.inspection_id
        st.occupy(self.clock.now())
        self._changed()
        # Called in only into an empty station (its photo switches, not our lock, say
        # so: a vehicle may stand there across a restart) that is ready for it (the
        # brake tester's lift up).
        await guide.wait_inputs(lambda i: i.free)
        await slot.procedure.prepare()
        await guide.show(Prompt.DRIVE_IN, q.plate)
        await guide.entry_light(True)
        await guide.wait_inputs(lambda i: i.in_position)
        await guide.entry_light(False)
        slot.state = "testing"
        self._changed()
        items = [c for c in q.items if STATION_OF_ITEM[c] == slot.kind]
        self.ctx.events.publish(
            "station_started",
            self.clock.wall(),
            line=self.id,
            inspection_id=q.inspection_id,
            station=slot.procedure.id,
            plate=q.plate,
            items=items,
        )
        results: list[ItemResult] = []
        if items:
            visit = Visit(q.inspection_id, q.vehicle, q.inspection_type, items, line=self.id)
            results = await slot.procedure.run(visit, guide, recorder)
            self._abort_point(q)
        self.ctx.events.publish(
            "station_finished",
            self.clock.wall(),
            line=self.id,
            inspection_id=q.inspection_id,
            station=slot.procedure.id,
            plate=q.plate,
            verdicts={r.code: str(r.verdict) for r in results},
        )
        blocked_from = self.clock.now()
        if not last:
            nxt = self.slots[slot.index + 1]
            if nxt.lock.locked():
                slot.state = "blocked"
                st.block(blocked_from)
                self._changed()
                await guide.show(Prompt.WAIT, "next station busy")
            await nxt.lock.acquire()
            held.append(nxt)
            st.unblock(self.clock.now())
        else:
            self._abort_point(q)
            self._completing.add(q.inspection_id)  # too late to abort from here on
            at = self.clock.wall()
            record = await self.commit(
                f"result of {q.inspection_id}",
                lambda: self.store.complete_inspection(q.inspection_id, at=at, once=True),
                slot,
                q.inspection_id,
            )
            verdict = InspectionVerdict(record.verdict)
            self.stats.ended(str(verdict))
            failed = [c for c, v in record.item_verdicts().items() if v != "pass"]
            prompt = Prompt.RESULT_PASS if verdict is InspectionVerdict.PASS else Prompt.RESULT_FAIL
            await guide.show(prompt, " ".join(failed))
            self.ctx.events.publish(
                "completed",
                self.clock.wall(),
                line=self.id,
                inspection_id=q.inspection_id,
                plate=q.plate,
                verdict=str(verdict),
                revision=record.revision,
            )
            await self.clock.sleep(RESULT_SHOWN_S)
        return self.clock.now() - blocked_from if not last else 0.0

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._journeys.add(task)
        task.add_done_callback(self._journeys.discard)

    async def _vacate(
        self, slot: Slot, blocked_s: float, last: tuple[Draw, Queued] | None, held: list[Slot]
    ) -> None:
        """The vehicle drives off; the station is free once its photo switches say so."""
        guide = Guide(self.io, slot.index, "", self.clock)
        await guide.wait_inputs(lambda i: not i.in_position and i.exit_clear)
        await guide.show(Prompt.BLANK)
        now = self.clock.now()
        self.stats.stations[slot.index].vacate(now, blocked_s)
        slot.state, slot.plate, slot.inspection_id = "free", None, None
        held.remove(slot)
        slot.lock.release()
        if last is not None:
            draw, q = last
            q.times.left_last = now
            self.stats.completions.append(now)
            self.pool.release(draw.chosen)
        self._changed()

    async def _abort(
        self, q: Queued, draw: Draw, held: list[Slot], reason: str, recorder: StoreRecorder
    ) -> None:
        """Record the abort, send the vehicle off the line, give back what it held."""
        present = [s for s in held if s.inspection_id == q.inspection_id and s.state != "leaving"]
        try:
            for slot in present:
                if slot.state != "testing":
                    continue
                # The items this station was measuring: not judged, and why.
                for code in q.items:
                    if STATION_OF_ITEM[code] == slot.kind and code not in recorder.recorded:
                        now = self.clock.wall()
                        await recorder.attempt(
                            not_judged(code, ABORTED_ITEM),
                            station=slot.procedure.id,
                            device=None,
                            started_at=now,
                            finished_at=now,
                        )
            at = self.clock.wall()
            await self.commit(
                f"abort of {q.inspection_id}",
                lambda: self.store.complete_inspection(
                    q.inspection_id, at=at, abort_reason=reason, once=True
                ),
                None,
                q.inspection_id,
            )
        except Exception:
            log.exception("%s: could not record the abort of %s", self.id, q.inspection_id)
        self.stats.ended("aborted")
        self.ctx.events.publish(
            "aborted",
            self.clock.wall(),
            line=self.id,
            inspection_id=q.inspection_id,
            plate=q.plate,
            reason=reason,
        )
        for slot in list(held):
            if slot not in present and slot.inspection_id != q.inspection_id:
                # Taken for the vehicle but never entered: free at once.
                held.remove(slot)
                slot.lock.release()
        for i, slot in enumerate(present):
            guide = Guide(self.io, slot.index, q.plate, self.clock)
            if slot.state == "calling":
                await guide.entry_light(False)
            await guide.show(Prompt.DRIVE_OUT, SEE_THE_OPERATOR)
            slot.state = "leaving"
            last = i == len(present) - 1
            self._spawn(self._vacate(slot, 0.0, (draw, q) if last else None, held))
        if not present:
            self.pool.release(draw.chosen)
        self._changed()

    def report(self) -> dict[str, object]:
        """The line's throughput figure so far (clock time)."""
        now = self.clock.now()
        return self.stats.report(
            now,
            self.pool.utilisation(now - self.stats.started),
            len(self.pool.on_duty()),
            self.pool.walk_back_s,
        )
