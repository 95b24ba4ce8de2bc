"""Retest (复检): what a retest request may ask, and why one is refused.

A vehicle that failed comes back after repair and the registry (or an
operator) asks for a retest of the same inspection (mqtt.md, "Retest"): a
registration carrying `retest_of`. It goes through the same `register`
operation as any registration, and this module is its one validation:

- `unknown_inspection`: no such inspection at this site;
- `not_retestable`: not finished with verdict fail or incomplete (an aborted
  inspection counts as incomplete, whatever its items say), or a retest of
  it is already queued or running;
- `vin_mismatch`: `vehicle.vin` is not the inspection's VIN;
- `retest_expired`: later than `retest_within_days` (site config) after the
  inspection's first result;
- `invalid_items`: given items that are not items of that inspection.

Without `items`, a retest repeats every item whose latest verdict is fail
or not judged, and every axle item B1..Bn as well when BT is among them (the
whole-vehicle rate needs every axle measured in the same visit), and on a
four-lamp system every lamp item when one is among them (the pair rule
weighs the lamps measured in the same visit). Given items
are taken as given. The rest of the vehicle comes from the inspection.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from linectl.clock import utc_iso
from linectl.items import LAMP_ITEMS, InspectionVerdict, Verdict, sort_items
from linectl.registration import Registration, check_request_id, refuse_driver_choice
from linectl.store.base import NotFound
from linectl.store.records import InspectionRecord, InspectionState
from linectl.store.repo import AsyncStore
from linectl.vehicle import InvalidField

INSPECTION_ID_MAX = 64
RETESTABLE_VERDICTS = (InspectionVerdict.FAIL, InspectionVerdict.INCOMPLETE)


@dataclass(frozen=True)
class RetestRequest:
    """A retest request as received: checked for shape, not yet against the inspection."""

    request_id: str
    retest_of: str
    vin: Any
    items: Any  # None: the default items


@dataclass(frozen=True)
class RetestPlan:
    """A retest that may go ahead: the inspection, the items, the revision to come."""

    record: InspectionRecord
    items: list[str]
    items_given: bool

    @property
    def revision(self) -> int:
        return self.record.revision + 1

    def registration(self, request_id: str) -> Registration:
        rec = self.record
        return Registration(
            request_id, rec.inspection_type, rec.vehicle, self.items, self.items_given, rec.id
        )


def is_retest(request: Any) -> bool:
    return isinstance(request, dict) and "retest_of" in request


def parse_retest(obj: dict[str, Any]) -> RetestRequest:
    """The request's fields, or `InvalidField` naming the first that is unusable."""
    refuse_driver_choice(obj)
    rid = check_request_id(obj, required=True)
    assert rid is not None
    retest_of = obj.get("retest_of")
    if (
        not isinstance(retest_of, str)
        or not 0 < len(retest_of) <= INSPECTION_ID_MAX
        or not retest_of.isprintable()
    ):
        raise InvalidField(
            "unknown_inspection", "retest_of", "retest_of must be the id of an inspection"
        )
    vehicle = obj.get("vehicle")
    if vehicle is None:
        raise InvalidField("missing_field", "vehicle", "vehicle (with its vin) is required")
    if not isinstance(vehicle, dict):
        raise InvalidField("invalid_shape", "vehicle", "vehicle must be an object")
    if vehicle.get("vin") is None:
        raise InvalidField("missing_field", "vehicle.vin", "vin is required")
    return RetestRequest(rid, retest_of, vehicle["vin"], obj.get("items"))


def default_items(rec: InspectionRecord) -> list[str]:
    """Every item whose latest verdict is not pass, all axle items with BT, and on a
    four-lamp system every lamp item with any of them (the pair rule weighs the
    lamps measured in one visit, as BT the axles)."""
    verdicts = rec.item_verdicts()
    items = [code for code, v in verdicts.items() if v is not Verdict.PASS]
    if "BT" in items:
        items += [f"B{n}" for n in range(1, rec.vehicle.axles + 1)]
    if rec.vehicle.headlamp_system == 4 and any(c in LAMP_ITEMS.values() for c in items):
        items += [c for c in LAMP_ITEMS.values() if c in verdicts]
    return sort_items(list(dict.fromkeys(items)))


