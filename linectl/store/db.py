"""Connections and schema: engines per backend, database errors, Alembic migrations.

One URL picks the backend: SQLite (the default, a file next to the daemon)
or PostgreSQL (`postgresql+psycopg://...`; a `?options=-csearch_path%3DX`
query keeps a site in its own schema). Every SQLite connection gets WAL
journalling, foreign keys and a busy timeout, and its write transactions
start with BEGIN IMMEDIATE, so two writers queue on the lock instead of
failing half-way with "database is locked".

Whatever goes wrong underneath (bad URL, missing driver, unreachable server,
missing schema) comes out as `StoreError` with one line a person can act on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, make_url

STORE_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = STORE_DIR / "alembic.ini"
DEFAULT_URL = "sqlite:///linectl.db"
SQLITE_BUSY_TIMEOUT_MS = 10_000
PG_CONNECT_TIMEOUT_S = 10
# Execution option that marks a connection as a writer (BEGIN IMMEDIATE on SQLite).
WRITE_OPTION = "linectl_write"
# Any constant: serialises concurrent `upgrade()` calls on one PostgreSQL database.
_PG_MIGRATION_LOCK = 0x6C696E65


class StoreError(Exception):
    """The database cannot be used; `str()` is the one line to show.

    `kind` says what kind of trouble, for what reacts to it (the storage
    health, the retries): `full` (no space left), `read_only`, `io` (a disk
    I/O error), `busy` (locked past the busy timeout), `unavailable` (no
    connection, a server gone or a backend killed), or `other` (schema, a bad
    URL, a constraint: retrying will not help)."""

    def __init__(self, message: str, kind: str = "other") -> None:
        super().__init__(message)
        self.kind = kind

    @property
    def transient(self) -> bool:
        """Whether the same write may succeed later, once the cause is fixed."""
        return self.kind != "other"


# Substrings of SQLite's and PostgreSQL's messages, lower case, by kind.
_KINDS = (
    ("full", ("database or disk is full", "no space left on device", "could not extend file")),
    (
        "read_only",
        ("readonly database", "read-only", "read only", "permission denied for", "read-only file"),
    ),
    ("io", ("disk i/o error", "input/output error")),
    ("busy", ("database is locked", "database table is locked", "database is busy")),
    (
        "unavailable",
        (
            "terminating connection",
            "server closed the connection",
            "connection refused",
            "connection is closed",
            "could not connect",
            "connection to server",
            "the database system is",
            "ssl connection has been closed",
            "consuming input failed",
            "unable to open database file",
        ),
    ),
)


def error_kind(e: BaseException) -> str:
    """The `StoreError.kind` of a database failure."""
    low = _first_line(e).lower()
    for kind, needles in _KINDS:
        if any(n in low for n in needles):
            return kind
    if isinstance(e, sa_exc.DBAPIError) and e.connection_invalidated:
        return "unavailable"
    return "other"


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1***@", url)


def make_engine(url: str) -> Engine:
    """An engine for `url`, configured for its backend; `StoreError` if unusable."""
    try:
        u = make_url(url)
    except sa_exc.ArgumentError:
        raise StoreError(f"database URL {safe_url(url)!r} is not a valid URL") from None
    backend = u.get_backend_name()
    kwargs: dict[str, Any] = {"json_serializer": _json_dumps}
    if backend == "postgresql":
        # A dead connection is replaced, not reported: the daemon outlives server restarts.
        kwargs["pool_pre_ping"] = True
        if "connect_timeout" not in u.query:
            kwargs["connect_args"] = {"connect_timeout": PG_CONNECT_TIMEOUT_S}
    try:
        engine = create_engine(u, **kwargs)
    except (sa_exc.ArgumentError, ImportError) as e:
        raise StoreError(f"database URL {safe_url(url)!r}: {_first_line(e)}") from None
    if backend == "sqlite":
        _configure_sqlite(engine)
    return engine


def _json_dumps(obj: Any) -> str:
    return json_text(obj)


def json_text(obj: Any) -> str:
    """JSON for a database column. Non-ASCII stays readable (plates are Chinese);
    a lone surrogate, which no database encoding can hold, is escaped instead of
    failing the write."""
    text = json.dumps(obj, ensure_ascii=False, allow_nan=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, ensure_ascii=True, allow_nan=False)
    return text


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # sqlite3 must not BEGIN by itself: _on_begin does it, with the right lock.
        dbapi_connection.isolation_level = None
        cur = dbapi_connection.cursor()
        try:
            cur.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.execute("PRAGMA synchronous = NORMAL")  # durable enough with WAL
        finally:
            cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A writer takes the write lock up front, so it waits (busy timeout)
        # rather than failing when it upgrades a read lock mid-transaction.
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _first_line(e: BaseException) -> str:
    orig = getattr(e, "orig", None)
    msg = str(orig if orig is not None else e).strip()
    return msg.splitlines()[0].strip() if msg else type(e).__name__


def describe_error(url: str, e: BaseException) -> str:
    """One line for a database failure, with a hint where one helps."""
    msg = _first_line(e)
    low = msg.lower()
    if "no such table" in low or ("relation" in low and "does not exist" in low):
        msg += " (no linectl schema here: run `linectl db upgrade`)"
    elif "unable to open database file" in low:
        msg += " (does its folder exist, and may this user write there?)"
    return f"database {safe_url(url)}: {msg}"


@contextmanager
def db_errors(url: str) -> Iterator[None]:
    """Turn database and migration failures into `StoreError`."""
    try:
        yield
    except sa_exc.DBAPIError as e:
        raise StoreError(describe_error(url, e), error_kind(e)) from e
    except CommandError as e:
        raise StoreError(f"database {safe_url(url)}: {_first_line(e)}") from e


def alembic_config() -> Config:
    return Config(str(ALEMBIC_INI))


def head_revision() -> str:
    """The newest schema revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "migrations folder has no revision"
    return head


def known_revisions() -> set[str]:
    return {s.revision for s in ScriptDirectory.from_config(alembic_config()).walk_revisions()}


def current_revision(engine: Engine) -> str | None:
    """The schema revision of the database, None when it has none."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Apply every migration up to head, in one transaction."""
    cfg = alembic_config()
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two processes upgrading at once: the second waits, then finds nothing to do.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
