"""The broker connection: how to reach the broker, and staying connected to it.

`connect_params(cfg)` turns the site's `[mqtt]` table into what an aiomqtt
client needs: host and port from the URL (`mqtt://` plain, `mqtts://` TLS),
the CA file and client certificate, the username, and the password read from
the environment variable or the file the config names. It is called again
before every connection attempt, so a rotated password file is used on the
next reconnect. The password never appears in a log line, a repr or an
error message.

`Link` keeps one connection up for good. aiomqtt 2.x does not reconnect by
itself: `Link.run()` connects, runs its session coroutine with the connected
client, and when the connection is refused or lost waits an exponential
backoff with jitter and tries again, until cancelled. It says so once when
the link goes down and once when it is back, not at every retry; a refused
login is reported as exactly that, naming the user and where the password
came from (never the password).

MQTT 3.1.1 throughout: every broker speaks it, and mqtt.md asks nothing of
version 5. Session persistence is the 3.1.1 clean-session flag with a fixed
client id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from linectl.backoff import Backoff
from linectl.config import ConfigError, MqttConfig

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"mqtt": 1883, "tcp": 1883, "mqtts": 8883, "ssl": 8883, "tls": 8883}
TLS_SCHEMES = ("mqtts", "ssl", "tls")
# CONNACK codes meaning the login itself was refused: 3.1.1's 4 and 5, and the
# MQTT 5 reason codes paho maps them to.
LOGIN_REFUSED = frozenset({4, 5, 134, 135})
# Seconds a connection must have lasted for the backoff to start again from the
# bottom: a broker that accepts and drops at once (say, a second daemon taking
# over the same client id) must not be hammered.
STABLE_AFTER_S = 10.0
# Seconds to wait for a CONNACK, SUBACK or PUBACK before the link counts as broken.
REPLY_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool
    username: str | None


def parse_broker_url(url: str, key: str = "mqtt.url") -> BrokerAddress:
    """`mqtt://[user@]host[:port]` or `mqtts://...`; never echoes a password back."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise ConfigError(f"{key}: scheme must be mqtt:// or mqtts://, got {scheme or 'none'}")
    if parts.password is not None:
        raise ConfigError(
            f"{key}: a password does not belong in the URL; "
            "name it with mqtt.password_env or mqtt.password_file"
        )
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ConfigError(f"{key}: the port is not a number from 1 to 65535") from None
    if not parts.hostname:
        raise ConfigError(f"{key}: no host in the URL")
    return BrokerAddress(parts.hostname, port, scheme in TLS_SCHEMES, parts.username or None)


def read_password(cfg: MqttConfig) -> tuple[str | None, str | None]:
    """The password and where it came from (for messages), or (None, None)."""
    if cfg.password_env and cfg.password_file:
        raise ConfigError("mqtt: give password_env or password_file, not both")
    if cfg.password_env:
        value = os.environ.get(cfg.password_env)
        if not value:
            raise ConfigError(
                f"mqtt.password_env: environment variable {cfg.password_env} is not set"
            )
        return value, f"environment variable {cfg.password_env}"
    if cfg.password_file:
        try:
            text = Path(cfg.password_file).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(
                f"mqtt.password_file: cannot read {cfg.password_file}: {e.strerror}"
            ) from None
        # Files written with `echo` end in a newline that is not part of the secret.
        value = text.rstrip("\r\n")
        if not value:
            raise ConfigError(f"mqtt.password_file: {cfg.password_file} is empty")
        return value, f"file {cfg.password_file}"
    return None, None


def _tls(cfg: MqttConfig, addr: BrokerAddress) -> aiomqtt.TLSParameters | None:
    if not (addr.tls or cfg.ca_file or cfg.cert_file):
        return None
    if cfg.key_file and not cfg.cert_file:
        raise ConfigError("mqtt.key_file: a client key needs its certificate (mqtt.cert_file)")
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(cfg, key)
        if path and not Path(path).is_file():
            raise ConfigError(f"mqtt.{key}: no such file: {path}")
    # No ca_file: the system's trusted CAs. The broker's name is always verified.
    return aiomqtt.TLSParameters(ca_certs=cfg.ca_file, certfile=cfg.cert_file, keyfile=cfg.key_file)


