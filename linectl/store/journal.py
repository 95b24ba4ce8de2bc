"""The journal: one append-only, hash-chained table of every action that changed something.

Who (account and role, or the registry, the local command line, the daemon
itself), from which terminal (how it came: http, mqtt, cli, system; the
client address; the console session or bearer token), when, the action, its
target (`inspection:ID`, `line:L1`, `driver:D3`, `user:NAME`), the reason
given, what changed, and the outcome (`ok`, `refused`, `denied`, `error`).
Each entry is chained like the draws (linectl.store.chain): `linectl audit
verify` re-checks it and names an entry that was altered or deleted.

Entries are written by the operations layer (linectl.ops) after the action,
with its outcome, never by a transport.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from linectl.clock import utc_iso
from linectl.store.base import StoreBase, jsonable, to_ms
from linectl.store.chain import chain_hash, verify_chain
from linectl.store.models import JournalEntry
from linectl.store.records import GENESIS_HASH, ChainReport

OUTCOMES = ("ok", "refused", "denied", "error")


@dataclass(frozen=True)
class JournalRecord:
    seq: int
    at: datetime
    user: str
    role: str
    via: str
    address: str | None
    session: str | None
    action: str
    target: str | None
    reason: str | None
    changes: dict[str, Any] = field(default_factory=dict)
    outcome: str = "ok"
    prev_hash: str = GENESIS_HASH
    hash: str = ""

    def content(self) -> dict[str, Any]:
        """What the hash covers: every field but the hashes, `at` as ISO UTC (ms)."""
        return {
            "seq": self.seq,
            "at": utc_iso(self.at),
            "user": self.user,
            "role": self.role,
            "via": self.via,
            "address": self.address,
            "session": self.session,
            "action": self.action,
            "target": self.target,
            "reason": self.reason,
            "changes": self.changes,
            "outcome": self.outcome,
        }

    def content_hash(self) -> str:
        return chain_hash(self.content(), self.prev_hash)

    def to_json(self) -> dict[str, Any]:
        """http.md's journal entry, plus role, outcome and the link to the previous entry."""
        return {
            "seq": self.seq,
            "at": utc_iso(self.at),
            "user": self.user,
            "role": self.role,
            "terminal": {"via": self.via, "address": self.address, "session": self.session},
            "action": self.action,
            "target": self.target,
            "reason": self.reason,
            "changes": self.changes,
            "outcome": self.outcome,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


def _record(r: JournalEntry) -> JournalRecord:
    return JournalRecord(
        seq=r.seq,
        at=r.at,
        user=r.user_name,
        role=r.role,
        via=r.via,
        address=r.address,
        session=r.session_id,
        action=r.action,
        target=r.target,
        reason=r.reason,
        changes=dict(r.changes),
        outcome=r.outcome,
        prev_hash=r.prev_hash,
        hash=r.hash,
    )


def check_entry(fields: dict[str, Any]) -> None:
    """Refuse an entry `append_entry` would refuse, before any transaction begins."""
    outcome = fields.get("outcome", "ok")
    if outcome not in OUTCOMES:
        raise ValueError(f"journal outcome {outcome!r} is not one of {', '.join(OUTCOMES)}")


def append_entry(
    s: Session,
    *,
    at: datetime,
    user: str,
    role: str,
    via: str,
    action: str,
    outcome: str = "ok",
    address: str | None = None,
    session: str | None = None,
    target: str | None = None,
    reason: str | None = None,
    changes: dict[str, Any] | None = None,
) -> JournalRecord:
    """Append one entry to the chain inside `s`, a write transaction that holds the
    writers' lock (`StoreBase._write_retrying`): next seq, linked to the last hash.
    Other stores call it to journal an action in the transaction that does it."""
    check_entry({"outcome": outcome})
    at = to_ms(at)
    # Stored exactly as hashed: plain JSON values only.
    plain: dict[str, Any] = jsonable(changes or {})
    last = s.scalars(select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)).first()
    unsealed = JournalRecord(
        seq=1 if last is None else last.seq + 1,
        at=at,
        user=user,
        role=role,
        via=via,
        address=address,
        session=session,
        action=action,
        target=target,
        reason=reason,
        changes=plain,
        outcome=outcome,
        prev_hash=GENESIS_HASH if last is None else last.hash,
    )
    rec = replace(unsealed, hash=unsealed.content_hash())
    s.add(
        JournalEntry(
            seq=rec.seq,
            at=rec.at,
            user_name=rec.user,
            role=rec.role,
            via=rec.via,
            address=rec.address,
            session_id=rec.session,
            action=rec.action,
            target=rec.target,
            reason=rec.reason,
            changes=rec.changes,
            outcome=rec.outcome,
            prev_hash=rec.prev_hash,
            hash=rec.hash,
        )
    )
    return rec


class JournalStore(StoreBase):
    # -- journal -------------------------------------------------------------------

    def append_journal(self, **fields: Any) -> JournalRecord:
        """Append one entry to the chain (next seq, linked to the last hash); the
        fields of `append_entry`."""
        check_entry(fields)
        return self._write_retrying(lambda s: append_entry(s, **fields))

    def journal(
        self,
        limit: int = 100,
        *,
        before_seq: int | None = None,
        user: str | None = None,
        target: str | None = None,
        targets: list[str] | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[JournalRecord]:
        """Entries newest first, optionally one person's, one target's (or any of
        `targets`), one action's, from `since` and before `until`."""
        q = select(JournalEntry).order_by(JournalEntry.seq.desc())
        if before_seq is not None:
            q = q.where(JournalEntry.seq < before_seq)
        if user is not None:
            q = q.where(JournalEntry.user_name == user)
        if target is not None:
            q = q.where(JournalEntry.target == target)
        if targets is not None:
            q = q.where(JournalEntry.target.in_(targets))
        if action is not None:
            q = q.where(JournalEntry.action == action)
        if since is not None:
            q = q.where(JournalEntry.at >= since)
        if until is not None:
            q = q.where(JournalEntry.at < until)
        with self._errors(), self._read() as s:
            return [_record(r) for r in s.scalars(q.limit(limit))]

    def journal_head(self) -> JournalRecord | None:
        with self._errors(), self._read() as s:
            last = s.scalars(
                select(JournalEntry).order_by(JournalEntry.seq.desc()).limit(1)
            ).first()
            return None if last is None else _record(last)

    def verify_journal(self) -> ChainReport:
        """Recompute every hash and link of the journal, in seq order (see
        linectl.store.chain); names the first entry altered or deleted."""
        with self._errors(), self._read() as s:
            rows = s.scalars(select(JournalEntry).order_by(JournalEntry.seq)).yield_per(1000)
            return verify_chain((_record(r) for r in rows), "journal entry")
