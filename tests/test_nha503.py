"""The nha503 driver against the gas-analyser emulator through a real pty."""

from __future__ import annotations

import random

import pytest
from serial_fixtures import ManualClock, on_pty

from linectl.drivers.errors import DeviceTimeout
from linectl.drivers.framing import NhaReply, NhaStatus, decode_nha_reply, split_one_byte
from linectl.drivers.nha503 import Nha503
from linectl.drivers.serial import GarbledFrame
from linectl.vehicle import Fuel
from sim.exhaust import Engine, ExhaustTraits, GasMix
from sim.gas_analyser import GasAnalyserEmulator
from sim.serial_emulator import LineNoise

TRAITS = ExhaustTraits(
    fuel=Fuel.PETROL,
    idle_rpm=780.0,
    governed_rpm=6200.0,
    high_idle_rpm=2500.0,
    oil_temp_c=86.0,
    idle=GasMix(0.20, 30.0, 14.6, 0.3, 90.0, 1.01),
    high_idle=GasMix(0.10, 12.0, 14.9, 0.2, 210.0, 1.00),
)


async def test_warm_up_refuses_commands_and_says_so_in_status() -> None:
    clock = ManualClock()
    emu = GasAnalyserEmulator(clock, warmup_s=60.0)
    async with on_pty(emu, Nha503) as gas:
        r = await gas.read()
        assert r.status == NhaStatus.WARMING_UP and r.lambda_ == 0.0
        assert r.o2_pct == pytest.approx(20.9, abs=0.5)  # air
        assert await gas.zero() is NhaReply.REFUSED
        clock.t = 61.0
        assert (await gas.read()).status == NhaStatus.READY
        assert await gas.zero() is NhaReply.ACCEPTED


async def test_zero_leak_check_and_back_flush_run_for_a_while_and_answer_busy_meanwhile() -> None:
    clock = ManualClock()
    emu = GasAnalyserEmulator(clock, warmup_s=0.0, zero_s=8.0, leak_check_s=12.0)
    async with on_pty(emu, Nha503) as gas:
        assert await gas.zero() is NhaReply.ACCEPTED
        clock.t = 1.0
        assert (await gas.read()).status == NhaStatus.ZEROING
        assert await gas.leak_check() is NhaReply.BUSY
        assert await gas.pump(False) is NhaReply.BUSY
        clock.t = 9.0
        assert (await gas.read()).status == NhaStatus.READY
        emu.leak_fault = True
        assert await gas.leak_check() is NhaReply.ACCEPTED
        clock.t = 10.0
        assert (await gas.read()).status == NhaStatus.LEAK_CHECK_OR_BACK_FLUSH
        clock.t = 22.0
        assert (await gas.read()).status == NhaStatus.LEAK_CHECK_FAILED
        assert await gas.back_flush() is NhaReply.ACCEPTED
        assert await gas.back_flush() is NhaReply.BUSY
        assert emu.commands == [0x88, 0x87, 0x85]


async def test_unknown_command_byte_is_answered_15() -> None:
    emu = GasAnalyserEmulator(ManualClock(), warmup_s=0.0)
    async with on_pty(emu, Nha503) as gas:
        reply = await gas.port.request(b"\x42", split_one_byte, decode_nha_reply)
        assert reply is NhaReply.REFUSED
        with pytest.raises(ValueError):
            await gas.command(0x42)


async def test_readings_follow_the_engine_and_refresh_once_a_second() -> None:
    clock = ManualClock(100.0)
    emu = GasAnalyserEmulator(clock, warmup_s=0.0)
    engine = Engine(TRAITS, clock.t, seed=3)
    async with on_pty(emu, Nha503) as gas:
        emu.place_vehicle(engine)
        r = await gas.read()
        assert abs(r.rpm - 780) < 40 and r.oil_temp_c == 86.0 and r.co2_pct == 0.04  # probe out
        engine.insert_probe(clock.t)
        engine.hold(clock.t, 2500.0)
        clock.t = 120.2
        a = await gas.read()
        clock.t = 120.9
        b = await gas.read()
        assert a == b  # the same second: the same values
        clock.t = 121.1
        c = await gas.read()
        assert c != a
        assert abs(a.rpm - 2500) < 40
        assert a.co_pct == pytest.approx(0.10, abs=0.02) and a.hc_ppm == pytest.approx(12, abs=3)
        assert a.lambda_ == pytest.approx(1.00, abs=0.01) and a.flow_l_min > 10
        emu.low_flow = True
        clock.t = 123.0
        assert (await gas.read()).status == NhaStatus.LOW_FLOW


async def test_a_deaf_analyser_times_out_and_garbled_replies_are_never_used() -> None:
    clock = ManualClock()
    emu = GasAnalyserEmulator(clock, warmup_s=0.0)
    async with on_pty(emu, Nha503, timeout_s=0.1) as gas:
        emu.mute = True
        with pytest.raises(DeviceTimeout):
            await gas.read()
        emu.mute = False
        emu.noise = LineNoise(corrupt=1.0, rng=random.Random(5))
        for i in range(10):
            clock.t = float(i)
            with pytest.raises(GarbledFrame):
                await gas.read()
        assert gas.garbled == 10
        emu.noise = None
        assert (await gas.read()).status == NhaStatus.READY
