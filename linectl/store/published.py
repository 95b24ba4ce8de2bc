"""Published results: every revision of every result, kept exactly as it went out.

The result payload is written here in the same transaction as its outbox row
(InspectionStore.complete_inspection), as the UTF-8 bytes the publisher
sends. The outbox keeps its own copy until the broker has it and may then be
pruned; this table keeps every revision for good, so a report can show an
inspection's history and a verification code over the very bytes the
registry received (`PublishedResultRecord.sha256`).

`revision_history` is the history shown by `linectl results ID`, the API and
the console: each published revision (what that visit tested, the verdict,
the retested items' verdicts and attempts), then the retest under way if any.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from linectl.clock import utc_iso
from linectl.store.base import StoreBase
from linectl.store.models import PublishedResult
from linectl.store.records import InspectionRecord


@dataclass(frozen=True)
class PublishedResultRecord:
    """One revision of a result: `payload` is the exact bytes published (UTF-8 JSON);
    `at` the time the result was committed, which is when it was issued."""

    inspection_id: str
    revision: int
    at: datetime
    payload: bytes

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = json.loads(self.payload)
        return doc

    def sha256(self) -> str:
        return hashlib.sha256(self.payload).hexdigest()


class PublishedResultStore(StoreBase):
    # -- published results ---------------------------------------------------------

    def published_results(self, inspection_id: str) -> list[PublishedResultRecord]:
        """Every revision published for this inspection, oldest first (empty: none yet,
        or no such inspection)."""
        with self._errors(), self._read() as s:
            rows = s.scalars(
                select(PublishedResult)
                .where(PublishedResult.inspection_id == inspection_id)
                .order_by(PublishedResult.revision)
            )
            return [
                PublishedResultRecord(r.inspection_id, r.revision, r.at, bytes(r.payload))
                for r in rows
            ]


def revision_history(
    record: InspectionRecord, published: list[PublishedResultRecord]
) -> list[dict[str, Any]]:
    """The inspection's revisions, oldest first: each published one as it went out,
    then the retest registered and not finished yet (`state` queued or in_progress)."""
    out: list[dict[str, Any]] = []
    for p in published:
        doc = p.document()
        retest = record.retest_for(p.revision)
        tested = list(retest.items) if retest is not None else list(record.items)
        items = {i.get("code"): i for i in doc.get("items", []) if isinstance(i, dict)}
        driver = doc.get("proxy_driver") or {}
        out.append(
            {
                "revision": p.revision,
                "state": "aborted" if "aborted" in doc else "completed",
                "published_at": utc_iso(p.at),
                "request_id": doc.get("request_id"),
                "retest": retest is not None,
                "verdict": doc.get("verdict"),
                "items_tested": tested,
                "tested": [
                    {
                        "code": code,
                        "verdict": items[code].get("verdict"),
                        "attempt": items[code].get("attempt"),
                    }
                    for code in tested
                    if code in items
                ],
                "proxy_driver": driver.get("id"),
                "sha256": p.sha256(),
            }
        )
    pending = record.pending_retest()
    if pending is not None:
        out.append(
            {
                "revision": pending.revision,
                "state": str(record.state),
                "published_at": None,
                "request_id": pending.request_id,
                "retest": True,
                "verdict": None,
                "items_tested": list(pending.items),
                "tested": [],
                "proxy_driver": record.draw.chosen if record.draw is not None else None,
                "sha256": None,
            }
        )
    return out
