"""The lineio-modbus driver against the line I/O emulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from modbus_fixtures import served
from pymodbus.client import AsyncModbusTcpClient

from linectl.clock import Clock
from linectl.config import DeviceConfig, TcpTransport
from linectl.drivers.lineio_modbus import MAP, LineIO, Prompt, StationInputs
from linectl.drivers.modbus import BusRegistry, ModbusBus
from sim.lineio import LineIOEmulator, PromptBlock

N = 3


@dataclass
class Rig:
    emu: LineIOEmulator
    io: LineIO
    port: int
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def raw(self) -> AsyncModbusTcpClient:
        return AsyncModbusTcpClient("127.0.0.1", port=self.port)


@pytest.fixture(params=["tcp", "rtu"])
async def rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    emu = LineIOEmulator(Clock(20.0), N, unit=2)
    async with served([emu.sim_device()], request.param) as (transport, handle):
        registry = BusRegistry()
        bus = ModbusBus.for_transport(transport, 1.0, registry=registry)
        cfg = DeviceConfig(id="io-T", model="lineio-modbus", unit=2, transport=transport)
        rig = Rig(emu, LineIO(cfg, bus, N), handle.port)
        # record what goes on the wire, keeping the real requests
        for name in ("write_registers", "write_register", "read_discrete_inputs"):
            real = getattr(bus, name)

            async def spy(*args: Any, _real: Any = real, _name: str = name) -> Any:
                rig.calls.append((_name, args))
                return await _real(*args)

            setattr(bus, name, spy)
        yield rig
        await registry.close_all()


@pytest.fixture
async def tcp_rig() -> AsyncIterator[Rig]:
    emu = LineIOEmulator(Clock(20.0), N, unit=2)
    async with served([emu.sim_device()], "tcp") as (transport, handle):
        registry = BusRegistry()
        bus = ModbusBus.for_transport(transport, 1.0, registry=registry)
        cfg = DeviceConfig(id="io-T", model="lineio-modbus", unit=2, transport=transport)
        yield Rig(emu, LineIO(cfg, bus, N), handle.port)
        await registry.close_all()


def shown(b: PromptBlock) -> tuple[int, str, str, int]:
    return (b.code, b.plate, b.text, b.seq)


def text_regs(raw: bytes) -> list[int]:
    return [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]


async def test_show_is_one_fc16_block_at_devices_md_addresses(rig: Rig) -> None:
    await rig.io.start()
    seq = await rig.io.show(1, Prompt.DRIVE_IN, "京A12345", "请驶入 1 号工位")
    assert seq == 1
    writes = [c for c in rig.calls if c[0].startswith("write")]
    assert len(writes) == 1 and writes[0][0] == "write_registers"
    unit, address, values = writes[0][1]
    assert (unit, address, len(values)) == (2, 1100, 42)
    # the emulator decoded the same block
    assert shown(rig.emu.prompt(1)) == (1, "京A12345", "请驶入 1 号工位", 1)
    assert rig.emu.prompt(0).seq == rig.emu.prompt(2).seq == 0


async def test_block_bytes_as_a_raw_client_reads_them(tcp_rig: Rig) -> None:
    await tcp_rig.io.start()
    plate, text = "粤B·D1234", "请踩制动踏板"
    await tcp_rig.io.show(2, Prompt.APPLY_BRAKE, plate, text)
    async with tcp_rig.raw() as raw:
        rsp = await raw.read_holding_registers(1200, count=42, device_id=2)
    regs = rsp.registers
    assert regs[0] == 4  # APPLY_BRAKE
    assert regs[1:9] == text_regs(plate.encode().ljust(16, b"\0"))
    assert regs[9:41] == text_regs(text.encode().ljust(64, b"\0"))
    assert regs[41] == 1


async def test_chinese_text_is_cut_between_characters(tcp_rig: Rig) -> None:
    await tcp_rig.io.start()
    plate = "京A·F0123学"  # 3 + 1 + 2 + 5 + 3 = 14 bytes; one more 3-byte char would not fit
    text = "前" * 22  # 66 bytes: 21 characters fit in 64
    await tcp_rig.io.show(0, Prompt.DRIVE_OUT, plate + "警", text)
    blk = tcp_rig.emu.prompt(0)
    assert blk.plate == plate and blk.text == "前" * 21
    async with tcp_rig.raw() as raw:
        rsp = await raw.read_holding_registers(1001, count=8, device_id=2)
    assert rsp.registers == text_regs(plate.encode().ljust(16, b"\0"))


async def test_seq_continues_from_the_device_after_start(tcp_rig: Rig) -> None:
    async with tcp_rig.raw() as raw:
        # what an earlier run of the daemon left on station 1 and 2
        for s, seq in ((1, 41), (2, 65535)):
            block = [16, *[0] * 8, *text_regs(b"old".ljust(64, b"\0")), seq]
            assert not (await raw.write_registers(100 * s + 1000, block, device_id=2)).isError()
    await tcp_rig.io.start()
    assert [tcp_rig.io.seq(s) for s in range(N)] == [0, 41, 65535]
    assert await tcp_rig.io.show(1, Prompt.STOP_HERE) == 42
    assert await tcp_rig.io.show(2, Prompt.STOP_HERE) == 0  # mod 65536
    assert await tcp_rig.io.show(0, Prompt.DRIVE_IN, "京A1") == 1
    assert tcp_rig.emu.prompt(2).seq == 0 and tcp_rig.emu.prompt(2).code == Prompt.STOP_HERE


async def test_wait_prompt_sees_new_seq_not_refresh(rig: Rig) -> None:
    await rig.io.start()
    first = await rig.io.show(0, Prompt.RELEASE_BRAKE, "京A12345", "5")
    waiter = asyncio.create_task(rig.emu.wait_prompt(0, first))
    await rig.io.refresh(0, "4")
    await asyncio.sleep(0)  # let the waiter look at the refreshed block
    assert not waiter.done()
    assert shown(rig.emu.prompt(0)) == (3, "京A12345", "4", first)
    # the same prompt given twice is two prompts
    second = await rig.io.show(0, Prompt.RELEASE_BRAKE, "京A12345", "5")
    blk = await asyncio.wait_for(waiter, 2.0)
    assert shown(blk) == (3, "京A12345", "5", second) and second == first + 1
    # a prompt already shown is seen at once
    assert (await asyncio.wait_for(rig.emu.wait_prompt(0, first), 2.0)).seq == second


async def test_same_seq_with_other_code_is_refused(tcp_rig: Rig) -> None:
    await tcp_rig.io.start()
    seq = await tcp_rig.io.show(1, Prompt.HIGH_BEAM_ON)
    async with tcp_rig.raw() as raw:
        block = [Prompt.LOW_BEAM_ON, *[0] * 40, seq]
        rsp = await raw.write_registers(1100, block, device_id=2)
        assert rsp.isError() and rsp.exception_code == 3
        rsp = await raw.write_register(1100, 18, device_id=2)  # no such prompt code
        assert rsp.isError() and rsp.exception_code == 3
        for address, count in ((999, 1), (1042, 1), (1041, 2), (1300, 1)):
            rsp = await raw.read_holding_registers(address, count=count, device_id=2)
            assert rsp.isError() and rsp.exception_code == 2, address
        rsp = await raw.read_input_registers(0, count=1, device_id=2)
        assert rsp.isError() and rsp.exception_code == 2
        rsp = await raw.read_discrete_inputs(8 * N - 1, count=2, device_id=2)
        assert rsp.isError() and rsp.exception_code == 2
        rsp = await raw.write_coil(8 * N, True, device_id=2)
        assert rsp.isError() and rsp.exception_code == 2
    assert tcp_rig.emu.prompt(1).code == Prompt.HIGH_BEAM_ON


async def test_entry_light(rig: Rig) -> None:
    assert not rig.emu.entry_light(1)
    waiter = asyncio.create_task(rig.emu.wait_entry_light(1, True))
    await rig.io.set_entry_light(1, True)
    await asyncio.wait_for(waiter, 2.0)
    assert rig.emu.entry_light(1) and not rig.emu.entry_light(0) and not rig.emu.entry_light(2)
    await rig.io.set_entry_light(1, False)
    await asyncio.wait_for(rig.emu.wait_entry_light(1, False), 2.0)


async def test_coils_and_spare_bits_as_a_raw_client_sees_them(tcp_rig: Rig) -> None:
    await tcp_rig.io.set_entry_light(2, True)
    async with tcp_rig.raw() as raw:
        coils = await raw.read_coils(0, count=24, device_id=2)
        assert coils.bits[:24] == [i == 16 for i in range(24)]
        # a spare coil is kept and does nothing
        assert not (await raw.write_coil(8 * 1 + 5, True, device_id=2)).isError()
        coils = await raw.read_coils(8, count=8, device_id=2)
        assert coils.bits[:8] == [False] * 5 + [True, False, False]
        assert not tcp_rig.emu.entry_light(1)
        tcp_rig.emu.set_inputs(1, in_position=True)
        inputs = await raw.read_discrete_inputs(0, count=24, device_id=2)
        # power-up: EXIT_CLEAR 1, IN_POSITION 0; spare inputs read 0
        expect = [False] * 24
        for s in range(N):
            expect[8 * s + 1] = True
        expect[8] = True
        assert inputs.bits[:24] == expect


async def test_inputs_of_all_stations_in_one_request(rig: Rig) -> None:
    assert await rig.io.all_inputs() == [StationInputs(False, True)] * N
    assert all(i.free for i in await rig.io.all_inputs())
    rig.emu.set_inputs(0, in_position=True)
    rig.emu.set_inputs(2, in_position=True, exit_clear=False)
    rig.calls.clear()
    got = await rig.io.all_inputs()
    assert got == [
        StationInputs(True, True),
        StationInputs(False, True),
        StationInputs(True, False),
    ]
    assert rig.calls == [("read_discrete_inputs", (2, 0, 8 * N))]
    assert await rig.io.inputs(2) == StationInputs(True, False)
    assert rig.calls[-1] == ("read_discrete_inputs", (2, 16, 2))
    assert not got[0].free


def test_prompt_codes_and_map_agree_with_devices_md() -> None:
    assert [p.value for p in Prompt] == list(range(18))
    assert (MAP["PROMPT"].min, MAP["PROMPT"].max) == (0, 17)
    assert Prompt.DRIVE_FORWARD == 6 and Prompt.REMOVE_PROBE == 17
    hand = {"PROMPT": 1000, "PLATE": 1001, "TEXT": 1009, "SEQ": 1041}
    assert {n: MAP[n].address for n in hand} == hand
    assert (MAP["PLATE"].count, MAP["TEXT"].count) == (8, 32)
    assert [MAP.station_address("SEQ", s) for s in range(3)] == [1041, 1141, 1241]
    assert [MAP.station_address("EXIT_CLEAR", s) for s in range(3)] == [1, 9, 17]
    assert PromptBlock(1, "", "", 2) == PromptBlock(code=1, plate="", text="", seq=2)


async def test_block_survives_a_new_driver(tcp_rig: Rig) -> None:
    """A daemon restart: refresh() right after start() keeps code and plate."""
    await tcp_rig.io.start()
    seq = await tcp_rig.io.show(1, Prompt.ENGINE_HIGH_IDLE, "京B2", "30")
    transport = TcpTransport(host="127.0.0.1", port=tcp_rig.port)
    registry = BusRegistry()
    cfg = DeviceConfig(id="io-T2", model="lineio-modbus", unit=2, transport=transport)
    again = LineIO(cfg, ModbusBus.for_transport(transport, 1.0, registry=registry), N)
    await again.start()
    await again.refresh(1, "29")
    assert shown(tcp_rig.emu.prompt(1)) == (Prompt.ENGINE_HIGH_IDLE, "京B2", "29", seq)
    await registry.close_all()
