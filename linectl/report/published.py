"""The published results of an inspection, one per revision, and their verification codes.

A result document is published exactly as its outbox row stores it: the
MQTT payload is the row's JSON text encoded as UTF-8, and the registry keeps
what it received by (inspection_id, revision). Today every revision has its
own outbox row, so the rows of one inspection are its revision history; this
module is the one place that knows it, for the day the store keeps the
published results elsewhere.

The verification code printed on a report is the first `CODE_LENGTH`
lowercase hex digits of SHA-256 over those payload bytes: a registry that
hashes the message it received gets the same digits, and so can tell that a
paper report shows what it was sent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from linectl.store.repo import OUTBOX_RESULT, Store

CODE_LENGTH = 12


def verification_code(payload: bytes | str) -> str:
    """The first CODE_LENGTH hex digits of SHA-256 over the published payload bytes."""
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    return hashlib.sha256(data).hexdigest()[:CODE_LENGTH]


@dataclass(frozen=True)
class Published:
    """One revision's result as it went out (or waits to go out) to the registry."""

    revision: int
    published_at: datetime  # committed with its outbox row
    delivered_at: datetime | None  # acknowledged by the broker
    payload: str  # the JSON text, exactly as published (UTF-8)
    document: dict[str, Any]

    @property
    def code(self) -> str:
        return verification_code(self.payload)

    @property
    def verdict(self) -> str | None:
        v = self.document.get("verdict")
        return v if isinstance(v, str) else None

    def attempts(self) -> dict[str, int]:
        """Which attempt of each item this revision carries (0: never tested)."""
        return {
            str(i["code"]): int(i.get("attempt") or 0)
            for i in self.document.get("items", [])
            if isinstance(i, dict) and "code" in i
        }


def published_results(store: Store, inspection_id: str) -> list[Published]:
    """Every published result of the inspection, oldest revision first."""
    out: list[Published] = []
    for row in store.outbox(inspection_id):
        if row.kind != OUTBOX_RESULT:
            continue
        doc = json.loads(row.payload)
        revision = row.revision if row.revision is not None else int(doc.get("revision", 0))
        out.append(Published(revision, row.created_at, row.delivered_at, row.payload, doc))
    out.sort(key=lambda p: p.revision)
    return out


def retested_items(history: list[Published]) -> list[list[str]]:
    """For each revision, the items it measured again: those whose attempt differs
    from the previous revision's (the first revision measured every tested item)."""
    out: list[list[str]] = []
    before: dict[str, int] = {}
    for p in history:
        now = p.attempts()
        out.append([c for c, n in now.items() if n and n != before.get(c)])
        before = now
    return out
