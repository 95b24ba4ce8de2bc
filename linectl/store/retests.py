"""Retests: a vehicle's later visit for an inspection it did not pass.

A retest is kept as its own row (the request that asked for it, the items it
repeats, the revision its result will carry) beside the inspection it
retests, which goes back to `registered`, then `queued`, for the visit: the
inspection row always says where the vehicle is now, while its verdict and
revision stay those of the last result until the retest completes. Its
attempts number on from the earlier ones per item, and completing it
(InspectionStore.complete_inspection) publishes the next revision with every
item's latest attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from linectl.store.base import DuplicateRequest, StoreBase, get_inspection, jsonable, utc
from linectl.store.journal import append_entry
from linectl.store.models import Draw, Registration, Retest
from linectl.store.records import InspectionState, RetestRecord

FINISHED = (str(InspectionState.COMPLETED), str(InspectionState.ABORTED))


class NotRetestable(Exception):
    """The inspection is not finished, or a retest of it is already under way."""


def retest_record(r: Retest) -> RetestRecord:
    return RetestRecord(
        inspection_id=r.inspection_id,
        revision=r.revision,
        request_id=r.request_id,
        items=list(r.items),
        line=r.line,
        registered_at=r.registered_at,
    )


class RetestStore(StoreBase):
    # -- retests -------------------------------------------------------------------

    def create_retest(
        self,
        *,
        inspection_id: str,
        request_id: str,
        items: list[str],
        line: str,
        at: datetime,
        reply_for: Callable[[int], dict[str, Any]],
        journal_for: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> RetestRecord:
        """Keep a retest and its registration reply (`reply_for(revision)`), and make
        the inspection `registered` again for `line`, in one transaction; the site
        then queues it (`set_state`), as it does a new registration.

        `DuplicateRequest` when the request_id is known (nothing is changed then);
        `NotRetestable` unless the inspection is finished with no retest pending.
        Verdict and revision stay the last result's until the retest completes.
        `journal_for(reply)` gives the journal entry kept in the same transaction
        (as `create_inspection` has it)."""
        at = utc(at)

        def work(s: Session) -> RetestRecord:
            known = s.get(Registration, request_id)
            if known is not None:
                raise DuplicateRequest(dict(known.reply))
            row = get_inspection(s, inspection_id)
            if row.state not in FINISHED:
                raise NotRetestable(f"inspection {inspection_id} is {row.state}")
            revision = row.revision + 1
            retest = Retest(
                inspection_id=inspection_id,
                revision=revision,
                request_id=request_id,
                items=list(items),
                line=line,
                registered_at=at,
                after_draw_seq=s.scalar(select(func.max(Draw.seq))) or 0,
            )
            s.add(retest)
            reply = reply_for(revision)
            s.add(
                Registration(
                    request_id=request_id,
                    received_at=at,
                    inspection_id=inspection_id,
                    reply=jsonable(reply),
                )
            )
            # The new visit: the earlier one's times, driver and abort are in its result.
            row.state = str(InspectionState.REGISTERED)
            row.line = line
            row.started_at = None
            row.finished_at = None
            row.abort_reason = None
            row.proxy_driver_id = None
            if journal_for is not None:
                append_entry(s, **journal_for(reply))
            s.flush()
            return retest_record(retest)

        return self._write_retrying(work)

    def retests(self, inspection_id: str) -> list[RetestRecord]:
        """The retests of one inspection, oldest first."""
        with self._errors(), self._read() as s:
            rows = s.scalars(
                select(Retest)
                .where(Retest.inspection_id == inspection_id)
                .order_by(Retest.revision)
            )
            return [retest_record(r) for r in rows]
