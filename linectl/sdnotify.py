"""Telling systemd how the daemon is doing: sd_notify(3) in pure Python.

With `Type=notify` systemd starts the next unit only once the daemon says
`READY=1`, and shows `STATUS=` in `systemctl status`. The protocol is one
datagram per message on the AF_UNIX socket named by `NOTIFY_SOCKET` (a path,
or `@name` for the abstract namespace); without it (not under systemd)
every call here does nothing.

`Watchdog`: with `WatchdogSec=` in the unit, systemd sets `WATCHDOG_USEC`
and restarts the service when no `WATCHDOG=1` arrives within it. The pings
come from a task on the daemon's event loop, so a loop that hangs (a blocking
call, a busy loop) stops them and gets the daemon restarted, which is the
point; they are sent at half the interval, as sd_watchdog_enabled(3) advises.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger(__name__)


def _address(spec: str) -> str | bytes:
    # "@name" is Linux's abstract namespace: a leading NUL byte on the wire.
    return b"\0" + spec[1:].encode() if spec.startswith("@") else spec


def notify(*fields: str, environ: dict[str, str] | None = None) -> bool:
    """Send `fields` (e.g. "READY=1", "STATUS=...") as one message; False when
    there is no NOTIFY_SOCKET or the message could not be sent (never raises:
    systemd missing a status line must not stop the daemon)."""
    env = os.environ if environ is None else environ
    spec = env.get("NOTIFY_SOCKET")
    if not spec or not fields:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.connect(_address(spec))
            s.sendall("\n".join(fields).encode())
    except OSError as e:
        log.warning("could not notify systemd at %s: %s", spec, e)
        return False
    return True


def watchdog_interval(environ: dict[str, str] | None = None) -> float | None:
    """Seconds within which systemd wants a WATCHDOG=1, or None when it wants none
    (no WATCHDOG_USEC, or WATCHDOG_PID names another process)."""
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    pid = env.get("WATCHDOG_PID")
    if usec <= 0 or (pid and pid != str(os.getpid())):
        return None
    return usec / 1e6


async def watchdog(environ: dict[str, str] | None = None) -> None:
    """Ping systemd's watchdog at half its interval, until cancelled; returns at
    once when no watchdog is asked for."""
    interval = watchdog_interval(environ)
    if interval is None:
        return
    while True:
        notify("WATCHDOG=1", environ=environ)
        await asyncio.sleep(interval / 2)
