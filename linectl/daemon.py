"""The site daemon: one process per site, one TaskGroup over everything it runs.

This is where the parts are put together: the site (linectl.site: lines,
store, events), the operations layer over it (linectl.ops), and the doors
that call the operations: the MQTT upstream (when `[mqtt]` is set) and the
console and JSON API (`[http]`, on by default at 127.0.0.1:8080). Each door
is one more task on the same event loop; nothing here is a second process.
SIGINT and SIGTERM stop the whole TaskGroup.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from datetime import timedelta
from typing import Any

from linectl import sdnotify
from linectl.cli import CliError
from linectl.clock import Clock
from linectl.config import HttpConfig, SiteConfig, load_site_config, parse_listen
from linectl.http.app import HttpSettings, create_app
from linectl.http.server import HttpServer
from linectl.ops.auth import Authenticator, SessionPolicy
from linectl.ops.operations import Operations
from linectl.site import Site, open_store
from linectl.store.repo import AsyncStore, StoreError
from linectl.upstream import Upstream

log = logging.getLogger(__name__)

__all__ = ["Site", "http_server", "open_store"]


def session_policy(cfg: HttpConfig) -> SessionPolicy:
    return SessionPolicy(
        idle=timedelta(minutes=cfg.session_idle_minutes),
        max_age=timedelta(hours=cfg.session_max_hours),
        attempts_per_account=cfg.login_attempts,
        attempts_per_address=cfg.login_attempts_per_address,
        window=timedelta(minutes=cfg.login_window_minutes),
    )


def http_server(
    ops: Operations,
    store: AsyncStore,
    cfg: HttpConfig,
    listen: str | None = None,
    upstream: Upstream | None = None,
) -> HttpServer:
    """The console and API of `ops`, listening where `listen` (or the config) says."""
    host, port = parse_listen(listen or cfg.listen)
    tls = cfg.cert_file is not None
    auth = Authenticator(store, session_policy(cfg))
    app = create_app(ops, auth, HttpSettings(tls=tls), upstream)
    return HttpServer(app, host, port, cert_file=cfg.cert_file, key_file=cfg.key_file)


async def _announce_ready(site: Site) -> None:
    """READY=1 to systemd (Type=notify) once every line runs; the HTTP listener
    is bound before the site starts, so it takes connections by then."""
    await site.ready.wait()
    log.info("site %s: ready", site.id)
    sdnotify.notify("READY=1", f"STATUS=site {site.id}: {len(site.lines)} line(s) running")


async def _run_daemon(cfg: SiteConfig, time_scale: float, listen: str | None) -> None:
    clock = Clock(time_scale)
    try:
        store = await open_store(cfg.database.url)
    except StoreError as e:
        hint = " (read-only: check the file's and its folder's owner and mount)"
        raise CliError(f"{e}{hint if e.kind == 'read_only' else ''}", 2) from None
    site = Site(cfg, clock, store)
    if site.storage.check() == "read_only":
        await store.aclose()
        raise CliError(f"database: {site.storage.message}: linectl needs to write there", 2)
    if site.storage.state == "low_space":
        log.error("database: %s", site.storage.message)
    ops = Operations(site)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None

    def stop() -> None:
        sdnotify.notify("STOPPING=1", "STATUS=stopping")
        main.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    log.info("site %s: %d line(s), database %s", cfg.site_id, len(cfg.lines), cfg.database.url)
    try:
        # A bad [mqtt] table or an unreadable secret stops the start here, in one line.
        upstream = Upstream(ops, cfg.mqtt) if cfg.mqtt is not None else None
        if upstream is None:
            backlog = await store.outbox_backlog()
            log.info("no [mqtt] configured: results wait in the outbox (%d waiting)", backlog)
        http = None
        if cfg.http.enabled or listen:
            http = http_server(ops, store, cfg.http, listen, upstream)
            try:
                http.bind()
            except OSError as e:
                raise CliError(
                    f"http: cannot listen on {http.host}:{http.port}: {e.strerror}", 2
                ) from None
        async with asyncio.TaskGroup() as tg:
            tg.create_task(site.run(), name="site")
            tg.create_task(_announce_ready(site), name="sd-ready")
            tg.create_task(sdnotify.watchdog(), name="sd-watchdog")
            if upstream is not None:
                tg.create_task(upstream.run(), name="upstream")
            if http is not None:
                tg.create_task(http.run(), name="http")
    except asyncio.CancelledError:
        log.info("site %s: stopping", cfg.site_id)
    finally:
        await store.aclose()


def cli(args: Any) -> int:
    cfg = load_site_config(args.config)
    if getattr(args, "http", None):
        try:
            parse_listen(args.http)
        except ValueError as e:
            raise CliError(f"--http: {e}", 2) from None
    logging.getLogger().setLevel(min(logging.getLogger().level, logging.INFO))
    try:
        asyncio.run(_run_daemon(cfg, args.time_scale, getattr(args, "http", None)))
    except Exception as e:
        # A database that cannot be used at start (schema, recovery) is one line,
        # not a traceback from inside the TaskGroup.
        leaf = _leaf(e)
        if not isinstance(leaf, StoreError):
            raise
        raise CliError(str(leaf), 2) from None
    return 0


def _leaf(e: BaseException) -> BaseException:
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return e
