"""One RS-232 port and its owner: open, framed request/reply, reopen when it goes away.

A `SerialPort` serves one instrument (RS-232 is point to point). One owner
task keeps the port open: it opens it (pyserial through
pyserial-asyncio-fast, `exclusive` so no second program can talk on it),
waits until the port is lost (the USB adapter pulled, the pty of a stopped
simulator gone), and opens it again after a backoff (exponential, capped,
jittered, in real seconds). The outage is reported once to the device's
`DeviceHealth`, which logs it once and logs again only when the device
answers again. A request that finds the port closed cuts the owner's backoff
short (an instrument plugged back in is used at once, not after the
backoff's tens of seconds) and waits for it no longer than for a reply; then
it fails with `DeviceUnreachable`. Attempts to open stay at least the
shortest backoff apart, however many requests ask.

A request holds the port's lock for its whole round trip, so the frames of
two callers never interleave. Timeouts are real seconds (a reply takes the
same milliseconds at any time scale). What the line delivers that is not a
valid reply is discarded and counted, never used: stray bytes found before a
request or after a reply (`noise_bytes`), and replies that are garbled,
short, or fail their checksum (`bad_frames`, raising `GarbledFrame`).
`garbled` counts both kinds of events, so a procedure can tell that the line
was noisy while it measured, even when every reply it used was whole.

Each request also lands in the device's `DeviceStats` (its health's): answered
with its latency from write to parsed reply, or failed by kind (timeout,
unreachable, checksum, protocol); each reopening counts as a reconnect. Why
the port cannot be opened is kept in words and as a key (`open_why`: busy,
permission, no_port, ...), so a technician's tool can name the remedy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn, TypeVar

import serial_asyncio_fast

from linectl.backoff import Backoff
from linectl.config import DeviceConfig, SerialTransport
from linectl.drivers.errors import (
    DeviceProtocolError,
    DeviceTimeout,
    DeviceUnreachable,
    os_error_words,
)
from linectl.drivers.framing import BadChecksum, FrameError, ShortFrame, Splitter
from linectl.drivers.health import DeviceHealth

log = logging.getLogger(__name__)

T = TypeVar("T")

# After a broken reply, how long the line must stay quiet before the next
# request, so the rest of the broken frame is not taken for the next reply.
QUIET_S = 0.02
# What the receiver keeps between requests: far more than any reply. An
# instrument that talks without being asked (a chattering line) must not grow
# the buffer for as long as the port is idle; older bytes are dropped, counted
# as noise when the next request looks.
MAX_BUFFERED = 4096


class GarbledFrame(DeviceProtocolError):
    """A reply that is not a valid frame (garbled, short, bad checksum): discarded."""


@dataclass
class SerialStats:
    """What the port saw; every number only grows."""

    requests: int = 0
    frames: int = 0  # valid replies
    bad_frames: int = 0  # garbled, short or bad-checksum replies, discarded
    noise_bytes: int = 0  # stray bytes outside any reply, discarded
    noise_events: int = 0  # times stray bytes were found
    timeouts: int = 0
    opens: int = 0
    losses: int = 0  # times the open port went away

    @property
    def garbled(self) -> int:
        return self.bad_frames + self.noise_events


class _Receiver(asyncio.Protocol):
    """Collects what the line delivers; the port parses it under its lock."""

    def __init__(self, port: SerialPort) -> None:
        self.buf = bytearray()
        self.arrived = asyncio.Event()
        self.lost = asyncio.Event()
        self.error: Exception | None = None
        self._port = port
        self.dropped = 0  # bytes dropped past MAX_BUFFERED, not yet counted as noise

    def data_received(self, data: bytes) -> None:
        if self._port.tap is not None:
            self._port.tap("rx", data)
        if self._port.listening:
            return
        self.buf += data
        if len(self.buf) > MAX_BUFFERED:
            extra = len(self.buf) - MAX_BUFFERED
            del self.buf[:extra]
            self.dropped += extra
        self.arrived.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.error = exc
        self.lost.set()
        self.arrived.set()


class SerialPort:
    """The one owner of one RS-232 port; see the module docstring."""

    def __init__(
        self,
        device_id: str,
        transport: SerialTransport,
        health: DeviceHealth | None = None,
        *,
        timeout_s: float = 1.0,
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout must be > 0, got {timeout_s}")
        self.device_id = device_id
        self.transport = transport
        self.path = transport.device
        self.health = health or DeviceHealth(device_id)
        self.timeout_s = timeout_s
        self.stats = SerialStats()
        self._backoff = Backoff(backoff_min_s, backoff_max_s)
        self._backoff_min_s = backoff_min_s
        self._poke = asyncio.Event()  # a request wants the port: try to open it now
        self._lock = asyncio.Lock()
        self._rx: _Receiver | None = None
        self._tx: asyncio.Transport | None = None
        self._owner: asyncio.Task[None] | None = None
        self._first_attempt: asyncio.Event | None = None
        self._opened = asyncio.Event()
        self._closed = False
        self.open_why: str | None = None  # why the last open failed (os_error_words key)
        self.open_error: str | None = None  # ... and in words
        # Sees every byte written and received: ("tx" | "rx", bytes). For sniffing
        # and tests; None on the daemon's path.
        self.tap: Callable[[str, bytes], None] | None = None
        # Listen only (a tap on someone else's line): received bytes go to the tap
        # and are not kept for replies, since no request will ever take them.
        self.listening = False

    @property
    def is_open(self) -> bool:
        return self._rx is not None and not self._rx.lost.is_set()

    @property
    def garbled(self) -> int:
        return self.stats.garbled

    # --- the owner task ----------------------------------------------------------------

    async def start(self) -> None:
        """Start the owner task (once) and wait for its first attempt to open the port."""
        if self._closed:
            raise DeviceUnreachable(f"{self.device_id}: port {self.path} is closed")
        if self._owner is None:
            self._first_attempt = asyncio.Event()
            self._owner = asyncio.create_task(self._own(), name=f"serial-{self.device_id}")
        assert self._first_attempt is not None
        await self._first_attempt.wait()

    async def wait_open(self) -> None:
        """Wait until the port is open (the owner keeps trying meanwhile)."""
        if self._owner is None:
            await self.start()
        await self._opened.wait()

    async def _open(self) -> None:
        t = self.transport
        rx = _Receiver(self)
        tx, _ = await serial_asyncio_fast.create_serial_connection(
            asyncio.get_running_loop(),
            lambda: rx,
            t.device,
            baudrate=t.baudrate,
            bytesize=t.bytesize,
            parity=t.parity,
            stopbits=t.stopbits,
            exclusive=True,
        )
        self._rx, self._tx = rx, tx
        if self.stats.opens:
            self.health.stats.reconnects += 1
        self.stats.opens += 1
        self.open_why = self.open_error = None
        self._opened.set()

    async def _own(self) -> None:
        assert self._first_attempt is not None
        while not self._closed:
            try:
                await self._open()
            except Exception as e:  # whatever pyserial raises: the port is not there
                self.open_why, self.open_error = os_error_words(e)
                self.health.down(f"cannot open {self.path}: {self.open_error}")
                self._first_attempt.set()
                await self._pause(self._backoff.next())
                continue
            self._backoff.reset()
            self._first_attempt.set()
            assert self._rx is not None
            await self._rx.lost.wait()
            if self._closed:
                return
            self._opened.clear()
            self.stats.losses += 1
            err = self._rx.error
            self.open_why, self.open_error = ("lost", os_error_words(err)[1] if err else "closed")
            self.health.down(f"port {self.path} lost: {self.open_error}")
            self._drop_transport()
            await self._pause(self._backoff.next())

    async def _pause(self, seconds: float) -> None:
        """The backoff before the next attempt to open, cut short by a request that
        wants the port, but never below the shortest backoff."""
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds
        self._poke.clear()
        await asyncio.sleep(min(seconds, self._backoff_min_s))
        left = until - loop.time()
        if left > 0 and not self._poke.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(left):
                    await self._poke.wait()

    def _drop_transport(self) -> None:
        tx, self._tx = self._tx, None
        if tx is not None and not tx.is_closing():
            # abort, not close: close() drains (tcdrain), which can hang on a dead line
            tx.abort()

    async def aclose(self) -> None:
        self._closed = True
        if self._owner is not None:
            self._owner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._owner
        rx = self._rx
        self._drop_transport()
        if rx is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await rx.lost.wait()

    # --- requests ----------------------------------------------------------------------

    def _take_noise(self, rx: _Receiver) -> None:
        if rx.buf or rx.dropped:
            self.stats.noise_bytes += len(rx.buf) + rx.dropped
            rx.dropped = 0
            self.stats.noise_events += 1
            self.health.stats.noise_events += 1
            log.debug(
                "%s: %d stray byte(s) discarded: %s",
                self.device_id,
                len(rx.buf),
                rx.buf[:32].hex(" "),
            )
            rx.buf.clear()

    async def request(
        self,
        data: bytes,
        split: Splitter,
        decode: Callable[[bytes], T],
        *,
        timeout_s: float | None = None,
        what: str = "request",
    ) -> T:
        """Send `data`, read the one reply frame `split` finds, return `decode(frame)`.

        Raises DeviceUnreachable (port closed), DeviceTimeout (no reply in time),
        GarbledFrame (a reply that is not a valid frame; discarded and counted)."""
        if self._owner is None:
            await self.start()
        timeout = self.timeout_s if timeout_s is None else timeout_s
        if not self.is_open and not self._closed and not self.listening:
            # Plugged back in since? Ask the owner to look now, and wait no longer
            # than for a reply.
            self._poke.set()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._opened.wait()
        async with self._lock:
            rx, tx = self._rx, self._tx
            if rx is None or tx is None or rx.lost.is_set():
                why = f": {self.open_error}" if self.open_error else ""
                msg = f"{self.device_id}: port {self.path} is not open{why}"
                self.health.stats.failed("unreachable", msg)
                raise DeviceUnreachable(msg, why=self.open_why)
            self._take_noise(rx)
            rx.arrived.clear()
            self.stats.requests += 1
            tx.write(data)
            if self.tap is not None:
                self.tap("tx", data)
            loop = asyncio.get_running_loop()
            sent_at = loop.time()
            deadline = sent_at + timeout
            while True:
                try:
                    n = split(rx.buf)
                except FrameError as e:
                    await self._garbled(rx, e, what, loop.time() - sent_at)
                if n is not None:
                    frame = bytes(rx.buf[:n])
                    del rx.buf[:n]
                    try:
                        value = decode(frame)
                    except FrameError as e:
                        await self._garbled(rx, e, what, loop.time() - sent_at)
                    self.health.stats.answered(loop.time() - sent_at)
                    self._take_noise(rx)  # bytes after the reply: not part of it
                    self.stats.frames += 1
                    self.health.up()
                    return value
                if rx.lost.is_set():
                    msg = f"{self.device_id}: port {self.path} lost during {what}"
                    self.health.stats.failed("unreachable", msg)
                    raise DeviceUnreachable(msg, why="lost")
                left = deadline - loop.time()
                if left <= 0:
                    break
                rx.arrived.clear()
                # asyncio.timeout, never wait_for (here or anywhere in this module):
                # Python 3.11's wait_for returns the result when the reply and a
                # cancellation arrive together, dropping the cancellation, and the
                # procedure polling this device then never stops.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(left):
                        await rx.arrived.wait()
            if rx.buf:
                await self._garbled(
                    rx,
                    ShortFrame(f"{len(rx.buf)} byte(s) then silence for {timeout:g} s"),
                    what,
                    None,
                )
            self.stats.timeouts += 1
            msg = f"{self.device_id}: no reply to {what} in {timeout:g} s"
            self.health.stats.failed("timeout", msg)
            self.health.down(f"no reply to {what} in {timeout:g} s")
            raise DeviceTimeout(msg, why="timeout")

    async def _garbled(
        self, rx: _Receiver, e: FrameError, what: str, latency_s: float | None
    ) -> NoReturn:
        """Count and discard a broken reply, and whatever follows it until the line is quiet."""
        self.stats.bad_frames += 1
        msg = f"{self.device_id}: garbled reply to {what} discarded: {e}"
        kind = "checksum" if isinstance(e, BadChecksum) else "protocol"
        self.health.stats.failed(kind, msg, latency_s)
        await self._drain(rx)
        raise GarbledFrame(msg) from e

    async def _drain(self, rx: _Receiver) -> None:
        # Bounded: a line that never goes quiet must not hold the port forever.
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.timeout_s
        while loop.time() < give_up:
            self.stats.noise_bytes += len(rx.buf)
            rx.buf.clear()
            rx.arrived.clear()
            try:
                async with asyncio.timeout(QUIET_S):
                    await rx.arrived.wait()
            except TimeoutError:
                return
            if rx.lost.is_set():
                rx.buf.clear()
                return


class SerialDevice:
    """What the three RS-232 drivers share: the device config, its port and health."""

    model: str = ""

    def __init__(self, cfg: DeviceConfig, port: SerialPort | None = None) -> None:
        if cfg.model != self.model:
            raise ValueError(f"device {cfg.id} is a {cfg.model}, not a {self.model}")
        if not isinstance(cfg.transport, SerialTransport):
            raise ValueError(f"device {cfg.id} ({cfg.model}) needs a serial transport")
        self.cfg = cfg
        self.id = cfg.id
        self.port = port or SerialPort(cfg.id, cfg.transport, timeout_s=cfg.timeout_s)
        self.health = self.port.health

    @property
    def garbled(self) -> int:
        """Garbled replies and stray-byte events seen on the port so far."""
        return self.port.garbled

    async def start(self) -> None:
        await self.port.start()

    async def aclose(self) -> None:
        await self.port.aclose()
