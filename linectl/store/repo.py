"""The store API: every read and write of the site's records, one transaction each.

`Store` is synchronous: each method opens a session, does its work in one
transaction and returns plain records (linectl.store.records), never ORM
objects. Its concerns live in their own modules (inspections, retests,
published results, draws, proxy drivers, outbox, journal, accounts, the
console's figures, alarms, on `StoreBase`); `Store` is all of them over one engine.

`AsyncStore` offers every public method of `Store` as a coroutine, all run on
one dedicated worker thread, so the event loop never waits on the database
and SQLite sees a single writer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from linectl.store.accounts import AccountStore
from linectl.store.alarms import AlarmStore
from linectl.store.base import DuplicateRequest, NotFound, StoreError
from linectl.store.console import ConsoleStore
from linectl.store.draws import DrawStore
from linectl.store.drivers import ProxyDriverStore
from linectl.store.inspections import OUTBOX_RESULT, InspectionStore
from linectl.store.journal import JournalStore
from linectl.store.outbox import OutboxStore
from linectl.store.published import PublishedResultStore
from linectl.store.retests import RetestStore

__all__ = [
    "OUTBOX_RESULT",
    "AsyncStore",
    "DuplicateRequest",
    "NotFound",
    "Store",
    "StoreError",
]

T = TypeVar("T")


class Store(
    InspectionStore,
    RetestStore,
    PublishedResultStore,
    DrawStore,
    ProxyDriverStore,
    OutboxStore,
    JournalStore,
    AccountStore,
    ConsoleStore,
    AlarmStore,
):
    """The site's records in one database. Safe to share between threads; the
    daemon uses it through `AsyncStore`, from one worker thread."""


class AsyncStore:
    """`Store`'s public methods as coroutines, all run on one worker thread.

    One thread means one writer for SQLite and calls that run in the order they
    were made. A call whose caller is cancelled still runs to its end (and
    commits) on the worker thread: the database never sees half a call.

    The methods are forwarded, not written out again: `await astore.inspection(id)`
    runs `Store.inspection(id)` there, with the same arguments, result and errors.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="linectl-store")
        self._closed = False

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """`fn(*args, **kwargs)` on the store's worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args, **kwargs))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        # Only reached for names the instance lacks: the store's public methods.
        method = getattr(Store, name, None) if not name.startswith("_") else None
        if not callable(method):
            raise AttributeError(f"{type(self).__name__} has no method {name!r}")
        bound = getattr(self.store, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return await self.run(bound, *args, **kwargs)

        call.__name__ = call.__qualname__ = name
        call.__doc__ = method.__doc__
        setattr(self, name, call)  # found directly from now on
        return call

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self.run(self.store.close)
        self._executor.shutdown(wait=False)
