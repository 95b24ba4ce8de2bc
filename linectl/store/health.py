"""The database as the site sees it while running: space, writability, failing writes.

`StorageHealth` holds one state, told on the MQTT status of every line
(`storage`) and logged once when it changes, never at every retry:

- `ok`;
- `low_space`: free space under the SQLite file's folder below
  `database.min_free_mb` (writes still work: time to act);
- `full`, `read_only`, `io_error`, `busy`, `unavailable`: a write failed for
  that reason (SQLite "database or disk is full", "attempt to write a
  readonly database", "disk I/O error", "database is locked"; PostgreSQL "No
  space left on device", a read-only server, a backend terminated, the server
  gone), or the periodic check found the file or its folder not writable.

What is measured is never lost to it. `commit(what, write)` runs one write
and, while the database refuses it for a reason that can pass (every kind
but a schema or constraint error), keeps the data in memory and tries again
with a backoff in real seconds; `hold` is called once when the first try
failed, so the line can keep the vehicle where it is with a clear prompt.
The write goes through as soon as the database takes it again, and the
state goes back to `ok`. PostgreSQL's free space is on the server and only
its errors tell; the folder checks are for SQLite.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy.engine import make_url

from linectl.store.db import StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

CHECK_EVERY_S = 30.0  # real seconds between checks of the folder
RETRY_MIN_S = 0.2
RETRY_MAX_S = 5.0
STATES = ("ok", "low_space", "full", "read_only", "io_error", "busy", "unavailable")
_STATE_OF_KIND = {
    "full": "full",
    "read_only": "read_only",
    "io": "io_error",
    "busy": "busy",
    "unavailable": "unavailable",
}


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for PostgreSQL or in-memory)."""
    try:
        u = make_url(url)
    except Exception:
        return None
    if u.get_backend_name() != "sqlite" or not u.database or u.database == ":memory:":
        return None
    name = u.database
    if name.startswith("file:"):  # a URI filename (uri=true): file:PATH?mode=...
        name = name[len("file:") :].split("?", 1)[0]
        if not name or name == ":memory:" or "mode=memory" in url:
            return None
    return Path(name).resolve()


class StorageHealth:
    def __init__(
        self,
        url: str,
        *,
        min_free_mb: float = 500.0,
        on_change: Callable[[], None] | None = None,
        check_every_s: float = CHECK_EVERY_S,
    ) -> None:
        self.file = sqlite_file(url)
        # A URI filename opened mode=ro: SQLite itself will refuse every write.
        self.opened_read_only = self.file is not None and "mode=ro" in url
        self.min_free_mb = min_free_mb
        self.on_change = on_change
        self.check_every_s = check_every_s
        self.state = "ok"
        self.message: str | None = None
        self.free_mb: float | None = None
        self.failing = 0  # writes waiting for the database right now

    @property
    def ok(self) -> bool:
        """Writes go through (low space still counts as ok: nothing is refused yet)."""
        return self.state in ("ok", "low_space")

    def snapshot(self) -> dict[str, Any]:
        """The `storage` object of the MQTT status."""
        return {
            "ok": self.ok,
            "state": self.state,
            "message": self.message,
            "free_mb": None if self.free_mb is None else round(self.free_mb, 1),
            "waiting_writes": self.failing,
        }

    def _set(self, state: str, message: str | None) -> None:
        if (state, message) == (self.state, self.message):
            return
        was = self.state
        self.state, self.message = state, message
        if state == "ok":
            log.warning("database: writable again (was %s)", was)
        elif state != was:
            log.error("database: %s: %s", state, message)
        if self.on_change is not None:
            self.on_change()

    # --- what is measured ----------------------------------------------------------

    def check(self) -> str:
        """Look at the SQLite file's folder now: free space, and whether it may be
        written. A failing write's state stands until a write goes through."""
        if self.file is None:
            return self.state
        folder = self.file.parent
        try:
            self.free_mb = shutil.disk_usage(folder).free / 2**20
        except OSError as e:
            self._set("unavailable", f"cannot see {folder}: {e.strerror or e}")
            return self.state
        writable = os.access(folder, os.W_OK) and (
            not self.file.exists() or os.access(self.file, os.W_OK)
        )
        if self.opened_read_only:
            self._set("read_only", f"{self.file} is opened read-only (mode=ro in the URL)")
        elif not writable:
            self._set("read_only", f"{self.file} or its folder may not be written")
        elif self.failing:
            pass  # a write is failing: its own error says why, until it goes through
        elif self.free_mb < self.min_free_mb:
            self._set(
                "low_space",
                f"{self.free_mb:.0f} MB free under {folder}, below {self.min_free_mb:.0f} MB",
            )
        else:
            self._set("ok", None)
        return self.state

    def failed(self, e: StoreError) -> None:
        self._set(_STATE_OF_KIND.get(e.kind, "unavailable"), str(e))

    def succeeded(self) -> None:
        if self.state not in ("ok", "low_space") and not self.failing:
            self._set("ok", None)
            self.check()

    async def watch(self) -> None:
        """Check the folder every `check_every_s` real seconds, until cancelled."""
        while True:
            self.check()
            await asyncio.sleep(self.check_every_s)

    # --- writes that must not be lost ------------------------------------------------

    async def commit(
        self,
        what: str,
        write: Callable[[], Awaitable[T]],
        *,
        hold: Callable[[str], Awaitable[None]] | None = None,
    ) -> T:
        """`await write()`, tried again until the database takes it.

        A StoreError that can pass (disk full, read-only, I/O error, locked, no
        connection) keeps the caller waiting with its data in memory; `hold`
        is awaited once, with the reason, after the first failure. Any other
        error is raised at once. Cancellation stops the retries."""
        delay = RETRY_MIN_S
        held = False
        counted = False
        try:
            while True:
                try:
                    result = await write()
                except StoreError as e:
                    if not e.transient:
                        raise
                    self.failed(e)
                    if not counted:
                        self.failing += 1
                        counted = True
                        log.error("database: %s not saved yet, kept and tried again: %s", what, e)
                    if hold is not None and not held:
                        held = True
                        try:
                            await hold(self.state)
                        except asyncio.CancelledError:
                            raise
                        except Exception:  # the prompt is a courtesy: the write matters
                            log.exception("database: could not show the hold prompt")
                    await asyncio.sleep(delay)
                    delay = min(RETRY_MAX_S, delay * 2)
                    continue
                if counted:
                    counted = False
                    self.failing -= 1
                    log.warning("database: %s saved after all", what)
                    self.succeeded()
                return result
        finally:
            if counted:  # cancelled or refused while waiting: no longer waiting
                self.failing -= 1