@dataclass(frozen=True)
class ConnectParams:
    host: str
    port: int
    tls: aiomqtt.TLSParameters | None
    username: str | None
    password: str | None = field(repr=False)
    password_source: str | None
    keepalive: int
    client_id: str

    def where(self) -> str:
        """The broker as a URL for log lines: scheme, user, host, port; no secret."""
        user = f"{self.username}@" if self.username else ""
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{self.host}:{self.port}"

    def client(
        self,
        *,
        suffix: str = "",
        will: aiomqtt.Will | None = None,
        clean_session: bool = True,
        manual_ack: bool = False,
        timeout: float = REPLY_TIMEOUT_S,
    ) -> aiomqtt.Client:
        client = aiomqtt.Client(
            self.host,
            self.port,
            username=self.username,
            password=self.password,
            identifier=self.client_id + suffix,
            protocol=aiomqtt.ProtocolVersion.V311,
            will=will,
            clean_session=clean_session,
            keepalive=self.keepalive,
            tls_params=self.tls,
            timeout=timeout,
        )
        # Concurrent QoS 1 publishes are normal here (the outbox drains in
        # batches); aiomqtt would warn from 10 on.
        client.pending_calls_threshold = 1000
        _no_nagle(client)
        if manual_ack:
            # aiomqtt 2.x does not expose paho's manual acknowledgement: its
            # Client keeps the paho client in `_client`. With it, a QoS 1
            # registration is acknowledged only once it is answered and stored,
            # so one that arrives just before a crash is delivered again.
            client._client.manual_ack_set(True)
        return client


