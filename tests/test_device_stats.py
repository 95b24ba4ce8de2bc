"""Device statistics as the drivers keep them, over real sockets and ptys: requests,
errors by kind, latency, reconnects; and the histogram's quantiles."""

from __future__ import annotations

import asyncio

import pytest
from modbus_fixtures import ManualClock
from mqtt_broker import free_port

from linectl.config import DeviceConfig, SerialTransport, TcpTransport
from linectl.drivers.errors import DeviceTimeout, DeviceUnreachable, ModbusExceptionResponse
from linectl.drivers.framing import decode_hlt, encode_hlt, split_hlt
from linectl.drivers.health import DeviceHealth
from linectl.drivers.modbus import ModbusBus
from linectl.drivers.rbt_modbus import RbtModbus
from linectl.drivers.serial import GarbledFrame, SerialPort
from linectl.drivers.stats import LATENCY_BOUNDS_S, DeviceStats
from sim.modbus_server import serve_tcp
from sim.pty import PtyPort
from sim.rbt import BrakeTesterEmulator


def test_quantiles_from_the_histogram() -> None:
    s = DeviceStats()
    assert s.quantile(0.5) is None
    for _ in range(98):
        s.answered(0.0015)  # bucket (0.001, 0.0025]
    s.answered(0.3)  # (0.25, 0.5]
    s.answered(3.0)  # +Inf
    assert s.answers == s.requests == 100
    p50 = s.quantile(0.5)
    assert p50 is not None and 0.001 < p50 <= 0.0025
    # the 99th answer lies in (0.25, 0.5]: interpolated inside it
    p99 = s.quantile(0.99)
    assert p99 is not None and 0.25 < p99 <= 0.5
    assert s.quantile(1.0) == LATENCY_BOUNDS_S[-1]  # +Inf reports its lower bound
    cum = s.cumulative_buckets()
    assert cum[-1] == (float("inf"), 100) and cum[1][1] == 98


async def test_modbus_requests_errors_latency_and_reconnects() -> None:
    port = free_port()
    emu = BrakeTesterEmulator(ManualClock())
    cfg = DeviceConfig.model_validate(
        {"id": "rbt-1", "model": "rbt-modbus", "transport": {"kind": "tcp", "port": port}}
    )
    bus = ModbusBus(cfg.transport, 0.5, backoff_min_s=0.01, backoff_max_s=0.02)  # type: ignore[arg-type]
    rbt = RbtModbus(cfg, bus)
    stats = rbt.health.stats
    try:
        server = await serve_tcp([emu.sim_device()], "127.0.0.1", port)
        await rbt.status()  # input registers + discrete inputs
        assert (stats.requests, stats.errors, stats.answers) == (2, 0, 2)
        p50 = stats.quantile(0.5)
        assert p50 is not None and 0 < p50 < 0.5
        with pytest.raises(ModbusExceptionResponse):
            await bus.read_input_registers(1, 9, 1)
        # the device answered: an error of its own kind, with a latency, and still up
        assert stats.errors_by_kind["exception"] == 1 and stats.answers == 3
        assert rbt.health.ok and "02" in (stats.last_error or "")

        await server.close()
        whys = []
        for _ in range(100):  # the first request may meet the closing connection (lost)
            try:
                await rbt.status()
            except DeviceUnreachable as e:
                whys.append(e.why)
                if e.why == "refused":
                    break
            await asyncio.sleep(0.01)  # past the bus's backoff
        assert whys[-1] == "refused" and set(whys) <= {"lost", "refused", None}
        assert stats.errors_by_kind["unreachable"] >= 1 and not rbt.health.ok
        assert "connection refused" in (stats.last_error or "")

        server = await serve_tcp([emu.sim_device()], "127.0.0.1", port)
        for _ in range(100):
            try:
                await rbt.status()
                break
            except DeviceUnreachable:
                await asyncio.sleep(0.01)  # the bus's backoff
        assert rbt.health.ok and stats.reconnects == 1
        assert stats.requests == stats.answers + stats.errors_by_kind["unreachable"]
        await server.close()
    finally:
        await bus.close()


async def test_modbus_timeout_is_counted() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while await reader.read(1024):
            pass
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bus = ModbusBus(TcpTransport(port=port), 0.1)
    health = DeviceHealth("silent")
    bus.attach(1, health)
    try:
        with pytest.raises(DeviceTimeout) as e:
            await bus.read_input_registers(1, 0, 1)
        assert e.value.why == "timeout"
        assert health.stats.timeouts == 1 and health.stats.answers == 0
    finally:
        await bus.close()
        server.close()
        await server.wait_closed()


async def test_serial_latency_checksum_timeout_reconnect_and_busy() -> None:
    async with PtyPort() as pty:
        replies = [encode_hlt("ACK"), b"", bytearray(encode_hlt("ACK"))]
        replies[2][-1] ^= 0x20  # a reply with a bad BCC

        async def tester() -> None:
            for reply in replies:
                await pty.read()
                if reply:
                    pty.write(bytes(reply))
            while True:
                await pty.read()

        task = asyncio.create_task(tester())
        port = SerialPort("hlt-1", SerialTransport(device=pty.path), timeout_s=0.2)
        stats = port.health.stats
        intruder = SerialPort("intruder", SerialTransport(device=pty.path))
        try:
            assert await port.request(encode_hlt("RST"), split_hlt, decode_hlt) == "ACK"
            assert stats.answers == 1 and 0 < (stats.quantile(0.5) or 0) < 0.2
            with pytest.raises(DeviceTimeout):
                await port.request(encode_hlt("RST"), split_hlt, decode_hlt)
            with pytest.raises(GarbledFrame):
                await port.request(encode_hlt("RST"), split_hlt, decode_hlt)
            assert (stats.timeouts, stats.checksum_failures, stats.requests) == (1, 1, 3)
            await intruder.start()  # the port is held: busy, in words and as a key
            assert intruder.open_why == "busy"
            with pytest.raises(DeviceUnreachable) as e:
                await intruder.request(encode_hlt("RST"), split_hlt, decode_hlt)
            assert e.value.why == "busy"
            assert intruder.health.stats.errors_by_kind["unreachable"] == 1
        finally:
            await intruder.aclose()
            await port.aclose()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
