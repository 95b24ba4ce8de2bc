"""ModbusBus: one lock per bus, outages logged once, fail fast, reconnect."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable

import pytest
from modbus_fixtures import ScriptedAxle, eventually, served

from linectl.clock import Clock
from linectl.config import DeviceConfig, RtuTransport, TcpTransport
from linectl.drivers.errors import DeviceError, DeviceTimeout, DeviceUnreachable
from linectl.drivers.lineio_modbus import LineIO, Prompt, StationInputs
from linectl.drivers.modbus import BusRegistry, ModbusBus
from linectl.drivers.rbt_modbus import RbtCommand, RbtModbus, RbtState
from sim.lineio import LineIOEmulator
from sim.modbus_server import serve_tcp
from sim.rbt import BrakeTesterEmulator


async def timed(aw: Awaitable[object]) -> tuple[float, BaseException | None]:
    t0 = time.monotonic()
    try:
        await aw
    except DeviceError as e:
        return time.monotonic() - t0, e
    return time.monotonic() - t0, None


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The daemon side's records (the emulators' server logs its own start)."""
    return [r for r in caplog.records if r.name.startswith("linectl")]


@pytest.fixture
async def registry() -> AsyncIterator[BusRegistry]:
    reg = BusRegistry()
    yield reg
    await reg.close_all()


@pytest.fixture
async def silent_server() -> AsyncIterator[tuple[int, list[str]]]:
    """A TCP peer that takes requests and never answers; logs 'eof' when the
    client drops the connection."""
    events: list[str] = []
    writers: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        while await reader.read(1024):
            pass
        events.append("eof")
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    yield server.sockets[0].getsockname()[1], events
    for w in writers:
        w.close()
    server.close()
    await server.wait_closed()


async def test_outage_logged_once_fails_fast_and_comes_back(
    caplog: pytest.LogCaptureFixture, registry: BusRegistry
) -> None:
    caplog.set_level(logging.INFO)
    emu = BrakeTesterEmulator(Clock(10.0))
    handle = await serve_tcp([emu.sim_device()], "127.0.0.1", 0)
    port = handle.port
    transport = TcpTransport(host="127.0.0.1", port=port)
    bus = ModbusBus.for_transport(
        transport, 1.0, registry=registry, backoff_min_s=0.02, backoff_max_s=0.1
    )
    rbt = RbtModbus(DeviceConfig(id="rbt-B", model="rbt-modbus", transport=transport), bus)
    changes: list[tuple[str, bool, str | None]] = []
    rbt.health.add_listener(lambda *change: changes.append(change))
    assert (await rbt.status()).state == RbtState.IDLE
    assert rbt.health.ok and not ours(caplog)

    await handle.close()
    errors = []
    for _ in range(40):
        elapsed, err = await timed(rbt.status())
        assert isinstance(err, DeviceUnreachable), err
        assert elapsed < 0.1  # never hangs: refused or inside the backoff
        errors.append(err)
        await asyncio.sleep(0.005)
    assert any("next attempt in" in str(e) for e in errors)  # some never went on the wire
    assert not rbt.health.ok and rbt.health.last_error
    down = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(down) == 1, [r.getMessage() for r in down]
    assert "rbt-B" in down[0].getMessage() and down[0].name.startswith("linectl")

    async with await serve_tcp([emu.sim_device()], "127.0.0.1", port):

        async def status_or_none() -> object:
            try:
                return await rbt.status()
            except DeviceUnreachable:
                return None

        st = await eventually(status_or_none, lambda s: s is not None, timeout_s=5)
        assert st.state == RbtState.IDLE  # type: ignore[attr-defined]
        for _ in range(20):
            await rbt.status()
        back = [r for r in ours(caplog) if r.levelno == logging.INFO]
        assert len(back) == 1 and "rbt-B" in back[0].getMessage()
        assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
        assert changes == [("rbt-B", False, changes[0][2]), ("rbt-B", True, None)]
        assert rbt.health.ok and rbt.health.last_error is None


