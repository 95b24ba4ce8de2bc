"""The published results of an inspection, one per revision, and their verification codes.

Every revision of a result is kept by the store exactly as published
(`Store.published_results`: the UTF-8 bytes of the MQTT payload, for good,
while outbox rows are pruned once delivered), and the registry keeps what it
received by (inspection_id, revision). When the outbox row of a revision is
still there, it says when the broker acknowledged it.

The verification code printed on a report is the first `CODE_LENGTH`
lowercase hex digits of SHA-256 over those payload bytes: a registry that
hashes the message it received gets the same digits, and so can tell that a
paper report shows what it was sent.
"""

from __future__ import annotations

import hashlib
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
    delivered_at: datetime | None  # acknowledged by the broker (None: not yet, or pruned)
    payload: bytes  # exactly as published: UTF-8 JSON
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
    delivered = {
        row.revision: row.delivered_at
        for row in store.outbox(inspection_id)
        if row.kind == OUTBOX_RESULT
    }
    return [
        Published(p.revision, p.at, delivered.get(p.revision), p.payload, p.document())
        for p in store.published_results(inspection_id)
    ]


def retested_items(history: list[Published]) -> list[list[str]]:
    """For each revision, the items it measured again: a retest's result names them
    (`retested_items`); otherwise those whose attempt differs from the previous
    revision's (the first revision measured every tested item)."""
    out: list[list[str]] = []
    before: dict[str, int] = {}
    for p in history:
        now = p.attempts()
        named = p.document.get("retested_items")
        if isinstance(named, list) and all(isinstance(c, str) for c in named):
            out.append(list(named))
        else:
            out.append([c for c, n in now.items() if n and n != before.get(c)])
        before = now
    return out
