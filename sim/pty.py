"""Pseudo-terminals that stand in for serial cables, so the real serial code runs.

`NullModem`: two ptys whose masters an asyncio task bridges both ways, giving
two slave device paths joined like a null-modem cable. The daemon opens one
end, an emulator served by pymodbus's serial server the other, and both go
through pyserial and termios exactly as on a station PC.

`PtyPort`: one pty whose master an in-process emulator reads and writes
directly (the byte-framed instruments), the daemon opening the slave path.

Both keep a slave descriptor of their own open in raw mode: the line
settings survive the daemon closing and reopening its end, bytes written
before the daemon opens are neither echoed nor mangled, and a master read
never fails with EIO while the daemon is away. A full line (nobody reading)
drops bytes, as a cable with nothing plugged in does.

`link(path)` makes a symlink at the configured device path (parent folders
created) pointing at one end; it is removed on close.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import termios
import tty
from collections.abc import Callable
from pathlib import Path
from types import TracebackType


def _open_pty() -> tuple[int, int, str]:
    """(master fd, own slave fd, slave path) of a new raw pty, both fds non-blocking."""
    master, slave = os.openpty()
    try:
        tty.setraw(slave, termios.TCSANOW)
        os.set_blocking(master, False)
        path = os.ttyname(slave)
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    return master, slave, path


def _set_once(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class _Links:
    """Symlinks made by `link()`, removed on close."""

    def __init__(self) -> None:
        self._paths: list[Path] = []

    def make(self, path: str | os.PathLike[str], target: str) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.is_symlink():
            # A leftover of a simulator that was killed: ours to replace.
            p.unlink()
        elif p.exists():
            raise FileExistsError(f"{p} exists and is not a symlink; not replacing it")
        p.symlink_to(target)
        self._paths.append(p)
        return p

    def remove(self) -> None:
        for p in self._paths:
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self._paths.clear()


class PtyPort:
    """One pty: an emulator owns the master, the daemon opens `path`."""

    def __init__(self) -> None:
        self._master, self._slave, self.path = _open_pty()
        self._links = _Links()
        self._closed = False
        self._waiting: tuple[asyncio.AbstractEventLoop, asyncio.Future[None]] | None = None

    def fileno(self) -> int:
        """The master descriptor (non-blocking)."""
        return self._master

    def link(self, path: str | os.PathLike[str]) -> Path:
        """A symlink at `path` to the slave end."""
        return self._links.make(path, self.path)

    async def read(self, max_bytes: int = 4096) -> bytes:
        """Wait for bytes the daemon wrote and return what is there.
        Raises ConnectionError once the port is closed."""
        loop = asyncio.get_running_loop()
        while True:
            if self._closed:
                raise ConnectionError(f"pty {self.path} is closed")
            try:
                return os.read(self._master, max_bytes)
            except BlockingIOError:
                pass
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(self._master, _set_once, ready)
            self._waiting = (loop, ready)
            try:
                await ready
            finally:
                self._waiting = None
                if not self._closed:
                    loop.remove_reader(self._master)

    def write(self, data: bytes) -> int:
        """Send bytes to the daemon; returns how many the line took (the rest
        is dropped when nobody reads)."""
        if self._closed:
            raise ConnectionError(f"pty {self.path} is closed")
        try:
            return os.write(self._master, data)
        except BlockingIOError:
            return 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._waiting is not None:
            # A reader is parked on the fd: unhook it before the fd goes away.
            loop, ready = self._waiting
            if not loop.is_closed():
                loop.remove_reader(self._master)
            _set_once(ready)
        self._links.remove()
        os.close(self._master)
        os.close(self._slave)

    async def __aenter__(self) -> PtyPort:
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class NullModem:
    """Two ptys bridged master to master: `ends` are the two slave paths of
    one cable. By convention `ends[0]` is the instrument's side (give it to
    sim.modbus_server.serve_rtu) and `ends[1]` the host's, where `link()`
    points by default. `start()` (or `async with`) runs the bridge.

    A pty moves bytes as fast as the kernel copies them. Given `baudrate`,
    the bridge delivers each chunk when its last character would have
    arrived on a wire of that speed (`bits_per_char` a character: 10 for
    8N1), one direction after another as a UART sends them, so what runs over
    it meets the line's own limit (benchmarks/rtu.py)."""

    def __init__(self, baudrate: int | None = None, bits_per_char: int = 10) -> None:
        if baudrate is not None and not baudrate > 0:
            raise ValueError(f"baud rate must be > 0, got {baudrate}")
        self.baudrate = baudrate
        self.char_s = bits_per_char / baudrate if baudrate else 0.0
        self._line_free = [0.0, 0.0]  # per direction: when the wire is idle again
        master0, slave0, path0 = _open_pty()
        try:
            master1, slave1, path1 = _open_pty()
        except BaseException:
            os.close(master0)
            os.close(slave0)
            raise
        self._masters = (master0, master1)
        self._slaves = (slave0, slave1)
        self.ends: tuple[str, str] = (path0, path1)
        self._links = _Links()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self.dropped = 0  # bytes lost because the far end's input was full
        # Injected faults (sim/faults.py): rewrites what the instrument's end sends.
        self.tamper: Callable[[bytes], bytes] | None = None

    def link(self, path: str | os.PathLike[str], end: int = 1) -> Path:
        """A symlink at `path` to `ends[end]` (the host's end by default)."""
        if end not in (0, 1):
            raise ValueError(f"end must be 0 or 1, got {end!r}")
        return self._links.make(path, self.ends[end])

    def start(self) -> None:
        """Bridge both ways from now on (reader callbacks on the running loop)."""
        if self._loop is not None:
            return
        self._loop = asyncio.get_running_loop()
        m0, m1 = self._masters
        self._loop.add_reader(m0, self._pump, m0, m1)
        self._loop.add_reader(m1, self._pump, m1, m0)

    def _pump(self, src: int, dst: int) -> None:
        try:
            data = os.read(src, 4096)
        except BlockingIOError:
            return
        except OSError as e:
            if e.errno == errno.EIO:
                return
            raise
        if self.tamper is not None and src == self._masters[0]:
            data = self.tamper(data)
        if self.baudrate and self._loop is not None:
            way = self._masters.index(src)
            now = self._loop.time()
            done = max(now, self._line_free[way]) + len(data) * self.char_s
            self._line_free[way] = done
            self._loop.call_at(done, self._deliver, dst, data)
            return
        self._deliver(dst, data)

    def _deliver(self, dst: int, data: bytes) -> None:
        if self._closed:
            return
        try:
            n = os.write(dst, data)
        except BlockingIOError:
            n = 0
        self.dropped += len(data) - n

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._loop is not None and not self._loop.is_closed():
            for m in self._masters:
                self._loop.remove_reader(m)
        self._links.remove()
        for fd in (*self._masters, *self._slaves):
            os.close(fd)

    async def __aenter__(self) -> NullModem:
        self.start()
        return self

    async def __aexit__(
        self,
        et: type[BaseException] | None,
        e: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
