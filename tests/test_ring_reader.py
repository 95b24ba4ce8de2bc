"""RingReader: a run longer than the ring read while it goes, and overruns."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest
from modbus_fixtures import ManualClock, ScriptedAxle, eventually, served

from linectl.clock import Clock
from linectl.config import DeviceConfig
from linectl.drivers.errors import RingOverrun
from linectl.drivers.modbus import BusRegistry, ModbusBus
from linectl.drivers.rbt_modbus import RbtCommand, RbtModbus, RbtState
from sim.rbt import BrakeTesterEmulator

Reads = list[tuple[int, int]]


@dataclass
class Rig:
    clock: Clock
    emu: BrakeTesterEmulator
    rbt: RbtModbus
    reads: Reads  # (address, count) of every input-register request


async def make_rig(clock: Clock, kind: str) -> AsyncIterator[Rig]:
    emu = BrakeTesterEmulator(clock)
    async with served([emu.sim_device()], kind) as (transport, _):
        registry = BusRegistry()
        bus = ModbusBus.for_transport(transport, 1.0, registry=registry)
        reads: Reads = []
        real = bus.read_input_registers

        async def spy(unit: int, address: int, count: int) -> list[int]:
            reads.append((address, count))
            return await real(unit, address, count)

        bus.read_input_registers = spy  # type: ignore[method-assign]
        cfg = DeviceConfig(id="rbt-R", model="rbt-modbus", transport=transport)
        yield Rig(clock, emu, RbtModbus(cfg, bus), reads)
        await registry.close_all()


@pytest.fixture(params=["tcp", "rtu"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    # 100 samples/s of clock time at x40: 4000 samples/s of real time
    async for r in make_rig(Clock(40.0), request.param):
        yield r


@pytest.fixture
async def manual_rig() -> AsyncIterator[Rig]:
    async for r in make_rig(ManualClock(), "tcp"):
        yield r


def ring_reads(reads: Reads) -> Reads:
    return [(a, n) for a, n in reads if a >= 100]


def assert_ring_reads_follow_devices_md(reads: Reads) -> None:
    for a, n in ring_reads(reads):
        assert n % 2 == 0 and 2 <= n <= 124, (a, n)  # at most 62 samples
        assert (a - 100) % 2 == 0 and a + n <= 100 + 2048, (a, n)  # never across the wrap
    for a, n in reads:
        if a < 100:
            assert (a, n) == (7, 2)  # SAMPLE_COUNT, both registers in one request


async def test_run_longer_than_the_ring_loses_nothing(rig: Rig) -> None:
    axle = ScriptedAxle()
    rig.emu.place_axle(axle)
    await rig.rbt.configure(sample_period_ms=10, max_test_ms=21000)
    reader = rig.rbt.ring_reader()
    await rig.rbt.command(RbtCommand.BRAKE)
    reader.reset()

    async def poll_status() -> RbtState:
        await reader.poll()
        return rig.emu.state

    await eventually(poll_status, lambda s: s == RbtState.DONE, timeout_s=20)
    await reader.poll()
    assert reader.count == 2100 == len(axle.produced)
    assert reader.samples().tolist() == axle.expected()
    assert_ring_reads_follow_devices_md(rig.reads)
    # the run wrapped the ring twice, and reads were split at the wrap
    ends = [a + n for a, n in ring_reads(rig.reads)]
    assert ends.count(2148) >= 2


async def test_split_at_the_wrap_exactly(manual_rig: Rig) -> None:
    clock = manual_rig.clock
    assert isinstance(clock, ManualClock)
    axle = ScriptedAxle()
    manual_rig.emu.place_axle(axle)
    await manual_rig.rbt.configure(sample_period_ms=10, max_test_ms=30000)
    reader = manual_rig.rbt.ring_reader()
    await manual_rig.rbt.command(RbtCommand.BRAKE)
    reader.reset()
    clock.t = 9.999  # samples 0..999
    assert await reader.poll() == 1000
    manual_rig.reads.clear()
    clock.t = 11.004  # samples 1000..1100: 24 before the wrap, 77 after
    assert await reader.poll() == 101
    assert manual_rig.reads == [
        (7, 2),
        (100 + 2 * 1000, 48),  # samples 1000..1023
        (100, 124),  # 1024..1085
        (100 + 2 * 62, 30),  # 1086..1100
        (7, 2),
    ]
    assert reader.samples().tolist() == axle.expected()


async def test_stalled_reader_overrun_is_reported(rig: Rig) -> None:
    rig.emu.place_axle(ScriptedAxle())
    await rig.rbt.configure(sample_period_ms=10, max_test_ms=30000)
    reader = rig.rbt.ring_reader()
    await rig.rbt.command(RbtCommand.BRAKE)
    reader.reset()
    assert await reader.poll() >= 0
    seen = reader.count
    await eventually(lambda: rig.rbt.status(), lambda s: s.sample_count > seen + 1100, timeout_s=10)
    with pytest.raises(RingOverrun) as e:
        await reader.poll()
    assert e.value.first == seen
    assert e.value.lost == e.value.count - seen - 1024 >= 1100 - 1024
    # nothing of the broken stretch was taken as good
    assert reader.count == seen
    assert rig.rbt.health.stats.ring_overruns == 1  # counted for the device's statistics
    await rig.rbt.command(RbtCommand.STOP)


async def test_overwritten_while_reading_is_reported(manual_rig: Rig) -> None:
    clock = manual_rig.clock
    assert isinstance(clock, ManualClock)
    manual_rig.emu.place_axle(ScriptedAxle())
    await manual_rig.rbt.configure(sample_period_ms=10, max_test_ms=30000)
    reader = manual_rig.rbt.ring_reader()
    await manual_rig.rbt.command(RbtCommand.BRAKE)
    reader.reset()
    clock.t = 9.0  # 901 samples, all still in the ring
    bus = manual_rig.rbt.bus
    read = bus.read_input_registers

    def slow_reader(step_s: float) -> Callable[[int, int, int], object]:
        async def slow(unit: int, address: int, count: int) -> list[int]:
            if address >= 100:
                clock.t += step_s  # the controller goes on while each slice travels
            return await read(unit, address, count)

        return slow

    bus.read_input_registers = slow_reader(0.125)  # type: ignore[method-assign]
    with pytest.raises(RingOverrun) as e:
        await reader.poll()
    # 15 slices of <= 62 samples, each 125 ms long: at 10.875 s, 1088 samples
    assert (e.value.first, e.value.count, e.value.lost) == (0, 1088, 1088 - 1024)
    assert reader.count == 0
    assert manual_rig.rbt.health.stats.ring_overruns == 1

    # the same read at a pace the ring absorbs is fine
    bus.read_input_registers = slow_reader(0.001)  # type: ignore[method-assign]
    await manual_rig.rbt.command(RbtCommand.STOP)
    axle = ScriptedAxle()
    manual_rig.emu.place_axle(axle)
    await manual_rig.rbt.command(RbtCommand.BRAKE)
    reader.reset()
    clock.t += 9.0
    assert await reader.poll() == 901
    assert reader.samples().tolist() == axle.expected()[:901]


def at(n: int) -> float:
    """Clock time (from BRAKE at 0) when exactly n samples have been taken."""
    return (n - 1) * 0.010 + 0.005


@pytest.mark.parametrize(("before", "after", "lost"), [(1024, 1024, 0), (1025, 1025, 1)])
async def test_overrun_boundary_unread(manual_rig: Rig, before: int, after: int, lost: int) -> None:
    clock = manual_rig.clock
    assert isinstance(clock, ManualClock)
    axle = ScriptedAxle()
    manual_rig.emu.place_axle(axle)
    await manual_rig.rbt.configure(sample_period_ms=10, max_test_ms=30000)
    reader = manual_rig.rbt.ring_reader()
    await manual_rig.rbt.command(RbtCommand.BRAKE)
    reader.reset()
    clock.t = at(before)
    if lost:
        with pytest.raises(RingOverrun) as e:
            await reader.poll()
        assert (e.value.lost, e.value.count) == (lost, after)
        assert not ring_reads(manual_rig.reads)  # known lost: not worth a read
    else:
        assert await reader.poll() == before  # a full ring, read in one go
        assert reader.samples().tolist() == axle.expected()


@pytest.mark.parametrize(("after", "lost"), [(1024, 0), (1025, 1)])
async def test_overrun_boundary_during_the_read(manual_rig: Rig, after: int, lost: int) -> None:
    clock = manual_rig.clock
    assert isinstance(clock, ManualClock)
    axle = ScriptedAxle()
    manual_rig.emu.place_axle(axle)
    await manual_rig.rbt.configure(sample_period_ms=10, max_test_ms=30000)
    reader = manual_rig.rbt.ring_reader()
    await manual_rig.rbt.command(RbtCommand.BRAKE)
    reader.reset()
    clock.t = at(1000)
    bus = manual_rig.rbt.bus
    read = bus.read_input_registers

    async def controller_goes_on(unit: int, address: int, count: int) -> list[int]:
        if address >= 100:
            clock.t = at(after)  # while the first slice travels
        return await read(unit, address, count)

    bus.read_input_registers = controller_goes_on  # type: ignore[method-assign]
    if lost:
        with pytest.raises(RingOverrun) as e:
            await reader.poll()
        assert (e.value.first, e.value.count, e.value.lost) == (0, after, lost)
    else:
        assert await reader.poll() == 1000
        assert reader.samples().tolist() == axle.expected()[:1000]
