"""The site's operations: what anyone may ask of a running site, checked and journalled once.

Registration, retest (a registration with `retest_of`), abort, proxy-driver
duty, pause/resume of a line and acting on alarms (linectl.ops.alarms) are
done here and only here, whoever asks
and however: the MQTT intake, the HTTP API and console, the command line and
the demo all call `Operations` with an `Actor`. Each operation checks the
actor's right (linectl.ops.actor), takes its input through the one
validation there is (linectl.registration for registrations,
linectl.ops.retest for retests), acts on the site, and writes what it did,
or why it did not, to the journal. The reads the console and API need
(lines, inspections, the event stream, the journal, a retest's defaults)
are here too, so a role check never lives in a transport.

Journal times are the site clock's (`clock.wall()`), like the inspection
records they sit beside; at time scale 1 that is the wall clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from linectl.clock import utc_iso
from linectl.device_report import devices_report
from linectl.events import Subscription
from linectl.i18n import LOCALES
from linectl.items import InspectionVerdict
from linectl.ops.actor import Action, Actor
from linectl.ops.alarms import AlarmOps
from linectl.ops.control import ControlDesk, Holder, console_session
from linectl.ops.errors import Conflict, Forbidden, Invalid, Unknown
from linectl.ops.retest import (
    first_result_at,
    is_retest,
    parse_retest,
    plan_retest,
    retest_deadline,
    retest_defaults,
)
from linectl.registration import (
    Registration,
    decode_registration,
    parse_registration,
    read_request_id,
    refused_reply,
)
from linectl.scheduler.line import LineRunner, NotAbortable
from linectl.scheduler.pool import DriverState
from linectl.site import Site
from linectl.store.base import NotFound
from linectl.store.published import revision_history
from linectl.store.records import InspectionState, default_result_document
from linectl.vehicle import InvalidField

log = logging.getLogger(__name__)

REASON_MAX = 500
LIST_MAX = 500
FINISHED = (InspectionState.COMPLETED, InspectionState.ABORTED)


def clean_reason(reason: Any, *, required: bool) -> str | None:
    if reason is None or (isinstance(reason, str) and not reason.strip()):
        if required:
            raise Invalid("reason", "a reason is required", "missing_field")
        return None
    if not isinstance(reason, str):
        raise Invalid("reason", "the reason must be text")
    text = " ".join(reason.split())
    if len(text) > REASON_MAX:
        raise Invalid("reason", f"the reason is {len(text)} characters, over {REASON_MAX}")
    if not text.isprintable():
        raise Invalid("reason", "the reason holds control characters")
    return text


class Operations(AlarmOps):
    def __init__(self, site: Site) -> None:
        self.site = site
        self.store = site.store
        self.clock = site.clock
        # One registration at a time: a repeated request_id is answered from the
        # database, and each line choice sees the queues the previous one left.
        self._register_lock = asyncio.Lock()
        # Told of every accepted registration before its vehicle is queued (the
        # demo's simulated world learns which vehicle it is to drive).
        self.on_accept: list[Callable[[Registration], None]] = []
        # Which console session acts on each line now (linectl.ops.control).
        self.control = ControlDesk()

    # --- rights and the journal ---------------------------------------------------

    def allow(self, actor: Actor, action: Action) -> None:
        """Raise `Forbidden` unless the actor may; for reads, which change nothing."""
        if not actor.may(action):
            raise Forbidden(f"{actor.name} ({actor.role}) may not {action}")

    async def record(
        self,
        actor: Actor,
        action: str,
        *,
        outcome: str = "ok",
        target: str | None = None,
        reason: str | None = None,
        changes: dict[str, Any] | None = None,
    ) -> None:
        await self.store.append_journal(
            at=self.clock.wall(),
            action=action,
            outcome=outcome,
            target=target,
            reason=reason,
            changes=changes,
            **actor.journal_fields(),
        )

    async def _check(self, actor: Actor, action: Action, target: str | None) -> None:
        """Like `allow`, for actions: a denied attempt is journalled."""
        if not actor.may(action):
            await self.record(actor, str(action), outcome="denied", target=target)
            raise Forbidden(f"{actor.name} ({actor.role}) may not {action}")

    def _entry(
        self, actor: Actor, action: str, fields: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """The journal entry of an accepted `action` as a store transaction writes it
        (linectl.store.journal.append_entry): `fields(reply)` gives its target and
        changes once the reply (with the new inspection's id) is known."""
        at = self.clock.wall()  # read here, on the event loop, not on the store's thread
        who = actor.journal_fields()
        return lambda reply: {"at": at, "action": action, **who, **fields(reply)}

    # --- reads --------------------------------------------------------------------

    def devices(self, actor: Actor) -> list[dict[str, Any]]:
        """Each device: up, last error, counters, latency (linectl.device_report)."""
        self.allow(actor, Action.DIAGNOSE)
        return devices_report(self.site)

    def lines(self, actor: Actor) -> list[dict[str, Any]]:
        """Each line's status: the object of mqtt.md's status topic, with its id."""
        self.allow(actor, Action.READ)
        return [{"id": ln.id, **self.site.line_status(ln)} for ln in self.site.lines]

    async def inspections(
        self,
        actor: Actor,
        *,
        plate: str | None = None,
        vin: str | None = None,
        verdict: str | None = None,
        since: str | datetime | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """The latest inspections, newest first (summaries)."""
        self.allow(actor, Action.READ)
        if verdict is not None and verdict not in tuple(InspectionVerdict):
            raise Invalid(
                "verdict", f"verdict must be one of {', '.join(InspectionVerdict)}, not {verdict!r}"
            )
        if not 1 <= limit <= LIST_MAX:
            raise Invalid("limit", f"limit must be 1..{LIST_MAX}")
        rows = await self.store.list_inspections(
            limit=limit, plate=plate, vin=vin, verdict=verdict, since=self.parse_time(since)
        )
        return [r.to_json() for r in rows]

    def parse_time(self, since: str | datetime | None) -> datetime | None:
        """A date or ISO 8601 time given as a filter; one without zone is the site's."""
        if since is None or isinstance(since, datetime):
            return since
        try:
            at = datetime.fromisoformat(since.replace("Z", "+00:00"))
        except ValueError:
            raise Invalid(
                "since", f"since must be a date or an ISO 8601 time, not {since[:40]!r}"
            ) from None
        if at.tzinfo is None:  # a date or a time without zone: the site's local time
            tz = self.site.cfg.tz()
            at = at.replace(tzinfo=tz) if tz else at.astimezone()
        return at

    async def inspection(self, actor: Actor, inspection_id: str) -> dict[str, Any]:
        """The result document of mqtt.md (latest revision) plus state, every attempt and
        the revision history (`revisions`, linectl.store.published)."""
        self.allow(actor, Action.READ)
        try:
            rec = await self.store.inspection(inspection_id)
        except NotFound:
            raise Unknown(f"no inspection {inspection_id}") from None
        doc = default_result_document(rec)
        doc["state"] = str(rec.state)
        doc["created_at"] = utc_iso(rec.created_at)
        doc["abort_reason"] = rec.abort_reason
        doc["attempts"] = [a.to_json() for a in rec.attempts]
        doc["revisions"] = revision_history(rec, await self.store.published_results(rec.id))
        return doc

    async def report(
        self, actor: Actor, inspection_id: str, lang: str, fmt: str
    ) -> tuple[bytes, str]:
        """The printable report (linectl.report): HTML or PDF bytes and their content type."""
        from linectl.report.render import render_report_async  # PDF libraries load on first use

        self.allow(actor, Action.READ)
        if lang not in LOCALES:
            raise Invalid("lang", f"lang must be one of {', '.join(LOCALES)}")
        if fmt not in ("html", "pdf"):
            raise Invalid("format", "format must be html or pdf")
        try:
            return await render_report_async(
                self.store, inspection_id, lang, "pdf" if fmt == "pdf" else "html",
                config=self.site.cfg,
            )  # fmt: skip
        except NotFound:
            raise Unknown(f"no inspection {inspection_id}") from None

    def events(
        self, actor: Actor, types: set[str] | None = None, maxsize: int = 1000
    ) -> Subscription:
        """The site's event stream, bounded: a slow reader loses the oldest events."""
        self.allow(actor, Action.READ)
        return self.site.events.subscribe(types, maxsize=maxsize)

    async def audit(
        self, actor: Actor, *, limit: int = 100, before: int | None = None
    ) -> list[dict[str, Any]]:
        """The journal, newest first (admin)."""
        self.allow(actor, Action.AUDIT)
        if not 1 <= limit <= 1000:
            raise Invalid("limit", "limit must be 1..1000")
        return [e.to_json() for e in await self.store.journal(limit, before_seq=before)]

    # --- registration -------------------------------------------------------------

    async def register_payload(self, actor: Actor, payload: bytes) -> dict[str, Any]:
        """`register` for raw bytes: size, UTF-8, nesting and JSON checked first."""
        obj, rid, error = decode_registration(payload)
        if error is not None:
            await self._check(actor, Action.REGISTER, None if rid is None else f"request:{rid}")
            return await self._refuse(actor, rid, error)
        return await self.register(actor, obj)

    async def register(self, actor: Actor, request: Any) -> dict[str, Any]:
        """Validate a registration and queue its inspection; the reply of mqtt.md.

        Never raises for what the request holds: a refusal is a reply naming the
        field. A request_id seen before gets the stored reply again and creates
        nothing, also across restarts. A request without a usable request_id is
        refused with `request_id` named, and that refusal is not kept. A request
        with `retest_of` is a retest (linectl.ops.retest), journalled as such."""
        if is_retest(request):
            return await self._retest(actor, request)
        rid = read_request_id(request)
        await self._check(actor, Action.REGISTER, None if rid is None else f"request:{rid}")
        async with self._register_lock:
            try:
                reg = parse_registration(request, require_request_id=True)
                line = self.site.line_for(reg)
            except InvalidField as e:
                # A request_id answered before gets that reply, whatever it holds now.
                known = None if rid is None else await self._known(rid)
                return known if known is not None else await self._refuse(actor, rid, e)
            # (The world of the demo learns a vehicle's body once, by plate: told
            # again of a repeated request, it changes nothing.)
            for listener in self.on_accept:
                listener(reg)
            # Journalled in the transaction that keeps the inspection and its reply.
            entry = self._entry(
                actor,
                "register",
                lambda reply: {
                    "target": f"inspection:{reply.get('inspection_id')}",
                    "changes": {
                        "request_id": rid,
                        "line": reply.get("line"),
                        "plate": reg.vehicle.plate,
                        "vin": reg.vehicle.vin,
                        "inspection_type": str(reg.inspection_type),
                        "items": reg.items,
                    },
                },
            )
            # A request_id answered before is found in the same transaction, not
            # looked up first: `admit` gives its stored reply (queued if left out).
            reply = await self.site.admit(reg, line, journal_for=entry)
        return reply

    async def _known(self, rid: str) -> dict[str, Any] | None:
        """The stored reply to `rid`, if any. A try cut short after the inspection was
        kept (cancelled with the MQTT session, say) left it out of its queue: queued now."""
        known = await self.store.registration_reply(rid)
        if known is not None:
            await self.site.queue_if_left_out(known)
        return known

    async def _refuse(
        self,
        actor: Actor,
        rid: str | None,
        error: InvalidField,
        action: str = "register",
        **changes: Any,
    ) -> dict[str, Any]:
        log.info("%s %s refused: %s", action, rid or "(no request_id)", error)
        reply = refused_reply(rid, error)
        if rid is None:
            return reply  # nobody to answer and nothing kept
        # Kept like any refusal: the same request_id gets the same reply.
        stored = await self.store.refuse_registration(rid, reply, self.clock.wall())
        await self.record(
            actor,
            action,
            outcome="refused",
            target=f"request:{rid}",
            changes={"request_id": rid, **changes, "error": error.as_error()},
        )
        return stored

    # --- retest -------------------------------------------------------------------

    async def _retest(self, actor: Actor, request: dict[str, Any]) -> dict[str, Any]:
        """A registration with `retest_of`: the same inspection again for some of its
        items, queued like any; the reply adds `retest_of`, `revision` and `items`."""
        rid = read_request_id(request)
        await self._check(actor, Action.RETEST, None if rid is None else f"request:{rid}")
        async with self._register_lock:
            known = None if rid is None else await self._known(rid)
            if known is not None:
                return known
            try:
                plan = await plan_retest(
                    self.store,
                    parse_retest(request),
                    site_id=self.site.id,
                    now=self.clock.wall(),
                    within_days=self.site.cfg.retest_within_days,
                )
                assert rid is not None  # parse_retest requires one
                reg = plan.registration(rid)
                line = self.site.line_for(reg)
                for listener in self.on_accept:
                    listener(reg)
                entry = self._entry(
                    actor,
                    "retest",
                    lambda reply: {
                        "target": f"inspection:{reg.retest_of}",
                        "changes": {
                            "request_id": rid,
                            "line": reply.get("line"),
                            "revision": reply.get("revision"),
                            "plate": reg.vehicle.plate,
                            "vin": reg.vehicle.vin,
                            "items": reg.items,
                            "items_given": reg.items_given,
                        },
                    },
                )
                reply = await self.site.admit_retest(reg, line, journal_for=entry)
            except InvalidField as e:
                retest_of = request.get("retest_of")
                shown = retest_of if isinstance(retest_of, str) else None
                return await self._refuse(actor, rid, e, "retest", retest_of=shown)
        return reply

    async def retest_defaults(self, actor: Actor, inspection_id: str) -> dict[str, Any]:
        """For a console's retest button: whether the inspection may be retested now
        (and the refusal if not), the items a retest repeats by default, every item
        that may be named, the revision it would publish, and whether `actor` may ask."""
        self.allow(actor, Action.READ)
        try:
            rec = await self.store.inspection(inspection_id)
        except NotFound:
            raise Unknown(f"no inspection {inspection_id}") from None
        within = self.site.cfg.retest_within_days
        deadline = None
        if within is not None:
            deadline = retest_deadline(await first_result_at(self.store, rec), within)
        doc = retest_defaults(rec, site_id=self.site.id, now=self.clock.wall(), deadline=deadline)
        doc["may_retest"] = actor.may(Action.RETEST)
        return doc

    # --- abort --------------------------------------------------------------------

    async def abort(self, actor: Actor, inspection_id: str, reason: Any) -> dict[str, Any]:
        """End a queued or running inspection `aborted` with a reason; its result goes
        out through the outbox."""
        target = f"inspection:{inspection_id}"
        await self._check(actor, Action.ABORT, target)
        try:
            text = clean_reason(reason, required=True)
            assert text is not None
            try:
                rec = await self.store.inspection(inspection_id)
            except NotFound:
                raise Unknown(f"no inspection {inspection_id}") from None
            if rec.state in FINISHED:
                raise Conflict(f"inspection {inspection_id} is already {rec.state}")
            line = self._line_of(rec.line, inspection_id)
            await self._in_control(actor, line.id)
            try:
                where = await line.abort(inspection_id, text)
            except NotAbortable as e:
                raise Conflict(str(e)) from None
        except (Invalid, Conflict) as e:
            await self.record(
                actor,
                "abort",
                outcome="refused",
                target=target,
                reason=reason if isinstance(reason, str) else None,
                changes={"error": e.as_error()},
            )
            raise
        await self.record(
            actor,
            "abort",
            target=target,
            reason=text,
            changes={"state": {"from": str(rec.state), "to": "aborted"}, "where": where},
        )
        return {"inspection_id": inspection_id, "state": "aborted", "was": where, "reason": text}

    def _line_of(self, line_id: str | None, inspection_id: str) -> LineRunner:
        try:
            return self.site.line(line_id or "")
        except KeyError:
            raise Conflict(f"inspection {inspection_id} is on no line of this site") from None

    # --- proxy drivers ------------------------------------------------------------

    async def set_duty(self, actor: Actor, driver_id: str, on_duty: Any) -> dict[str, Any]:
        """Check a proxy driver in (on duty, idle) or out (off duty). Refused while
        the driver has a vehicle. Who drives which vehicle is never chosen here."""
        target = f"driver:{driver_id}"
        await self._check(actor, Action.DUTY, target)
        try:
            if not isinstance(on_duty, bool):
                raise Invalid("on_duty", "on_duty must be true or false")
            try:
                line = self.site.proxy_driver_line(driver_id)
            except KeyError:
                raise Unknown(f"no proxy driver {driver_id}") from None
            await self._in_control(actor, line.id)
            d = line.pool.drivers[driver_id]
            before = d.state
            try:
                if on_duty and before in (DriverState.OFF_DUTY, DriverState.BREAK):
                    await line.pool.set_duty(driver_id, DriverState.IDLE)
                elif not on_duty and before is not DriverState.OFF_DUTY:
                    await line.pool.set_duty(driver_id, DriverState.OFF_DUTY)
            except ValueError as e:
                raise Conflict(str(e)) from None
        except (Invalid, Conflict) as e:
            await self.record(
                actor, "duty", outcome="refused", target=target, changes={"error": e.as_error()}
            )
            raise
        after = d.state
        changes = {"state": {"from": str(before), "to": str(after)}} if after != before else {}
        await self.record(actor, "duty", target=target, changes={"on_duty": on_duty, **changes})
        return {
            "id": driver_id,
            "line": line.id,
            "state": str(after),
            "on_duty": after not in (DriverState.OFF_DUTY, DriverState.BREAK),
        }

    async def check_in(self, actor: Actor, driver_id: str) -> dict[str, Any]:
        """A proxy driver is back at the start and ready, as an operator saw and pressed
        (a line whose `checkin` is `console`); journaled with who pressed it. Refused on
        another line's mode, or when the driver is not walking back to the start."""
        target = f"driver:{driver_id}"
        await self._check(actor, Action.DUTY, target)
        try:
            try:
                line = self.site.proxy_driver_line(driver_id)
            except KeyError:
                raise Unknown(f"no proxy driver {driver_id}") from None
            if line.pool.checkin != "console":
                raise Conflict(
                    f"line {line.id} learns its drivers' return by {line.pool.checkin}, "
                    "not at the console"
                )
            d = line.pool.drivers[driver_id]
            late = d.late
            if not await line.pool.check_in(driver_id):
                raise Conflict(f"{driver_id} is {d.state}, not walking back to the start")
        except Conflict as e:
            await self.record(
                actor, "checkin", outcome="refused", target=target, changes={"error": e.as_error()}
            )
            raise
        await self.record(
            actor, "checkin", target=target, changes={"state": str(d.state), "was_late": late}
        )
        return {"id": driver_id, "line": line.id, "state": str(d.state)}

    # --- lines --------------------------------------------------------------------

    async def pause(self, actor: Actor, line_id: str, reason: Any = None) -> dict[str, Any]:
        """The line calls no new vehicle until resumed; those on it finish."""
        return await self._pause_or_resume(actor, line_id, reason, pause=True)

    async def resume(self, actor: Actor, line_id: str, reason: Any = None) -> dict[str, Any]:
        return await self._pause_or_resume(actor, line_id, reason, pause=False)

    async def _pause_or_resume(
        self, actor: Actor, line_id: str, reason: Any, *, pause: bool
    ) -> dict[str, Any]:
        action = Action.PAUSE if pause else Action.RESUME
        target = f"line:{line_id}"
        await self._check(actor, action, target)
        try:
            text = clean_reason(reason, required=False)
            try:
                line = self.site.line(line_id)
            except KeyError:
                raise Unknown(f"no line {line_id}") from None
            await self._in_control(actor, line.id)
        except (Invalid, Conflict) as e:
            await self.record(
                actor,
                str(action),
                outcome="refused",
                target=target,
                changes={"error": e.as_error()},
            )
            raise
        changed = line.pause() if pause else line.resume()
        await self.record(
            actor,
            str(action),
            target=target,
            reason=text,
            changes={"paused": {"from": not pause, "to": pause}} if changed else {},
        )
        return {"line": line.id, "paused": line.paused, "changed": changed}

    async def maintenance(
        self, actor: Actor, line_id: str, station_id: str, on: Any, reason: Any = None
    ) -> dict[str, Any]:
        """Put a station in maintenance (`on`, a reason required) or take it back.

        Meanwhile its alarms are suppressed and the line calls no vehicle that needs
        it; the one on it finishes. Not bound to who controls the line: a technician
        working on a station must be able to say so whoever runs the line."""
        target = f"station:{line_id}/{station_id}"
        await self._check(actor, Action.MAINTENANCE, target)
        try:
            if not isinstance(on, bool):
                code = "missing_field" if on is None else "invalid"
                raise Invalid("on", "on must be true or false", code)
            text = clean_reason(reason, required=on)
            line = self.site_line(line_id)
            if station_id not in {s.procedure.id for s in line.slots}:
                raise Unknown(f"no station {station_id} on line {line_id}")
        except Invalid as e:
            await self.record(
                actor,
                str(Action.MAINTENANCE),
                outcome="refused",
                target=target,
                changes={"error": e.as_error()},
            )
            raise
        changed = line.set_maintenance(station_id, on, text or "")
        await self.record(
            actor,
            str(Action.MAINTENANCE),
            target=target,
            reason=text,
            changes={"maintenance": {"from": not on, "to": on}} if changed else {},
        )
        return {"line": line.id, "station": station_id, "maintenance": on, "changed": changed}

    # --- control of a line (linectl.ops.control) ------------------------------------

    def control_of(self, actor: Actor, line_id: str) -> Holder | None:
        """Who holds `line_id` now (None: nobody)."""
        self.allow(actor, Action.READ)
        self.site_line(line_id)
        return self.control.holder(line_id)

    def site_line(self, line_id: str) -> LineRunner:
        try:
            return self.site.line(line_id)
        except KeyError:
            raise Unknown(f"no line {line_id}") from None

    async def _in_control(self, actor: Actor, line_id: str) -> None:
        """Refuse (409 `controlled`) an action on a line another console session
        holds; a console session acting on a free line takes it."""
        other = self.control.held_by_other(actor, line_id)
        if other is not None:
            raise Conflict(
                f"line {line_id} is controlled by {other.user} (session {other.session}, "
                f"since {utc_iso(other.since)}): take control, with a reason, first",
                "controlled",
            )
        if console_session(actor) is None:
            return
        before, after = self.control.take(actor, line_id)
        if before is None:
            await self._control_changed(actor, line_id, None, after, None)

    async def _control_changed(
        self,
        actor: Actor,
        line_id: str,
        before: Holder | None,
        after: Holder | None,
        reason: str | None,
    ) -> None:
        def who(h: Holder | None) -> dict[str, Any] | None:
            return None if h is None else {"user": h.user, "session": h.session}

        await self.record(
            actor,
            "control",
            target=f"line:{line_id}",
            reason=reason,
            changes={"holder": {"from": who(before), "to": who(after)}},
        )
        self.site.events.publish("control", self.clock.wall(), line=line_id, holder=who(after))

    async def take_control(self, actor: Actor, line_id: str, reason: Any = None) -> dict[str, Any]:
        """The actor's console session holds `line_id` from now on. Taking it from
        another session needs a reason; both are journalled."""
        target = f"line:{line_id}"
        await self._check(actor, Action.PAUSE, target)
        try:
            self.site_line(line_id)
            if console_session(actor) is None:
                raise Conflict("only a console session holds control of a line", "no_session")
            other = self.control.held_by_other(actor, line_id)
            text = clean_reason(reason, required=other is not None)
        except (Invalid, Conflict) as e:
            await self.record(
                actor, "control", outcome="refused", target=target, changes={"error": e.as_error()}
            )
            raise
        before, after = self.control.take(actor, line_id)
        if before is None or before.session != after.session:
            await self._control_changed(actor, line_id, before, after, text)
        return {"line": line_id, "holder": after.to_json()}

    async def release_control(self, actor: Actor, line_id: str) -> dict[str, Any]:
        """Give up control of `line_id` if the actor's session holds it."""
        self.allow(actor, Action.READ)
        self.site_line(line_id)
        released = self.control.release(actor, line_id)
        if released is not None:
            await self._control_changed(actor, line_id, released, None, None)
        return {"line": line_id, "holder": None}

    async def signed_out(self, actor: Actor) -> None:
        """The actor's session ended: the lines it held are free (journalled)."""
        session = console_session(actor)
        if session is None:
            return
        for line_id in self.control.release_session(session):
            holder = Holder(actor.name, str(actor.role), session, None, self.clock.wall(), None)
            await self._control_changed(actor, line_id, holder, None, "signed out")
