"""sim.pty: a null-modem of two ptys and a single emulator-side pty."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import pytest
import serial

from sim.pty import NullModem, PtyPort


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


async def read_exactly(fd: int, n: int, timeout_s: float = 2.0) -> bytes:
    """Read n bytes from a non-blocking fd, waiting on readability."""
    loop = asyncio.get_running_loop()
    out = b""
    while len(out) < n:
        ready: asyncio.Future[None] = loop.create_future()
        loop.add_reader(fd, lambda f=ready: f.done() or f.set_result(None))
        try:
            await asyncio.wait_for(ready, timeout_s)
        finally:
            loop.remove_reader(fd)
        out += os.read(fd, n - len(out))
    return out


def open_end(path: str | Path) -> serial.Serial:
    """An end opened as the daemon opens a port: pyserial, raw, non-blocking."""
    return serial.Serial(str(path), baudrate=19200, timeout=0, exclusive=True)


async def test_null_modem_carries_bytes_both_ways() -> None:
    async with NullModem() as modem:
        a, b = open_end(modem.ends[0]), open_end(modem.ends[1])
        try:
            every_byte = bytes(range(256))  # no byte is special: no echo, no CR/LF mangling
            a.write(every_byte)
            assert await read_exactly(b.fileno(), 256) == every_byte
            b.write(b"\x01\x03\x00\x00\x00\x01\x84\x0a")
            assert await read_exactly(a.fileno(), 8) == b"\x01\x03\x00\x00\x00\x01\x84\x0a"
        finally:
            a.close()
            b.close()


async def test_an_end_can_be_closed_and_reopened() -> None:
    async with NullModem() as modem:
        host = open_end(modem.ends[1])
        host.close()  # the daemon restarts
        dev, host = open_end(modem.ends[0]), open_end(modem.ends[1])
        try:
            dev.write(b"\x10\x0d\x0a\x03")
            assert await read_exactly(host.fileno(), 4) == b"\x10\x0d\x0a\x03"
        finally:
            dev.close()
            host.close()


async def test_nobody_listening_drops_bytes_without_blocking() -> None:
    async with NullModem() as modem:
        dev = open_end(modem.ends[0])
        try:
            sent = 0
            for _ in range(20_000):
                if modem.dropped:
                    break
                # non-blocking, as an asyncio serial transport writes
                with contextlib.suppress(BlockingIOError):
                    sent += os.write(dev.fileno(), b"x" * 1024)
                await asyncio.sleep(0)  # the bridge runs between writes
            assert modem.dropped > 0 and sent > 0
        finally:
            dev.close()


async def test_link_makes_folders_and_is_removed_on_close(tmp_path: Path) -> None:
    where = tmp_path / "dev" / "serial" / "rbt0"
    async with NullModem() as modem:
        modem.link(where)
        assert where.is_symlink() and os.readlink(where) == modem.ends[1]
        other = modem.link(tmp_path / "dev" / "other", end=0)
        assert os.readlink(other) == modem.ends[0]
        # the daemon opens the configured path as its port
        dev, host = open_end(modem.ends[0]), open_end(where)
        try:
            host.write(b"ping")
            assert await read_exactly(dev.fileno(), 4) == b"ping"
        finally:
            dev.close()
            host.close()
    assert not where.exists() and not where.is_symlink()
    assert not other.is_symlink()
    assert (tmp_path / "dev" / "serial").is_dir()


async def test_pty_port_talks_to_the_daemon_side(tmp_path: Path) -> None:
    async with PtyPort() as port:
        link = port.link(tmp_path / "ttyGAS")
        host = open_end(link)
        try:
            host.write(b"\x81")
            assert await asyncio.wait_for(port.read(), 2.0) == b"\x81"
            reply = bytes([0x06, *range(19), 0x55])
            assert port.write(reply) == len(reply)
            assert await read_exactly(host.fileno(), len(reply)) == reply
        finally:
            host.close()
    assert not (tmp_path / "ttyGAS").is_symlink()


async def test_no_descriptor_is_leaked(tmp_path: Path) -> None:
    before = open_fds()
    for _ in range(5):
        async with NullModem() as modem:
            modem.link(tmp_path / "a")
            end = open_end(modem.ends[1])
            end.close()
        async with PtyPort() as port:
            port.link(tmp_path / "b")
    # a modem never started still closes everything
    NullModem().close()
    assert open_fds() == before


async def test_closing_a_pty_port_wakes_its_reader() -> None:
    port = PtyPort()
    reader = asyncio.create_task(port.read())
    await asyncio.sleep(0)  # the reader parks on the descriptor
    port.close()
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(reader, 2.0)
    with pytest.raises(ConnectionError):
        port.write(b"x")


async def test_a_null_modem_with_a_baud_rate_delivers_at_the_line_speed() -> None:
    # 192 characters of 10 bits at 19200 Bd take 100 ms on the wire: each chunk
    # arrives no earlier than its last character would, in order, both ways.
    async with NullModem(baudrate=19200) as modem:
        a, b = open_end(modem.ends[0]), open_end(modem.ends[1])
        loop = asyncio.get_running_loop()
        try:
            data = bytes(range(192))
            t0 = loop.time()
            a.write(data[:96])
            a.write(data[96:])
            assert await read_exactly(b.fileno(), 192) == data
            assert loop.time() - t0 >= 192 * 10 / 19200 - 0.002  # 100 ms, less timer slack
            t0 = loop.time()
            b.write(b"\x01\x03")
            assert await read_exactly(a.fileno(), 2) == b"\x01\x03"
            assert loop.time() - t0 >= 2 * 10 / 19200 - 0.0005
        finally:
            a.close()
            b.close()
    with pytest.raises(ValueError, match="baud rate"):
        NullModem(baudrate=0)
