"""The database schema: SQLAlchemy tables for everything a site keeps.

These models are the schema the migrations build (0001_initial creates
exactly this; a test compares them). They never leave the store: the repo
turns rows into the plain records of `linectl.store.records`.

Datetimes are stored as UTC and always come back timezone-aware, whatever
the backend (SQLite keeps no zone, PostgreSQL's `timestamptz` comes back in
the session's zone).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# Stable constraint names, so later migrations can name what they alter.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

INSPECTION_STATES = ("registered", "queued", "in_progress", "completed", "aborted")
INSPECTION_VERDICTS = ("pass", "fail", "incomplete")
ITEM_VERDICTS = ("pass", "fail", "not_judged")
DRIVER_STATES = ("on_duty", "off_duty", "break")
ACCOUNT_ROLES = ("viewer", "operator", "technician", "admin")
JOURNAL_OUTCOMES = ("ok", "refused", "denied", "error")
ALARM_PRIORITIES = ("high", "medium", "low")
ALARM_STATES = (
    "unacked",
    "acked",
    "rtn_unacked",
    "shelved",
    "suppressed",
    "out_of_service",
    "closed",
)


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime in and out; a naive one is refused, not guessed."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()}: records need UTC-aware times")
        value = value.astimezone(UTC)
        # SQLite's DATETIME text drops the zone anyway; store plain UTC.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class Inspection(Base):
    """One vehicle's visit."""

    __tablename__ = "inspections"
    __table_args__ = (
        CheckConstraint(_one_of("state", INSPECTION_STATES), name="state"),
        CheckConstraint(_one_of("verdict", INSPECTION_VERDICTS), name="verdict"),
        # The console's list: newest first, plate and VIN tested in the index
        # (a part-match filter no index can seek); see migration 0008.
        Index(None, "created_at", "id", "plate", "vin"),
        Index(None, "state"),
        Index(None, "line", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    site: Mapped[str] = mapped_column(String(64))
    line: Mapped[str | None] = mapped_column(String(64))
    inspection_type: Mapped[str] = mapped_column(String(16))
    vehicle: Mapped[dict[str, Any]]
    plate: Mapped[str] = mapped_column(String(32), index=True)
    vin: Mapped[str] = mapped_column(String(17), index=True)
    items: Mapped[list[str]]
    state: Mapped[str] = mapped_column(String(16))
    verdict: Mapped[str | None] = mapped_column(String(16))
    revision: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    proxy_driver_id: Mapped[str | None] = mapped_column(ForeignKey("proxy_drivers.id"))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    abort_reason: Mapped[str | None] = mapped_column(Text)


class Attempt(Base):
    """One judged attempt at one item; its raw arrays packed in one blob."""

    __tablename__ = "attempts"
    __table_args__ = (
        UniqueConstraint("inspection_id", "item_code", "attempt_no"),
        CheckConstraint(_one_of("verdict", ITEM_VERDICTS), name="verdict"),
        CheckConstraint("attempt_no >= 1", name="attempt_no"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    inspection_id: Mapped[str] = mapped_column(ForeignKey("inspections.id"))
    item_code: Mapped[str] = mapped_column(String(8))
    attempt_no: Mapped[int] = mapped_column(Integer)
    station: Mapped[str] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime]
    verdict: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    values: Mapped[dict[str, Any]]
    limits: Mapped[dict[str, Any]]
    curve: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)


class Retest(Base):
    """A retest of an inspection (a later visit of the same vehicle): the request that
    asked for it, the items it repeats and the revision its result carries."""

    __tablename__ = "retests"
    __table_args__ = (
        UniqueConstraint("inspection_id", "revision"),
        CheckConstraint("revision >= 2", name="revision"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    inspection_id: Mapped[str] = mapped_column(ForeignKey("inspections.id"))
    revision: Mapped[int] = mapped_column(Integer)
    request_id: Mapped[str] = mapped_column(String(128), unique=True)
    items: Mapped[list[str]]
    line: Mapped[str | None] = mapped_column(String(64))
    registered_at: Mapped[datetime]
    # The draw chain's last seq when the retest was registered: this visit's proxy
    # driver is the inspection's latest draw after it, never an earlier visit's.
    after_draw_seq: Mapped[int] = mapped_column(Integer)


class PublishedResult(Base):
    """Every revision of every result, the payload exactly as published (UTF-8 JSON).
    Kept for good: outbox rows go once delivered, these stay for the report and its
    verification code."""

    __tablename__ = "published_results"
    inspection_id: Mapped[str] = mapped_column(ForeignKey("inspections.id"), primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    payload: Mapped[bytes] = mapped_column(LargeBinary)


class ProxyDriver(Base):
    """A person who drives vehicles through a line; ids are unique per site."""

    __tablename__ = "proxy_drivers"
    __table_args__ = (CheckConstraint(_one_of("state", DRIVER_STATES), name="state"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    line: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(128), server_default=text("''"))
    state: Mapped[str] = mapped_column(String(16))
    updated_at: Mapped[datetime]


class DriverDutyLog(Base):
    """Append-only: every change of a proxy driver's duty state, and its line."""

    __tablename__ = "driver_duty_log"
    __table_args__ = (CheckConstraint(_one_of("state", DRIVER_STATES), name="state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    driver_id: Mapped[str] = mapped_column(ForeignKey("proxy_drivers.id"), index=True)
    line: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime]


class Draw(Base):
    """Append-only, hash-chained record of each random proxy-driver assignment."""

    __tablename__ = "draws"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    line: Mapped[str] = mapped_column(String(64), index=True)
    inspection_id: Mapped[str] = mapped_column(ForeignKey("inspections.id"), index=True)
    candidates: Mapped[list[str]]
    chosen: Mapped[str] = mapped_column(String(64))
    drawn_at: Mapped[datetime]
    # The inspections the vehicle was drawn among (the first k queued); NULL for a
    # draw that had its vehicle given (before issue 15, or a caller naming it).
    vehicles: Mapped[list[str] | None]
    # Unique: two records can never claim the same predecessor (no forks).
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Registration(Base):
    """The reply given to each request_id, so a repeat gets the very same reply."""

    __tablename__ = "registrations"

    request_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime]
    inspection_id: Mapped[str | None] = mapped_column(ForeignKey("inspections.id"))
    reply: Mapped[dict[str, Any]]


class Outbox(Base):
    """Messages committed with their cause, published until the broker acknowledges."""

    __tablename__ = "outbox"
    __table_args__ = (
        # The registry drops duplicates by (inspection_id, revision): one payload per revision.
        UniqueConstraint("kind", "inspection_id", "revision"),
        Index(
            "ix_outbox_pending",
            "id",
            sqlite_where=text("delivered_at IS NULL"),
            postgresql_where=text("delivered_at IS NULL"),
        ),
        # Ids give the publishing order: never reuse one, even after old rows are pruned.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(16))
    inspection_id: Mapped[str | None] = mapped_column(ForeignKey("inspections.id"))
    revision: Mapped[int | None] = mapped_column(Integer)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    last_error: Mapped[str | None] = mapped_column(Text)


class JournalEntry(Base):
    """Append-only, hash-chained record of every action that changed something:
    who (account and role), from where (how, address, session), when, what, on
    what, why, and what came of it."""

    __tablename__ = "journal"
    __table_args__ = (
        CheckConstraint(_one_of("outcome", JOURNAL_OUTCOMES), name="outcome"),
        Index(None, "at"),
        Index(None, "user_name", "at"),
        Index(None, "target", "at"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    user_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    via: Mapped[str] = mapped_column(String(16))
    address: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(48))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(160))
    reason: Mapped[str | None] = mapped_column(Text)
    changes: Mapped[dict[str, Any]]
    outcome: Mapped[str] = mapped_column(String(16))
    prev_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class AlarmRow(Base):
    """One occurrence of an alarm condition at one place, through its ISA-18.2 states
    (linectl.alarms.state): raised, acknowledged, shelved, returned, closed."""

    __tablename__ = "alarms"
    __table_args__ = (
        CheckConstraint(_one_of("priority", ALARM_PRIORITIES), name="priority"),
        CheckConstraint(_one_of("state", ALARM_STATES), name="state"),
        Index(None, "state"),
        Index(None, "key", "raised_at"),
        Index(None, "raised_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(32))
    line: Mapped[str | None] = mapped_column(String(64))
    station: Mapped[str | None] = mapped_column(String(64))
    device: Mapped[str | None] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))
    active: Mapped[bool] = mapped_column(Boolean)
    message: Mapped[str] = mapped_column(Text)
    raised_at: Mapped[datetime]
    cleared_at: Mapped[datetime | None]
    acked_by: Mapped[str | None] = mapped_column(String(64))
    acked_at: Mapped[datetime | None]
    comment: Mapped[str | None] = mapped_column(Text)
    silenced: Mapped[bool] = mapped_column(Boolean)
    silenced_by: Mapped[str | None] = mapped_column(String(64))
    shelved_by: Mapped[str | None] = mapped_column(String(64))
    shelved_until: Mapped[datetime | None]
    shelve_reason: Mapped[str | None] = mapped_column(Text)
    closed_at: Mapped[datetime | None]


class Account(Base):
    """A person (or script) who signs in to the console or the API."""

    __tablename__ = "accounts"
    __table_args__ = (CheckConstraint(_one_of("role", ACCOUNT_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    # Argon2 hash; none: the account signs in with bearer tokens only.
    password_hash: Mapped[str | None] = mapped_column(Text)
    # The console's language for this account (none: the browser's).
    locale: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token: looked up by its public id, its secret kept as an Argon2 hash."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    secret_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A signed-in browser. The cookie holds a random secret; only its SHA-256 is kept."""

    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"), index=True)
    address: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime]
    seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    # However active the session, it ends here (sign in again).
    max_expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
