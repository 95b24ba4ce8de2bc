"""What every part of the store shares: sessions, schema, errors and value helpers.

`StoreBase` owns the engine, the transaction helpers (`_read`, `_write`,
`_write_retrying`) and the schema calls. Each concern of the store
(inspections, draws, proxy drivers, outbox) is a class built on it in its own
module; `linectl.store.repo.Store` puts them together.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from linectl.store import db
from linectl.store.db import StoreError
from linectl.store.models import Inspection

T = TypeVar("T")

# How often a numbering write is tried when a unique key refuses its row.
_RETRIES = 5
# Any constant, distinct from the migration lock: the queue for numbering writes.
_PG_SEQUENCE_LOCK = 0x6C696E66


class DuplicateRequest(Exception):
    """This request_id is known: `reply` is the reply it got the first time."""

    def __init__(self, reply: dict[str, Any]) -> None:
        super().__init__(f"request {reply.get('request_id')!r} was already answered")
        self.reply = reply


class NotFound(LookupError):
    """No such inspection, attempt or proxy driver; `str()` says which."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "not found"


def utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"naive datetime {at.isoformat()}: pass an aware (UTC) datetime")
    return at.astimezone(UTC)


def to_ms(at: datetime) -> datetime:
    """The draw chain hashes milliseconds: store exactly what is hashed."""
    at = utc(at)
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def jsonable(obj: Any) -> Any:
    """`obj` as plain JSON values: numpy scalars and arrays become Python ones, and a
    non-finite float becomes null (JSON has no NaN; PostgreSQL refuses it)."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return jsonable(obj.item())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj: Any) -> str:
    return db.json_text(jsonable(obj))


def get_inspection(s: Session, inspection_id: str) -> Inspection:
    row = s.get(Inspection, inspection_id)
    if row is None:
        raise NotFound(f"no inspection {inspection_id}")
    return row


class StoreBase:
    """Sessions and schema of the site's database; the concerns of `Store` build on it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine = db.make_engine(url)
        self._writer: Engine = self._engine.execution_options(**{db.WRITE_OPTION: True})

    def __repr__(self) -> str:
        return f"Store({db.safe_url(self.url)!r})"

    # -- sessions --------------------------------------------------------------

    @contextmanager
    def _errors(self) -> Iterator[None]:
        with db.db_errors(self.url):
            yield

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any error."""
        with Session(self._writer, expire_on_commit=False) as s, s.begin():
            yield s

    def _write_retrying(self, work: Callable[[Session], T]) -> T:
        """`work` in one write transaction that hands out the next id, seq or
        attempt number. Writers queue for it: SQLite by BEGIN IMMEDIATE, PostgreSQL
        by an advisory lock. Should a unique key still refuse the row (a writer
        that skipped the lock), the work runs again and sees the winner's row."""
        tries = 0
        with self._errors():
            while True:
                tries += 1
                try:
                    with self._write() as s:
                        if s.get_bind().dialect.name == "postgresql":
                            s.execute(
                                text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SEQUENCE_LOCK}
                            )
                        return work(s)
                except IntegrityError as e:
                    if tries >= _RETRIES:
                        raise StoreError(db.describe_error(self.url, e)) from e

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with Session(self._engine, expire_on_commit=False) as s, s.begin():
            yield s

    # -- schema ----------------------------------------------------------------

    def upgrade(self) -> None:
        """Apply the schema migrations up to head (nothing to do when already there)."""
        with self._errors():
            db.upgrade(self._writer)

    def current_revision(self) -> str | None:
        with self._errors():
            return db.current_revision(self._engine)

    def check_schema(self) -> str:
        """The current revision; `StoreError` unless it is the head this code knows."""
        current = self.current_revision()
        head = db.head_revision()
        if current is None:
            raise StoreError(
                f"database {db.safe_url(self.url)} has no linectl schema: run `linectl db upgrade`"
            )
        if current != head:
            newer = current not in db.known_revisions()
            raise StoreError(
                f"database {db.safe_url(self.url)} is at schema {current}, this linectl "
                f"needs {head}: "
                + (
                    "the database is newer than this linectl"
                    if newer
                    else "run `linectl db upgrade`"
                )
            )
        return current

    def close(self) -> None:
        self._engine.dispose()
