"""A private Mosquitto for the MQTT tests: its own port, config and files.

`Broker` starts the `mosquitto` binary on a free loopback port with a config
generated in the test's tmp_path (persistence on, as a station's broker
would have it, so sessions and queued messages outlive a restart), and can be
stopped and started again on the same port for the outage tests. Given
`users`, it writes a password file with `mosquitto_passwd` and refuses
anonymous clients. Nothing here touches a system-wide broker.

`Listener` is the registry's side of the tests: it records what the daemon
publishes and waits for it, without sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from linectl.config import MqttConfig
from linectl.upstream.connection import Backoff, Link, connect_params

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0


def _binary(name: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )
    if found is None:
        pytest.fail(f"`{name}` is not installed (scripts/setup installs Debian's mosquitto)")
    return found


_handed_out: set[int] = set()


def free_port() -> int:
    """A port free now and never handed out before in this test run.

    The kernel may give a just-closed port again at once: two devices of one
    config then met on the same port (and the simulator saw two unit ids 1).
    """
    while True:
        with socket.socket() as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


class Broker:
    def __init__(self, workdir: Path, users: dict[str, str] | None = None) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.users = users
        self.log_path = self.dir / "mosquitto.log"
        self.conf_path = self.dir / "mosquitto.conf"
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_config()

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.port}"

    def _write_config(self) -> None:
        lines = [
            f"listener {self.port} {HOST}",
            "persistence true",
            f"persistence_location {self.dir}/",
            f"log_dest file {self.log_path}",
            "log_dest stderr",
            "log_type all",
            "connection_messages true",
        ]
        if os.geteuid() == 0:
            # As root mosquitto would drop to the `mosquitto` user, who cannot write here.
            lines.append("user root")
        if self.users:
            pw = self.dir / "passwords"
            tool = _binary("mosquitto_passwd")
            for n, (user, password) in enumerate(self.users.items()):
                args = [tool, *(["-c"] if n == 0 else []), "-b", str(pw), user, password]
                subprocess.run(args, check=True, capture_output=True)
            lines += [f"password_file {pw}", "allow_anonymous false"]
        else:
            lines.append("allow_anonymous true")
        self.conf_path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    def start(self) -> None:
        """Start (or start again, on the same port) and return once it is running."""
        assert self._proc is None, "broker already running"
        proc = subprocess.Popen(
            [_binary("mosquitto"), "-c", str(self.conf_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self._proc = proc
        running = threading.Event()
        ended = threading.Event()

        def watch() -> None:
            # Reads the log to its end, so the pipe never fills and blocks the broker.
            assert proc.stdout is not None
            for line in proc.stdout:
                if b" running" in line:
                    running.set()
            ended.set()
            running.set()

        threading.Thread(target=watch, name=f"mosquitto-{self.port}", daemon=True).start()
        if not running.wait(START_TIMEOUT_S) or ended.is_set():
            self.stop()
            raise RuntimeError(
                f"mosquitto did not start on port {self.port}:\n{self.log()[-2000:]}"
            )

    def stop(self) -> None:
        """Stop as an operator would (SIGTERM: sessions saved to the persistence file)."""
        if self._proc is None:
            return
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""


@contextlib.contextmanager
def running_broker(workdir: Path, users: dict[str, str] | None = None) -> Iterator[Broker]:
    broker = Broker(workdir, users)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class Received:
    topic: str
    payload: bytes
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Listener:
    """The registry's side in the tests: a persistent-session client that records
    every message under `topic_filter`, reconnecting like the daemon does, and
    lets a test wait until what it expects has arrived."""

    def __init__(self, url: str, topic_filter: str, client_id: str) -> None:
        self.topic_filter = topic_filter
        cfg = MqttConfig(url=url)
        self.link = Link(
            f"listener {client_id}",
            lambda: connect_params(cfg, client_id),
            self._session,
            clean_session=False,
            backoff=Backoff(initial_s=0.02, cap_s=0.2),
        )
        self.messages: list[Received] = []
        self._client: aiomqtt.Client | None = None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self.subscribed = asyncio.Event()

    async def _session(self, client: aiomqtt.Client) -> None:
        await client.subscribe(self.topic_filter, qos=1)
        self._client = client
        self.subscribed.set()
        try:
            async for m in client.messages:
                payload = m.payload if isinstance(m.payload, bytes) else b""
                self.messages.append(Received(str(m.topic), payload, m.retain))
                async with self._changed:
                    self._changed.notify_all()
        finally:
            self._client = None
            self.subscribed.clear()

    async def __aenter__(self) -> Listener:
        self._task = asyncio.create_task(self.link.run())
        await asyncio.wait_for(self.subscribed.wait(), 10)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def publish(self, topic: str, payload: bytes) -> None:
        await asyncio.wait_for(self.subscribed.wait(), 10)
        assert self._client is not None
        await self._client.publish(topic, payload, qos=1)

    def on(self, topic: str) -> list[Received]:
        return [m for m in self.messages if m.topic == topic]

    async def wait_for(self, ready: Callable[[Listener], Any], within_s: float = 20) -> Any:
        """Wait until `ready(self)` is truthy; return its value."""

        async def until() -> Any:
            async with self._changed:
                while not (value := ready(self)):
                    await self._changed.wait()
                return value

        try:
            return await asyncio.wait_for(until(), within_s)
        except TimeoutError:
            topics = sorted({m.topic for m in self.messages})
            raise AssertionError(f"not arrived in {within_s} s; topics seen: {topics}") from None