def _no_nagle(client: aiomqtt.Client) -> None:
    """TCP_NODELAY on the client's socket once opened (paho leaves Nagle on): a
    reply sent while the one before is not yet acknowledged by TCP would wait
    for the broker's delayed ACK (benchmarks/upstream.py, registration bursts)."""
    paho = client._client
    opened = paho.on_socket_open

    def on_socket_open(c: Any, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if opened is not None:
            opened(c, userdata, sock)

    paho.on_socket_open = on_socket_open


def connect_params(cfg: MqttConfig, default_client_id: str) -> ConnectParams:
    """The client parameters for `cfg`, the secret read now; `ConfigError` naming the key."""
    addr = parse_broker_url(cfg.url)
    password, source = read_password(cfg)
    username = cfg.username or addr.username
    if password is not None and username is None:
        raise ConfigError("mqtt.username: a password is configured but no username")
    return ConnectParams(
        host=addr.host,
        port=addr.port,
        tls=_tls(cfg, addr),
        username=username,
        password=password,
        password_source=source,
        keepalive=cfg.keepalive_s,
        client_id=cfg.client_id or default_client_id,
    )


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that was swallowed. aiomqtt waits for PUBACK and
    SUBACK with `asyncio.wait_for`, which on Python 3.11 returns the result when
    the reply and a cancellation arrive together, dropping the cancellation:
    loops call this after such awaits, so a stopping daemon stops."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def ack(client: aiomqtt.Client, message: aiomqtt.Message) -> None:
    """Acknowledge a message received on a `manual_ack` client (QoS 0 needs none)."""
    if message.qos > 0:
        client._client.ack(message.mid, message.qos)


def _leaf(exc: BaseException) -> BaseException:
    """The first plain exception inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def describe_failure(exc: BaseException, params: ConnectParams | None) -> str:
    """One line saying why a connection failed or ended, without any secret."""
    exc = _leaf(exc)
    where = params.where() if params else "the broker"
    if isinstance(exc, MqttConnectError):
        code = getattr(exc.rc, "value", exc.rc)
        if code in LOGIN_REFUSED and params is not None:
            who = f"user {params.username!r}" if params.username else "an anonymous client"
            pw = (
                f" with the password from {params.password_source}"
                if params.password_source
                else ""
            )
            return (
                f"the broker at {where} refused the login of {who}{pw} ({exc.rc}): "
                "check mqtt.username and the password"
            )
        return f"the broker at {where} refused the connection: {exc}"
    if isinstance(exc, ConfigError):
        return str(exc)
    if isinstance(exc, aiomqtt.MqttError):
        if exc.__cause__ is not None and "message iteration" in str(exc):
            return f"lost the connection to {where}: {exc.__cause__}"
        return f"no connection to {where}: {exc}"
    return f"connection to {where} failed: {type(exc).__name__}: {exc}"


def is_login_refused(exc: BaseException) -> bool:
    exc = _leaf(exc)
    return isinstance(exc, MqttConnectError) and getattr(exc.rc, "value", exc.rc) in LOGIN_REFUSED


Session = Callable[[aiomqtt.Client], Awaitable[None]]


class Link:
    """One broker connection kept up until cancelled, running `session` while up.

    `session(client)` runs for as long as the connection is good and ends by
    raising: aiomqtt's MqttError when the connection breaks, which aiomqtt
    reports only to a `client.messages` iteration, so every session iterates
    (linectl.upstream.publisher.until_disconnected when it expects nothing).
    Whatever it raises, short of cancellation, is logged and the link
    reconnects after the backoff.
    """

    def __init__(
        self,
        name: str,
        params: Callable[[], ConnectParams],
        session: Session,
        *,
        suffix: str = "",
        will: aiomqtt.Will | None = None,
        clean_session: bool = True,
        manual_ack: bool = False,
        backoff: Backoff | None = None,
    ) -> None:
        self.name = name
        self._params = params
        self._session = session
        self._suffix = suffix
        self._will = will
        self._clean_session = clean_session
        self._manual_ack = manual_ack
        self.backoff = backoff or Backoff()
        self.connected = asyncio.Event()
        self.last_error: str | None = None
        self.login_refused = False
        self.connections = 0
        # Called with (message, login_refused) after every failed or lost connection.
        self.on_failure: Callable[[str, bool], None] | None = None

    async def run(self) -> None:
        down = False  # a "down" line was logged and waits for its "back"
        while True:
            params: ConnectParams | None = None
            up_at: float | None = None
            try:
                params = self._params()
                client = params.client(
                    suffix=self._suffix,
                    will=self._will,
                    clean_session=self._clean_session,
                    manual_ack=self._manual_ack,
                )
                async with client:
                    up_at = time.monotonic()
                    self.connections += 1
                    self.last_error, self.login_refused = None, False
                    self.connected.set()
                    log.info(
                        "%s: %s %s",
                        self.name,
                        "connected again to" if down else "connected to",
                        params.where(),
                    )
                    down = False
                    # Its own task: a session ends through a TaskGroup, which on
                    # Python 3.11 can leave its parent task marked as cancelling
                    # (fixed in 3.12); that mark must not stay on this loop.
                    await asyncio.create_task(self._session(client), name=f"{self.name} session")
                raise aiomqtt.MqttError("the session ended")
            except Exception as e:
                msg = describe_failure(e, params)
                refused = is_login_refused(e)
                if msg != self.last_error:
                    # Once per distinct problem; the retries that follow stay quiet.
                    leaf = _leaf(e)
                    unexpected = not isinstance(leaf, (aiomqtt.MqttError, ConfigError, OSError))
                    if refused:
                        log.error("%s: %s", self.name, msg)
                    elif unexpected:
                        log.error("%s: %s", self.name, msg, exc_info=leaf)
                    else:
                        log.log(logging.INFO if down else logging.WARNING, "%s: %s", self.name, msg)
                    down = True
                self.last_error, self.login_refused = msg, refused
                if self.on_failure is not None:
                    self.on_failure(msg, refused)
            finally:
                self.connected.clear()
            if up_at is not None and time.monotonic() - up_at >= STABLE_AFTER_S:
                self.backoff.reset()
            raise_if_cancelling()
            delay = self.backoff.next()
            log.debug("%s: next attempt in %.1f s", self.name, delay)
            await asyncio.sleep(delay)
