"""What the console shows, read from the site through the operations layer.

`Views` sits beside `Operations` (and uses its rights and journal): the
board's snapshot of every line (stations with their plate, prompt and
devices; the queue with waiting times; the proxy-driver pool; the day's
figures), an inspection's page (the report model plus every attempt), and
the account's language preference. It reads the site's state; it changes
nothing but the preference, which is journalled like any account change.
Nothing here names or chooses a proxy driver: the pool is shown as it is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from linectl.alarms import state as sm
from linectl.drivers.lineio_modbus import prompt_name
from linectl.i18n import LOCALES
from linectl.items import InspectionVerdict
from linectl.ops.actor import Action, Actor
from linectl.ops.errors import Invalid, Unknown
from linectl.ops.operations import Operations
from linectl.ops.story import Step, story
from linectl.report.model import Report, build_report
from linectl.report.published import verification_code
from linectl.scheduler.line import LineRunner
from linectl.store.base import NotFound
from linectl.store.published import revision_history
from linectl.store.records import InspectionRecord, InspectionSummary

RATE_WINDOW_S = 3600.0  # the board's rate: vehicles over the last hour (clock time)
RATE_AFTER_S = 600.0  # no rate before the line has run this long: a few cars say nothing


def exceptions(line: dict[str, Any]) -> list[dict[str, Any]]:
    """What on a line is not as it should be, for the overview that shows only that:
    its annunciated alarms (linectl.alarms) first, highest priority first, the line paused, its I/O or a station's device not answering, a station
    blocked, vehicles waiting with no proxy driver on duty. Empty: all normal."""
    found: list[dict[str, Any]] = []
    for a in line["alarms"]:
        found.append({"kind": "alarm", "alarm": a})
    if line["paused"]:
        found.append({"kind": "paused"})
    io_id, io_ok = line["io"]
    if not io_ok:
        found.append({"kind": "device_down", "device": io_id, "station": None})
    for st in line["stations"]:
        for dev, ok in st["devices"]:
            if not ok:
                found.append({"kind": "device_down", "device": dev, "station": st["id"]})
        if st["state"] == "blocked":
            found.append({"kind": "blocked", "station": st["id"], "plate": st["plate"]})
    on_duty = [d for d in line["drivers"] if d["state"] not in ("off_duty", "break")]
    if line["queue"] and not on_duty:
        found.append({"kind": "no_driver", "waiting": len(line["queue"])})
    return found


@dataclass(frozen=True)
class InspectionPage:
    report: Report  # items with their values, limits and plots (linectl.report)
    record: InspectionRecord  # every attempt
    # linectl.store.published.revision_history, each with its verification code and
    # `published_at` as a datetime
    revisions: list[dict[str, Any]]
    story: list[Step] = field(default_factory=list)  # what happened, by whom (linectl.ops.story)


class Views:
    def __init__(self, ops: Operations) -> None:
        self.ops = ops
        self.site = ops.site
        self.clock = ops.site.clock

    # --- the board ------------------------------------------------------------------

    def board(self, actor: Actor) -> list[dict[str, Any]]:
        """Every line as the board shows it, in the config's order."""
        self.ops.allow(actor, Action.READ)
        return [self.line(ln) for ln in self.site.lines]

    def line(self, ln: LineRunner) -> dict[str, Any]:
        now, wall = self.clock.now(), self.clock.wall()
        stations = []
        for k, slot in enumerate(ln.slots):
            shown = ln.io.shown(k)
            stations.append(
                {
                    "id": slot.procedure.id,
                    "kind": slot.kind,
                    "state": slot.state,
                    "plate": slot.plate,
                    "inspection_id": slot.inspection_id,
                    "devices": sorted(slot.procedure.device_health().items()),
                    "maintenance": slot.procedure.id in ln.maintenance,
                    "maintenance_reason": ln.maintenance.get(slot.procedure.id),
                    "prompt": (
                        None
                        if shown is None or shown.code == 0
                        else {"name": prompt_name(shown.code), "text": shown.text}
                    ),
                }
            )
        queue = [
            {
                "inspection_id": q.inspection_id,
                "plate": q.plate,
                "queued_at": wall - timedelta(seconds=now - q.times.queued),
            }
            for q in ln.queued()
        ]
        drivers = [
            {
                "id": d.id,
                "name": d.name,
                "state": str(d.state),
                "plate": d.plate,
                "inspection_id": d.inspection_id,
                "late": d.late,
            }
            for d in ln.pool.drivers.values()
        ]
        figures = ln.report()
        done = ln.stats.completions
        ran = now - ln.stats.started
        rate = None
        if ran >= RATE_AFTER_S:
            window = min(RATE_WINDOW_S, ran)
            rate = round(sum(1 for t in done if t > now - window) / window * 3600, 1)
        shown = {
            "id": ln.id,
            "paused": ln.paused,
            "io": (ln.io.id, ln.io.health.ok),
            "stations": stations,
            "queue": queue,
            "drivers": drivers,
            "checkin": ln.pool.checkin,
            "assignment": ln.pool.policy.label(),
            "draw_choice": ln.pool.choice(),
            "rate_per_hour": rate,
            "bound_per_hour": figures["bound_per_hour"],
            "limited_by": figures["limited_by"],
            "now": wall,
            "control": self.ops.control.holder(ln.id),
            # Annunciated alarms of the line and the site (not shelved, suppressed or out
            # of service: ISA-18.2 keeps those off the operator's screen).
            "alarms": [a for a in self.site.alarms.open_alarms(ln.id) if a.state in sm.ANNUNCIATED],
        }
        shown["exceptions"] = exceptions(shown)
        return shown

    def midnight(self) -> datetime:
        """The start of the site's day, by the site clock in the site's time zone."""
        local = self.clock.wall().astimezone(self.site.cfg.tz())
        return local.replace(hour=0, minute=0, second=0, microsecond=0)

    async def today(self, actor: Actor) -> dict[str, dict[str, int]]:
        """Inspections finished today per line and outcome (pass, fail, incomplete, aborted)."""
        self.ops.allow(actor, Action.READ)
        counts: dict[str, dict[str, int]] = await self.site.store.finished_counts(self.midnight())
        return counts

    # --- the inspection list ---------------------------------------------------------

    async def search(
        self,
        actor: Actor,
        *,
        plate: str | None = None,
        vin: str | None = None,
        verdict: str | None = None,
        day_from: date | None = None,
        day_to: date | None = None,
        limit: int = 100,
    ) -> list[InspectionSummary]:
        """Inspections by plate or VIN (any part), verdict and registration days (site
        time, both included), newest first."""
        self.ops.allow(actor, Action.READ)
        if verdict is not None and verdict not in tuple(InspectionVerdict):
            raise Invalid("verdict", f"verdict must be one of {', '.join(InspectionVerdict)}")
        tz = self.site.cfg.tz()

        def start(d: date) -> datetime:
            at = datetime.combine(d, time())
            return at.replace(tzinfo=tz) if tz else at.astimezone()

        rows: list[InspectionSummary] = await self.site.store.list_inspections(
            limit=limit,
            plate=plate or None,
            vin=vin or None,
            verdict=verdict,
            since=start(day_from) if day_from else None,
            until=start(day_to + timedelta(days=1)) if day_to else None,
        )
        return rows

    # --- one inspection -------------------------------------------------------------

    async def inspection(self, actor: Actor, inspection_id: str) -> InspectionPage:
        """The report model (values, limits, plots), the record (every attempt) and the
        revision history: each published revision, then the retest under way if any."""
        self.ops.allow(actor, Action.READ)
        store = self.site.store.store
        limits = self.site.limits
        name = getattr(self.site.cfg, "site_name", None)

        def read() -> InspectionPage:
            record = store.inspection(inspection_id)
            report = build_report(store, inspection_id, limits=limits, site_name=name)
            published = store.published_results(inspection_id)
            by_revision = {p.revision: p for p in published}
            revisions = []
            for h in revision_history(record, published):
                p = by_revision.get(h["revision"])
                # The page shows times in the site's zone: the datetime, not its text.
                revisions.append(
                    {
                        **h,
                        "published_at": None if p is None else p.at,
                        "code": None if p is None else verification_code(p.payload),
                    }
                )
            return InspectionPage(report, record, revisions)

        try:
            # Its own thread: the curves are unpacked and laid out off the event loop.
            page = await asyncio.to_thread(read)
        except NotFound:
            raise Unknown(f"no inspection {inspection_id}") from None
        return replace(page, story=await story(self.ops, actor, page.record))

    # --- the account's language -----------------------------------------------------

    async def set_language(self, actor: Actor, lang: str | None) -> str | None:
        """The console's language for the actor's account ("zh", "en", or None: the
        browser's). Journalled as `user.locale`."""
        self.ops.allow(actor, Action.READ)
        if not actor.is_account:
            raise Invalid("lang", "only an account has a language preference")
        if lang is not None and lang not in LOCALES:
            raise Invalid("lang", f"lang must be one of {', '.join(LOCALES)}")
        try:
            await self.site.store.set_locale(actor.name, lang)
        except NotFound:
            raise Unknown(f"no account {actor.name}") from None
        await self.ops.record(
            actor, "user.locale", target=f"user:{actor.name}", changes={"locale": lang}
        )
        return lang