def not_retestable(rec: InspectionRecord) -> str | None:
    """Why this inspection cannot be retested now (None: it can)."""
    pending = rec.pending_retest()
    if pending is not None:
        return (
            f"a retest of inspection {rec.id} (revision {pending.revision}) is already {rec.state}"
        )
    if rec.state is InspectionState.ABORTED:
        return None  # counts as incomplete
    if rec.state is not InspectionState.COMPLETED:
        return f"inspection {rec.id} is still {rec.state}"
    if rec.verdict not in RETESTABLE_VERDICTS:
        return f"inspection {rec.id} passed: there is nothing to retest"
    return None


def retest_deadline(first_result_at: datetime | None, within_days: float | None) -> datetime | None:
    if first_result_at is None or within_days is None:
        return None
    return first_result_at + timedelta(days=within_days)


def check_retest(
    req: RetestRequest,
    rec: InspectionRecord,
    *,
    site_id: str,
    now: datetime,
    deadline: datetime | None,
) -> RetestPlan:
    """The plan for `req` against its inspection, or `InvalidField` with the refusal."""
    if rec.site != site_id:
        raise InvalidField("unknown_inspection", "retest_of", f"no inspection {req.retest_of}")
    why = not_retestable(rec)
    if why is not None:
        raise InvalidField("not_retestable", "retest_of", why)
    if req.vin != rec.vin:
        raise InvalidField(
            "vin_mismatch", "vehicle.vin", f"the VIN is not that of inspection {rec.id}"
        )
    if deadline is not None and now > deadline:
        raise InvalidField(
            "retest_expired",
            "retest_of",
            f"retests of inspection {rec.id} were taken until {utc_iso(deadline)}",
        )
    if req.items is None:
        items = default_items(rec)
        if not items:
            raise InvalidField(
                "not_retestable",
                "retest_of",
                f"every item of inspection {rec.id} passed: name the items to retest",
            )
        return RetestPlan(rec, items, items_given=False)
    codes = req.items
    if not isinstance(codes, list) or not codes or not all(isinstance(c, str) for c in codes):
        raise InvalidField(
            "invalid_items", "items", "items must be a non-empty list of the inspection's items"
        )
    own = rec.all_items()
    foreign = sorted({c for c in codes if c not in own})
    if foreign:
        shown = ", ".join(c[:8] for c in foreign[:8])
        raise InvalidField(
            "invalid_items",
            "items",
            f"item(s) {shown} are not items of inspection {rec.id} ({', '.join(own)})",
        )
    return RetestPlan(rec, sort_items(codes), items_given=True)


async def plan_retest(
    store: AsyncStore,
    req: RetestRequest,
    *,
    site_id: str,
    now: datetime,
    within_days: float | None,
) -> RetestPlan:
    """`check_retest` with the inspection and its first result read from the store."""
    try:
        rec: InspectionRecord = await store.inspection(req.retest_of)
    except NotFound:
        raise InvalidField(
            "unknown_inspection", "retest_of", f"no inspection {req.retest_of}"
        ) from None
    deadline = None
    if within_days is not None:
        deadline = retest_deadline(await first_result_at(store, rec), within_days)
    return check_retest(req, rec, site_id=site_id, now=now, deadline=deadline)


async def first_result_at(store: AsyncStore, rec: InspectionRecord) -> datetime | None:
    """When the inspection's first result was issued (its finish time, for a result
    published before results were kept)."""
    published = await store.published_results(rec.id)
    if published:
        at: datetime = published[0].at
        return at
    return rec.finished_at if rec.revision >= 1 else None


def retest_defaults(
    rec: InspectionRecord, *, site_id: str, now: datetime, deadline: datetime | None
) -> dict[str, Any]:
    """What a console needs to offer a retest: whether it may be asked now (and why
    not), the items it would repeat by default, and every item that may be named."""
    refusal: dict[str, str] | None = None
    items: list[str] = []
    try:
        plan = check_retest(
            RetestRequest("(console)", rec.id, rec.vin, None),
            rec,
            site_id=site_id,
            now=now,
            deadline=deadline,
        )
        items = plan.items
    except InvalidField as e:
        refusal = {"code": e.code, "message": e.message}
        items = default_items(rec)
    return {
        "inspection_id": rec.id,
        "plate": rec.plate,
        "vin": rec.vin,
        "retestable": refusal is None,
        "refusal": refusal,
        "items": items,
        "item_verdicts": {c: str(v) for c, v in rec.item_verdicts().items()},
        "all_items": rec.all_items(),
        "revision": rec.revision + 1,
        "expires_at": None if deadline is None else utc_iso(deadline),
    }