async def test_timeout_is_device_timeout_then_fails_fast(
    caplog: pytest.LogCaptureFixture,
    registry: BusRegistry,
    silent_server: tuple[int, list[str]],
) -> None:
    port, _ = silent_server
    transport = TcpTransport(host="127.0.0.1", port=port)
    bus = ModbusBus.for_transport(
        transport, 0.2, registry=registry, backoff_min_s=0.5, backoff_max_s=1.0
    )
    rbt = RbtModbus(DeviceConfig(id="rbt-S", model="rbt-modbus", transport=transport), bus)
    elapsed, err = await timed(rbt.status())
    assert isinstance(err, DeviceTimeout), err
    assert 0.19 <= elapsed < 0.6
    for _ in range(5):
        elapsed, err = await timed(rbt.command(RbtCommand.STOP))
        assert isinstance(err, DeviceUnreachable) and elapsed < 0.05
    assert not rbt.health.ok
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


async def test_half_open_tcp_connection_is_reopened(
    registry: BusRegistry, silent_server: tuple[int, list[str]]
) -> None:
    port, events = silent_server
    transport = TcpTransport(host="127.0.0.1", port=port)
    bus = ModbusBus.for_transport(
        transport, 0.05, registry=registry, backoff_min_s=0.001, backoff_max_s=0.002
    )
    timeouts = 0
    while timeouts < 3:
        _, err = await timed(bus.read_input_registers(1, 0, 1))
        assert isinstance(err, DeviceTimeout | DeviceUnreachable), err
        timeouts += isinstance(err, DeviceTimeout)
        await asyncio.sleep(0.003)
    assert not bus.connected

    async def dropped() -> list[str]:
        return events

    assert await eventually(dropped, lambda ev: ev == ["eof"])


async def test_link_lost_mid_request_is_unreachable_at_once(registry: BusRegistry) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1024)
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = TcpTransport(host="127.0.0.1", port=port)
    bus = ModbusBus.for_transport(transport, 3.0, registry=registry)
    elapsed, err = await timed(bus.read_holding_registers(1, 0, 4))
    assert isinstance(err, DeviceUnreachable) and elapsed < 1.0, (elapsed, err)
    server.close()
    await server.wait_closed()


async def test_missing_serial_port_is_unreachable(
    caplog: pytest.LogCaptureFixture, registry: BusRegistry, tmp_path: object
) -> None:
    transport = RtuTransport(device=f"{tmp_path}/ttyNOPE")
    bus = ModbusBus.for_transport(
        transport, 0.5, registry=registry, backoff_min_s=0.01, backoff_max_s=0.02
    )
    io = LineIO(DeviceConfig(id="io-X", model="lineio-modbus", transport=transport), bus, 2)
    for _ in range(10):
        elapsed, err = await timed(io.all_inputs())
        assert isinstance(err, DeviceUnreachable) and elapsed < 0.1
    assert "no such serial port" in (io.health.last_error or "")
    assert [r.levelno for r in caplog.records if r.levelno >= logging.WARNING] == [logging.WARNING]


