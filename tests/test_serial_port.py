"""The RS-232 port owner through a real pty: framed replies, timeouts, garbage, a lost port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from linectl.config import SerialTransport
from linectl.drivers.errors import DeviceTimeout, DeviceUnreachable
from linectl.drivers.framing import (
    NhaReply,
    decode_gas_frame,
    decode_nha_reply,
    split_gas_frame,
    split_one_byte,
)
from linectl.drivers.health import DeviceHealth
from linectl.drivers.serial import GarbledFrame, SerialPort
from sim.pty import PtyPort

READING = bytes.fromhex("06 0032 000F 05C8 0014 0064 09C4 FF9C 0078 00 03E8 57")


class Device:
    """The far end of the cable, played by the test: answers each request with `reply(req)`."""

    def __init__(self, pty: PtyPort, reply: Callable[[bytes], bytes]) -> None:
        self.pty = pty
        self.reply = reply
        self.seen: list[bytes] = []

    async def run(self) -> None:
        while True:
            data = await self.pty.read()
            self.seen.append(data)
            out = self.reply(data)
            if out:
                self.pty.write(out)


@contextlib.asynccontextmanager
async def device(pty: PtyPort, reply: Callable[[bytes], bytes]) -> AsyncIterator[Device]:
    d = Device(pty, reply)
    task = asyncio.create_task(d.run())
    try:
        yield d
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def port_for(path: str, health: DeviceHealth | None = None, timeout_s: float = 0.2) -> SerialPort:
    return SerialPort(
        "gas-1",
        SerialTransport(device=path),
        health,
        timeout_s=timeout_s,
        backoff_min_s=0.01,
        backoff_max_s=0.05,
    )


async def test_a_reply_is_framed_and_decoded() -> None:
    async with PtyPort() as pty, device(pty, lambda req: READING if req == b"\x81" else b"\x06"):
        port = port_for(pty.path)
        try:
            f = await port.request(b"\x81", split_gas_frame, decode_gas_frame)
            assert f.rpm == 2500 and f.lambda_ == 1.0
            assert (
                await port.request(b"\x88", split_one_byte, decode_nha_reply) is NhaReply.ACCEPTED
            )
            assert port.stats.frames == 2 and port.garbled == 0
        finally:
            await port.aclose()


async def test_a_reply_in_pieces_is_put_together() -> None:
    async with PtyPort() as pty:
        port = port_for(pty.path)

        async def dribble() -> None:
            await pty.read()
            for i in range(0, 21, 5):
                pty.write(READING[i : i + 5])
                await asyncio.sleep(0)  # let each piece travel on its own

        task = asyncio.create_task(dribble())
        try:
            f = await port.request(b"\x81", split_gas_frame, decode_gas_frame)
            assert f.hc_ppm == 50
        finally:
            await task
            await port.aclose()


async def test_no_reply_is_a_timeout_in_real_seconds_and_marks_the_device_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with PtyPort() as pty, device(pty, lambda req: b""):
        health = DeviceHealth("gas-1")
        port = port_for(pty.path, health, timeout_s=0.1)
        try:
            loop = asyncio.get_running_loop()
            with caplog.at_level(logging.WARNING):
                for _ in range(3):
                    t0 = loop.time()
                    with pytest.raises(DeviceTimeout):
                        await port.request(b"\x81", split_gas_frame, decode_gas_frame)
                    assert 0.09 <= loop.time() - t0 < 0.5
            assert not health.ok and port.stats.timeouts == 3
            assert sum("is down" in r.getMessage() for r in caplog.records) == 1
        finally:
            await port.aclose()


async def test_bad_checksum_and_short_frames_are_discarded_and_counted() -> None:
    replies = [
        READING[:-1] + b"\x58",  # checksum off by one
        READING[:12],  # then silence
        READING,
    ]
    async with PtyPort() as pty, device(pty, lambda req: replies.pop(0)):
        port = port_for(pty.path, timeout_s=0.1)
        try:
            with pytest.raises(GarbledFrame, match="checksum"):
                await port.request(b"\x81", split_gas_frame, decode_gas_frame)
            with pytest.raises(GarbledFrame, match="silence"):
                await port.request(b"\x81", split_gas_frame, decode_gas_frame)
            f = await port.request(b"\x81", split_gas_frame, decode_gas_frame)
            assert f.co_pct == 0.15
            assert port.stats.bad_frames == 2 and port.stats.frames == 1
        finally:
            await port.aclose()


async def test_stray_bytes_are_counted_and_never_taken_for_a_reply() -> None:
    async with PtyPort() as pty:
        dev = Device(pty, lambda req: b"\xaa\x55" + READING)  # garbage before the reply

        async def run() -> None:
            await dev.run()

        task = asyncio.create_task(run())
        port = port_for(pty.path)
        try:
            with pytest.raises(GarbledFrame, match="starts with 06"):
                await port.request(b"\x81", split_gas_frame, decode_gas_frame)
            assert port.stats.bad_frames == 1
            # Noise arriving between frames: found before the next request, counted.
            dev.reply = lambda req: READING
            pty.write(b"\x13\x37")
            port._rx.arrived.clear()  # type: ignore[union-attr]
            await asyncio.wait_for(port._rx.arrived.wait(), 1.0)  # type: ignore[union-attr]
            f = await port.request(b"\x81", split_gas_frame, decode_gas_frame)
            assert f.rpm == 2500
            assert port.stats.noise_events == 1 and port.garbled == 2
            # Bytes trailing a valid reply are noise too.
            dev.reply = lambda req: READING + b"\x99"
            await port.request(b"\x81", split_gas_frame, decode_gas_frame)
            assert port.stats.noise_events == 2
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await port.aclose()


async def test_a_lost_port_is_reopened_with_backoff_and_logged_once_each_way(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    link = tmp_path / "run" / "L1-gas"
    health = DeviceHealth("gas-1")
    changes: asyncio.Queue[bool] = asyncio.Queue()
    health.add_listener(lambda _id, ok, _why: changes.put_nowait(ok))
    pty = PtyPort()
    pty.link(link)
    port = port_for(str(link), health)
    try:
        with caplog.at_level(logging.INFO, logger="linectl.drivers"):
            async with device(pty, lambda req: READING):
                await port.request(b"\x81", split_gas_frame, decode_gas_frame)
            pty.close()  # the instrument's cable is pulled: the link is gone too
            assert await asyncio.wait_for(changes.get(), 2.0) is False
            for _ in range(5):
                with pytest.raises(DeviceUnreachable):
                    await port.request(b"\x81", split_gas_frame, decode_gas_frame)
            opens = port.stats.opens

            pty = PtyPort()
            pty.link(link)
            async with device(pty, lambda req: READING):
                await asyncio.wait_for(port.wait_open(), 2.0)
                assert port.stats.opens == opens + 1
                f = await port.request(b"\x81", split_gas_frame, decode_gas_frame)
                assert f.rpm == 2500
            assert await asyncio.wait_for(changes.get(), 1.0) is True
        msgs = [r.getMessage() for r in caplog.records if "gas-1" in r.getMessage()]
        assert sum("is down" in m for m in msgs) == 1, msgs
        assert sum("is back" in m for m in msgs) == 1, msgs
        assert port.stats.losses == 1
    finally:
        await port.aclose()
        pty.close()


async def test_one_owner_per_port() -> None:
    async with PtyPort() as pty, device(pty, lambda req: READING):
        first = port_for(pty.path)
        second = port_for(pty.path, DeviceHealth("intruder"))
        try:
            await first.request(b"\x81", split_gas_frame, decode_gas_frame)
            await second.start()
            assert not second.is_open and not second.health.ok
            assert second.open_why == "busy"
            assert "busy" in (second.health.last_error or "")
            with pytest.raises(DeviceUnreachable):
                await second.request(b"\x81", split_gas_frame, decode_gas_frame)
        finally:
            await second.aclose()
            await first.aclose()


async def test_a_cancel_that_meets_the_reply_is_not_dropped() -> None:
    """The reply lands in the same loop turn as a shutdown's cancel: the request must
    end cancelled, not return the reading (3.11's wait_for did, and the procedure
    polling the device, and with it the site's shutdown, then never stopped)."""
    async with PtyPort() as pty:
        port = port_for(pty.path, timeout_s=5.0)
        try:
            await port.start()
            request = asyncio.create_task(port.request(b"\x81", split_gas_frame, decode_gas_frame))
            await pty.read()  # sent: the request now waits for its reply
            rx = port._rx
            assert rx is not None
            rx.data_received(READING)  # the reply, as the line delivers it ...
            request.cancel()  # ... and the cancel, before the request runs again
            async with asyncio.timeout(5):
                await asyncio.wait([request])
            assert request.cancelled()
        finally:
            await port.aclose()
