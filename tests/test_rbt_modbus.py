"""The rbt-modbus driver against the brake tester emulator, over TCP and RTU."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest
from modbus_fixtures import ManualClock, ScriptedAxle, eventually, served
from pymodbus.client import AsyncModbusTcpClient

from linectl.clock import Clock
from linectl.config import DeviceConfig
from linectl.drivers.errors import ModbusExceptionResponse
from linectl.drivers.modbus import BusRegistry, ModbusBus
from linectl.drivers.rbt_modbus import (
    MAP,
    FaultCode,
    RbtCommand,
    RbtModbus,
    RbtState,
    RbtStatus,
    StopReason,
)
from linectl.drivers.regmap import RegisterMapError, parse_map
from sim.rbt import BrakeTesterEmulator

SCALE = 50.0  # an 8 s run takes 0.16 s (tcp_rig; `rig` moves time by hand)


@dataclass
class Rig:
    clock: Clock
    emu: BrakeTesterEmulator
    rbt: RbtModbus
    port: int  # TCP only, for a raw client

    async def status(self) -> RbtStatus:
        """The status; on a held clock, time first moves on by 50 ms."""
        if isinstance(self.clock, ManualClock):
            self.clock.t += 0.05
        return await self.rbt.status()

    async def wait_state(self, *states: RbtState, timeout_s: float = 5.0) -> RbtStatus:
        return await eventually(self.status, lambda st: st.state in states, timeout_s)


@pytest.fixture(params=["tcp", "rtu"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    """A rig whose clock moves only when the test moves it: a run the test needs
    still RUNNING cannot reach its time limit between two requests, however
    slow the machine is."""
    clock = ManualClock()
    emu = BrakeTesterEmulator(clock, unit=3)
    async with served([emu.sim_device()], request.param) as (transport, handle):
        registry = BusRegistry()
        cfg = DeviceConfig(id="rbt-T", model="rbt-modbus", unit=3, transport=transport)
        bus = ModbusBus.for_transport(transport, 1.0, registry=registry)
        yield Rig(clock, emu, RbtModbus(cfg, bus), handle.port)
        await registry.close_all()


def advance(rig: Rig, seconds: float) -> None:
    assert isinstance(rig.clock, ManualClock)
    rig.clock.t += seconds


@pytest.fixture
async def tcp_rig() -> AsyncIterator[Rig]:
    clock = Clock(SCALE)
    emu = BrakeTesterEmulator(clock, unit=1)
    async with served([emu.sim_device()], "tcp") as (transport, handle):
        registry = BusRegistry()
        cfg = DeviceConfig(id="rbt-T", model="rbt-modbus", transport=transport)
        bus = ModbusBus.for_transport(transport, 1.0, registry=registry)
        yield Rig(clock, emu, RbtModbus(cfg, bus), handle.port)
        await registry.close_all()


async def run_to_end(rig: Rig, axle: ScriptedAxle) -> tuple[RbtStatus, np.ndarray]:
    """BRAKE, read the ring while the run goes, and the status at its end."""
    reader = rig.rbt.ring_reader()
    axle.new_run()
    await rig.rbt.command(RbtCommand.BRAKE)
    reader.reset()

    async def poll_status() -> RbtStatus:
        await reader.poll()
        return await rig.status()

    st = await eventually(poll_status, lambda s: s.state != RbtState.RUNNING)
    await reader.poll()
    assert reader.count == st.sample_count
    return st, reader.samples()


async def test_weigh_gives_the_axle_loads_within_2s(rig: Rig) -> None:
    axle = ScriptedAxle(left_load_kg=512.4, right_load_kg=498.6)
    rig.emu.place_axle(axle)
    await rig.rbt.command(RbtCommand.WEIGH)
    st = await rig.rbt.status()
    assert st.state == RbtState.WEIGHING and st.in_position
    advance(rig, 2.0)
    st = await rig.rbt.status()
    assert st.state == RbtState.WEIGHED
    assert (st.left_load_kg, st.right_load_kg) == (512, 499)
    # reads never change state
    assert await rig.rbt.status() == st


async def test_brake_run_ring_equals_what_the_axle_produced(rig: Rig) -> None:
    axle = ScriptedAxle(slip_left_at=1.5)
    rig.emu.place_axle(axle)
    await rig.rbt.configure(sample_period_ms=10, max_test_ms=8000)
    st, samples = await run_to_end(rig, axle)
    assert st.state == RbtState.DONE
    assert st.stop_reason == StopReason.LEFT_SLIP
    assert (st.slip_left, st.slip_right) == (True, False)
    assert (st.left_force, st.right_force) == (0, 0)  # live forces read 0 after DONE
    assert not st.rollers_running
    # sample i at BRAKE + i * 10 ms; the slip at 1.5 s is the last one taken
    assert st.sample_count == 151 == len(axle.produced)
    times = np.array([t for t, _, _ in axle.produced])
    assert np.allclose(np.diff(times), 0.010)
    assert samples.shape == (151, 2)
    assert samples.tolist() == axle.expected()


async def test_both_wheels_slip(rig: Rig) -> None:
    axle = ScriptedAxle(slip_left_at=0.5, slip_right_at=0.5)
    rig.emu.place_axle(axle)
    st, _ = await run_to_end(rig, axle)
    assert st.stop_reason == StopReason.BOTH_SLIP
    assert (st.slip_left, st.slip_right) == (True, True)


async def test_time_limit_ends_the_run(rig: Rig) -> None:
    axle = ScriptedAxle()
    rig.emu.place_axle(axle)
    await rig.rbt.configure(sample_period_ms=20, max_test_ms=1000)
    st, samples = await run_to_end(rig, axle)
    assert st.state == RbtState.DONE and st.stop_reason == StopReason.TIME_LIMIT
    assert st.sample_count == 50  # 1000 ms at one sample every 20 ms
    times = np.array([t for t, _, _ in axle.produced])
    assert np.allclose(np.diff(times), 0.020)
    assert samples.tolist() == axle.expected()
    assert (st.slip_left, st.slip_right) == (False, False)


async def test_stop_command_ends_the_run(rig: Rig) -> None:
    axle = ScriptedAxle()
    rig.emu.place_axle(axle)
    reader = rig.rbt.ring_reader()
    await rig.rbt.command(RbtCommand.BRAKE)
    reader.reset()
    advance(rig, 0.305)  # samples 0..30 of an 8 s run: it goes on until the test moves time
    assert (await rig.rbt.status()).sample_count == 31
    # while RUNNING only STOP is taken
    await rig.rbt.command(RbtCommand.WEIGH)
    await rig.rbt.command(RbtCommand.TARE)
    assert (await rig.rbt.status()).state == RbtState.RUNNING
    await rig.rbt.command(RbtCommand.STOP)
    st = await rig.rbt.status()
    assert st.state == RbtState.DONE and st.stop_reason == StopReason.STOP_COMMAND
    await reader.poll()
    assert reader.count == st.sample_count == len(axle.produced) == 31
    assert reader.samples().tolist() == axle.expected()
    # nothing more comes after DONE, not even past the run's time limit
    advance(rig, 10.0)
    assert (await rig.rbt.status()).sample_count == st.sample_count


async def test_slip_latches_until_next_brake_or_axle_leaves(rig: Rig) -> None:
    axle = ScriptedAxle(slip_right_at=0.2)
    rig.emu.place_axle(axle)
    st, _ = await run_to_end(rig, axle)
    assert st.stop_reason == StopReason.RIGHT_SLIP
    advance(rig, 1.0)
    st = await rig.rbt.status()
    assert (st.slip_left, st.slip_right) == (False, True)  # latched
    # the next BRAKE clears the latch
    axle.slip_right_at = None
    await rig.rbt.command(RbtCommand.BRAKE)
    st = await rig.rbt.status()
    assert st.state == RbtState.RUNNING and not st.slip_right and st.rollers_running
    await rig.rbt.command(RbtCommand.STOP)
    # ...and so does the axle leaving
    axle.slip_right_at = 0.1
    st, _ = await run_to_end(rig, axle)
    assert st.slip_right
    rig.emu.place_axle(None)
    st = await rig.rbt.status()
    assert not st.in_position and not st.slip_right


async def test_no_axle_faults_6_until_next_valid_command(rig: Rig) -> None:
    await rig.rbt.command(RbtCommand.BRAKE)
    st = await rig.rbt.status()
    assert (st.state, st.fault_code) == (RbtState.FAULT, FaultCode.NO_AXLE)
    assert not st.rollers_running
    await rig.rbt.command(RbtCommand.WEIGH)
    st = await rig.rbt.status()
    assert (st.state, st.fault_code) == (RbtState.FAULT, FaultCode.NO_AXLE)
    await rig.rbt.command(RbtCommand.TARE)
    st = await rig.rbt.status()
    assert (st.state, st.fault_code) == (RbtState.TARING, FaultCode.NONE)
    await rig.wait_state(RbtState.IDLE)
    # the axle arriving makes WEIGH valid: it clears a FAULT 6 too
    await rig.rbt.command(RbtCommand.WEIGH)
    assert (await rig.rbt.status()).state == RbtState.FAULT
    rig.emu.place_axle(ScriptedAxle())
    await rig.rbt.command(RbtCommand.WEIGH)
    st = await rig.rbt.status()
    assert (st.state, st.fault_code) == (RbtState.WEIGHING, FaultCode.NONE)


async def test_sensor_fault_during_a_run(rig: Rig) -> None:
    axle = ScriptedAxle()
    rig.emu.place_axle(axle)
    await rig.rbt.command(RbtCommand.BRAKE)
    advance(rig, 0.105)
    assert (await rig.rbt.status()).sample_count == 11
    rig.emu.inject_fault(FaultCode.LEFT_FORCE_SENSOR)
    st = await rig.rbt.status()
    assert (st.state, st.fault_code) == (RbtState.FAULT, FaultCode.LEFT_FORCE_SENSOR)
    assert not st.rollers_running
    n = st.sample_count
    advance(rig, 0.5)
    assert (await rig.rbt.status()).sample_count == n  # the run is over
    # still broken: BRAKE is refused
    await rig.rbt.command(RbtCommand.BRAKE)
    assert (await rig.rbt.status()).fault_code == FaultCode.LEFT_FORCE_SENSOR
    rig.emu.clear_fault()
    await rig.rbt.command(RbtCommand.BRAKE)
    st = await rig.rbt.status()
    assert (st.state, st.fault_code) == (RbtState.RUNNING, FaultCode.NONE)


async def test_lift_and_parameters_reach_the_controller(tcp_rig: Rig) -> None:
    rbt, emu = tcp_rig.rbt, tcp_rig.emu
    await rbt.command(RbtCommand.LIFT_UP)
    await eventually(rbt.lift_is_up, bool)
    assert emu.lift_up and (await rbt.status()).lift_up
    await rbt.command(RbtCommand.LIFT_DOWN)
    await eventually(rbt.lift_is_up, lambda up: not up)
    assert not (await rbt.status()).lift_up
    await rbt.configure(sample_period_ms=50, max_test_ms=12000)
    await rbt.set_test_kind(parking=True)
    async with AsyncModbusTcpClient("127.0.0.1", port=tcp_rig.port) as raw:
        # addresses as devices.md writes them: 0 COMMAND, 1 period, 2 limit, 3 kind
        rsp = await raw.read_holding_registers(0, count=4, device_id=1)
        assert rsp.registers == [RbtCommand.LIFT_DOWN, 50, 12000, 1]
    assert emu.test_kind == 1
    with pytest.raises(ValueError):
        await rbt.configure(sample_period_ms=15)


async def test_vehicle_tag_utf8_never_cut_inside_a_character(tcp_rig: Rig) -> None:
    # 3 + 1 + 2 + 6 + 3 + 3 = 18 bytes fit; the next 3-byte character would end at byte 21
    plate = "粤B·D12345警警测"
    await tcp_rig.rbt.set_vehicle_tag(plate)
    async with AsyncModbusTcpClient("127.0.0.1", port=tcp_rig.port) as raw:
        rsp = await raw.read_holding_registers(10, count=10, device_id=1)
    raw_bytes = b"".join(r.to_bytes(2, "big") for r in rsp.registers)
    utf8 = plate.encode()
    keep = len("粤B·D12345警警".encode())
    assert keep <= 20 < keep + 3
    assert raw_bytes == utf8[:keep] + b"\0" * (20 - keep)
    assert tcp_rig.emu.vehicle_tag == "粤B·D12345警警"
    await tcp_rig.rbt.set_vehicle_tag("京A12345")
    assert tcp_rig.emu.vehicle_tag == "京A12345"


async def test_raw_client_sees_devices_md_addresses_and_exceptions(tcp_rig: Rig) -> None:
    axle = ScriptedAxle(slip_left_at=0.3)
    tcp_rig.emu.place_axle(axle)
    st, samples = await run_to_end(tcp_rig, axle)
    async with AsyncModbusTcpClient("127.0.0.1", port=tcp_rig.port) as raw:

        async def exc(rsp_coro: object) -> int:
            rsp = await rsp_coro  # type: ignore[misc]
            assert rsp.isError(), rsp
            return rsp.exception_code

        ir = await raw.read_input_registers(0, count=9, device_id=1)
        assert ir.registers[0] == 5  # STATE DONE
        assert ir.registers[6] == 1  # STOP_REASON left slip
        assert (ir.registers[7] << 16) | ir.registers[8] == st.sample_count
        ring0 = await raw.read_input_registers(100, count=2, device_id=1)
        assert ring0.registers == samples[0].tolist() == axle.expected()[0]
        last = st.sample_count - 1
        ring_last = await raw.read_input_registers(100 + 2 * last, count=2, device_id=1)
        assert ring_last.registers == axle.expected()[-1]
        di = await raw.read_discrete_inputs(0, count=5, device_id=1)
        assert di.bits[:5] == [True, True, False, False, False]

        # undefined addresses: 02
        for address, count in ((9, 1), (8, 2), (99, 1), (50, 60), (2148, 1), (2140, 10)):
            assert await exc(raw.read_input_registers(address, count=count, device_id=1)) == 2
        for address, count in ((4, 1), (3, 2), (9, 1), (20, 1), (10, 11)):
            assert await exc(raw.read_holding_registers(address, count=count, device_id=1)) == 2
        assert await exc(raw.write_register(5, 1, device_id=1)) == 2
        assert await exc(raw.read_discrete_inputs(5, count=1, device_id=1)) == 2
        assert await exc(raw.read_discrete_inputs(3, count=3, device_id=1)) == 2
        assert await exc(raw.read_coils(0, count=1, device_id=1)) == 2
        assert await exc(raw.write_coil(0, True, device_id=1)) == 2

        # values out of range: 03, and nothing changes
        for address, value in (
            (1, 15),
            (1, 0),
            (1, 110),
            (2, 999),
            (2, 30001),
            (3, 2),
            (0, 7),
        ):
            assert await exc(raw.write_register(address, value, device_id=1)) == 3
        assert await exc(raw.write_registers(1, [20, 40000], device_id=1)) == 3
        hr = await raw.read_holding_registers(0, count=4, device_id=1)
        assert hr.registers == [RbtCommand.BRAKE, 10, 8000, 0]
        # the edges of the ranges are taken
        for address, value in ((1, 100), (1, 10), (2, 1000), (2, 30000), (3, 1), (0, 0)):
            assert not (await raw.write_register(address, value, device_id=1)).isError()
        hr = await raw.read_holding_registers(0, count=4, device_id=1)
        assert hr.registers == [0, 10, 30000, 1]


async def test_exception_reaches_the_driver_as_modbus_exception(tcp_rig: Rig) -> None:
    with pytest.raises(ModbusExceptionResponse) as e:
        await tcp_rig.rbt.bus.read_input_registers(1, 9, 1)
    assert e.value.code == 2
    with pytest.raises(ModbusExceptionResponse) as e:
        await tcp_rig.rbt.bus.write_register(1, 3, 2)
    assert e.value.code == 3
    assert tcp_rig.rbt.health.ok  # the device answered


def test_enums_agree_with_the_register_map() -> None:
    assert {int(s) for s in RbtState} == set(MAP["STATE"].values or ())
    assert {int(f) for f in FaultCode} == set(MAP["FAULT_CODE"].values or ())
    assert {int(r) for r in StopReason} == set(MAP["STOP_REASON"].values or ())
    assert [int(c) for c in RbtCommand] == list(range(MAP["COMMAND"].max + 1))  # type: ignore[operator]
    # the map's addresses, as devices.md writes them
    hand = {
        "STATE": 0,
        "FAULT_CODE": 1,
        "LEFT_LOAD": 2,
        "RIGHT_LOAD": 3,
        "LEFT_FORCE": 4,
        "RIGHT_FORCE": 5,
        "STOP_REASON": 6,
        "SAMPLE_COUNT": 7,
        "RING": 100,
        "COMMAND": 0,
        "SAMPLE_PERIOD_MS": 1,
        "MAX_TEST_MS": 2,
        "TEST_KIND": 3,
        "VEHICLE_TAG": 10,
        "IN_POSITION": 0,
        "SLIP_LEFT": 1,
        "SLIP_RIGHT": 2,
        "ROLLERS_RUNNING": 3,
        "LIFT_UP": 4,
    }
    assert {name: MAP[name].address for name in hand} == hand
    assert MAP["RING"].end == 2148 and MAP["VEHICLE_TAG"].count == 10


@pytest.mark.parametrize(
    ("table", "why"),
    [
        ({"A": {"address": 0, "count": 2, "type": "u32"}, "B": {"address": 1}}, "overlap"),
        ({"A": {"address": 1, "min": 10, "max": 100, "step": 10, "default": 15}}, "default 15"),
        ({"A": {"address": 1, "type": "bit"}}, "does not fit"),
        ({"A": {"address": 65535, "count": 2, "type": "u32"}}, "out of 0..65535"),
        (
            {"A": {"address": 100, "count": 2048, "type": "ring", "slots": 1000, "record": 2}},
            "ring",
        ),
    ],
)
def test_a_bad_register_map_is_refused_naming_the_key(table: dict[str, object], why: str) -> None:
    with pytest.raises(RegisterMapError, match=why) as e:
        parse_map({"model": "x", "holding_registers": table}, "x.toml")
    assert str(e.value).startswith("x.toml: ")
