"""Hash chains: the one way an append-only table proves it was not altered.

A chained record has a `seq` (1, 2, 3, ... without gaps), the `prev_hash` of
the record before it (the genesis hash for the first) and its own `hash`:
SHA-256 over its canonical content (sorted-key compact JSON, times as ISO
UTC in ms) followed by `prev_hash`. The draw chain and the journal are both
kept this way; `verify_chain` re-checks either and names the first record
that no longer fits: a gap (deleted), a broken link, or altered content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, Protocol

from linectl.store.records import GENESIS_HASH, ChainReport


def canonical_json(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def chain_hash(content: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 hex of the canonical content followed by prev_hash."""
    return hashlib.sha256(canonical_json(content) + prev_hash.encode("ascii")).hexdigest()


class Chained(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def prev_hash(self) -> str: ...
    @property
    def hash(self) -> str: ...
    def content_hash(self) -> str: ...


def verify_chain(records: Iterable[Chained], what: str) -> ChainReport:
    """Walk `records` in seq order; stop at the first problem and name it.

    `what` names one record in messages ("draw", "journal entry"). The chain
    proves its own integrity only: records cut off its end, or the chain
    rewritten whole, need the head hash kept elsewhere to be seen."""
    checked = 0
    prev: Chained | None = None
    for rec in records:
        checked += 1
        expected_seq = 1 if prev is None else prev.seq + 1
        if rec.seq != expected_seq:
            missing = (
                f"{expected_seq}"
                if rec.seq == expected_seq + 1
                else f"{expected_seq}..{rec.seq - 1}"
            )
            return ChainReport(
                False,
                checked,
                expected_seq,
                f"{what} record(s) seq {missing} missing (deleted): seq {rec.seq} follows "
                + ("the start of the chain" if prev is None else f"seq {prev.seq}"),
            )
        expected_prev = GENESIS_HASH if prev is None else prev.hash
        if rec.prev_hash != expected_prev:
            return ChainReport(
                False,
                checked,
                rec.seq,
                f"{what} seq {rec.seq}: prev_hash does not link to "
                + ("the genesis hash" if prev is None else f"seq {prev.seq}'s hash"),
            )
        if rec.content_hash() != rec.hash:
            return ChainReport(
                False,
                checked,
                rec.seq,
                f"{what} seq {rec.seq}: content does not match its hash (altered)",
            )
        prev = rec
    return ChainReport(True, checked)