async def test_two_units_share_one_rtu_bus_and_its_lock(registry: BusRegistry) -> None:
    clock = Clock(20.0)
    rbt_emu = BrakeTesterEmulator(clock, unit=1)
    io_emu = LineIOEmulator(clock, 4, unit=2)
    async with served([rbt_emu.sim_device(), io_emu.sim_device()], "rtu") as (transport, _):
        assert isinstance(transport, RtuTransport)
        rbt_cfg = DeviceConfig(id="rbt-1", model="rbt-modbus", unit=1, transport=transport)
        io_cfg = DeviceConfig(id="io-1", model="lineio-modbus", unit=2, transport=transport)
        bus_a = ModbusBus.for_transport(transport, 0.2, registry=registry)
        bus_b = ModbusBus.for_transport(transport, 0.3, registry=registry)
        assert bus_a is bus_b and bus_a.timeout_s == 0.3
        with pytest.raises(ValueError):
            ModbusBus.for_transport(
                transport.model_copy(update={"baudrate": 9600}), 1.0, registry=registry
            )
        rbt, io = RbtModbus(rbt_cfg, bus_a), LineIO(io_cfg, bus_b, 4)
        with pytest.raises(ValueError):
            RbtModbus(rbt_cfg.model_copy(update={"id": "rbt-2"}), bus_a)  # unit 1 taken

        rbt_emu.place_axle(ScriptedAxle())
        io_emu.set_inputs(3, in_position=True)
        await io.start()

        # many tasks at once: frames never interleave, every answer is right
        async def one(i: int) -> None:
            if i % 3 == 0:
                assert (await rbt.status()).in_position
            elif i % 3 == 1:
                got = await io.all_inputs()
                assert got[3] == StationInputs(True, True) and got[0] == StationInputs(False, True)
            else:
                await io.show(i % 4, Prompt.WAIT, "", f"#{i}")

        await asyncio.gather(*(one(i) for i in range(60)))
        assert sum(io_emu.prompt(s).seq for s in range(4)) == 20

        # a unit nobody emulates stays silent on RTU; the others still answer
        _, err = await timed(bus_a.read_holding_registers(7, 0, 1))
        assert isinstance(err, DeviceTimeout)
        assert (await rbt.status()).in_position
        assert rbt.health.ok and io.health.ok


async def test_closed_bus_refuses_and_is_forgotten(registry: BusRegistry) -> None:
    emu = BrakeTesterEmulator(Clock(1.0))
    async with served([emu.sim_device()], "tcp") as (transport, _):
        bus = ModbusBus.for_transport(transport, 1.0, registry=registry)
        await bus.connect()
        assert bus.connected and registry.buses() == [bus]
        await bus.close()
        _, err = await timed(bus.read_input_registers(1, 0, 1))
        assert isinstance(err, DeviceUnreachable)
        assert registry.buses() == []
        assert ModbusBus.for_transport(transport, 1.0, registry=registry) is not bus


def test_a_bus_left_by_a_closed_event_loop_is_replaced() -> None:
    registry = BusRegistry()
    transport = TcpTransport(host="127.0.0.1", port=1)  # nothing listens there

    async def use(bus: ModbusBus) -> None:
        with pytest.raises(DeviceUnreachable):
            await bus.read_input_registers(1, 0, 1)

    bus = ModbusBus.for_transport(transport, 0.2, registry=registry)
    asyncio.run(use(bus))
    again = ModbusBus.for_transport(transport, 0.2, registry=registry)
    assert again is not bus
    asyncio.run(use(again))


async def test_timeout_after_answered_requests_and_a_cancel_from_outside(
    registry: BusRegistry,
) -> None:
    # The bus's one watchdog timer outlives the answered requests before it:
    # an unanswered one still times out on time, and a cancel from elsewhere
    # stays a cancel (not a timeout), leaving the bus usable.
    emu = BrakeTesterEmulator(Clock(1.0), unit=1)
    async with served([emu.sim_device()], "rtu") as (transport, _):
        bus = ModbusBus.for_transport(
            transport, 0.2, registry=registry, backoff_min_s=0.001, backoff_max_s=0.002
        )
        for _ in range(20):
            assert len(await bus.read_input_registers(1, 7, 2)) == 2
        elapsed, err = await timed(bus.read_input_registers(2, 7, 2))  # nobody is unit 2
        assert isinstance(err, DeviceTimeout), err
        assert 0.19 <= elapsed < 0.6
        await asyncio.sleep(0.01)  # unit 2's backoff
        task = asyncio.create_task(bus.read_input_registers(2, 7, 2))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)  # the late reply of nobody, and the line's quiet time
        assert len(await bus.read_input_registers(1, 7, 2)) == 2
