"""sd_notify against a test socket standing in for systemd's: the messages, the
abstract namespace, the watchdog, and `linectl run` saying READY=1 and STOPPING=1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from diag_fixtures import example_config

from linectl import sdnotify


@pytest.fixture
def systemd(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    """A datagram socket where systemd's would be: (NOTIFY_SOCKET value, socket)."""
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60)  # a daemon starting on a loaded machine takes its time
    try:
        yield path, sock
    finally:
        sock.close()


def test_notify_sends_one_datagram(systemd: tuple[str, socket.socket]) -> None:
    path, sock = systemd
    assert sdnotify.notify("READY=1", "STATUS=2 lines", environ={"NOTIFY_SOCKET": path})
    assert sock.recv(4096) == b"READY=1\nSTATUS=2 lines"


def test_notify_on_an_abstract_socket() -> None:
    name = f"linectl-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(b"\0" + name.encode())
        sock.settimeout(10)
        assert sdnotify.notify("STOPPING=1", environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STOPPING=1"


def test_without_systemd_nothing_happens(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert not sdnotify.notify("READY=1", environ={})
    assert not sdnotify.notify("READY=1", environ={"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert "could not notify systemd" in caplog.text  # said, never raised


def test_watchdog_interval() -> None:
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 30.0
    assert sdnotify.watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    mine = {"WATCHDOG_USEC": "500000", "WATCHDOG_PID": str(os.getpid())}
    assert sdnotify.watchdog_interval(mine) == 0.5
    assert sdnotify.watchdog_interval({}) is None


async def test_watchdog_pings_at_half_the_interval(systemd: tuple[str, socket.socket]) -> None:
    path, sock = systemd
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"}
    task = asyncio.create_task(sdnotify.watchdog(env))
    try:
        pings = [await asyncio.to_thread(sock.recv, 64) for _ in range(3)]
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert pings == [b"WATCHDOG=1"] * 3
    await sdnotify.watchdog({})  # no watchdog asked for: returns at once


async def test_linectl_run_reports_ready_and_stopping(
    tmp_path: Path, systemd: tuple[str, socket.socket]
) -> None:
    path, sock = systemd
    cfg = example_config(tmp_path)  # no instruments listening: the daemon runs all the same
    env = {**os.environ, "NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linectl", "--log-format", "json", "run", "--config", str(cfg),
        cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    got: list[bytes] = []
    try:
        try:
            while not any(m.startswith(b"READY=1") for m in got):
                got.append(await asyncio.to_thread(sock.recv, 4096))
        finally:
            proc.send_signal(signal.SIGTERM)
        while not any(m.startswith(b"STOPPING=1") for m in got):
            got.append(await asyncio.to_thread(sock.recv, 4096))
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:  # never leave a daemon behind a failed test
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    ready = next(m for m in got if m.startswith(b"READY=1"))
    assert ready == b"READY=1\nSTATUS=site zc01: 1 line(s) running"
    assert b"WATCHDOG=1" in got
    # --log-format json: every line of the log is one JSON object
    events = [json.loads(line) for line in err.decode().splitlines()]
    assert any(e["message"] == "site zc01: ready" and e["level"] == "info" for e in events)
    assert all({"ts", "level", "logger", "message"} <= e.keys() for e in events)
