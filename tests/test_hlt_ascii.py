"""The hlt-ascii driver against the headlamp-tester emulator through a real pty."""

from __future__ import annotations

import pytest
from serial_fixtures import ManualClock, on_pty

from linectl.drivers.framing import HltError, decode_hlt, parse_hlt_reply, split_hlt
from linectl.drivers.hlt_ascii import HeadlampError, HltAscii
from sim.headlamp_tester import HeadlampTesterEmulator
from sim.lamps import Beam, Lamp, LampSwitch

LAMPS = {
    "L": Lamp("L", 680.0, high=Beam(24000.0, -30.0, -68.0), low=Beam(9000.0, 40.0, -170.0)),
    "R": Lamp("R", 682.0, high=Beam(23000.0, 60.0, -70.0), low=Beam(8800.0, 80.0, -175.0)),
}


async def test_no_measurement_and_no_vehicle() -> None:
    emu = HeadlampTesterEmulator(ManualClock())
    async with on_pty(emu, HltAscii) as hlt:
        with pytest.raises(HeadlampError) as e:
            await hlt.result()
        assert e.value.code is HltError.NO_MEASUREMENT
        with pytest.raises(HeadlampError) as e:
            await hlt.measure("L", "H")
        assert e.value.code is HltError.NOT_IN_POSITION


async def test_a_measurement_searches_2_to_4_s_then_repeats_its_result() -> None:
    clock = ManualClock(100.0)
    emu = HeadlampTesterEmulator(clock, seed=4)
    lamps = LampSwitch(LAMPS)
    async with on_pty(emu, HltAscii) as hlt:
        emu.place_vehicle(lamps)
        lamps.switch("H", clock.t)
        await hlt.measure("L", "H")
        assert await hlt.result() is None  # BUSY
        with pytest.raises(HeadlampError) as e:
            await hlt.measure("R", "H")
        assert e.value.code is HltError.BUSY
        clock.t = 101.9
        assert await hlt.result() is None  # never found in under 2 s
        clock.t = 104.01
        r = await hlt.result()
        assert r is not None and (r.lamp, r.beam) == ("L", "H")
        assert r.intensity_cd == pytest.approx(24000, rel=0.05)
        assert abs(r.h_mm + 30) <= 15 and abs(r.v_mm + 68) <= 15 and abs(r.height_mm - 680) <= 8
        clock.t = 130.0
        assert await hlt.result() == r  # repeated until the next MEA or RST
        await hlt.reset()
        with pytest.raises(HeadlampError) as e:
            await hlt.result()
        assert e.value.code is HltError.NO_MEASUREMENT


async def test_no_lamp_found_at_mea_or_from_res() -> None:
    clock = ManualClock()
    emu = HeadlampTesterEmulator(clock)
    lamps = LampSwitch(LAMPS)
    async with on_pty(emu, HltAscii) as hlt:
        emu.place_vehicle(lamps)
        with pytest.raises(HeadlampError) as e:
            await hlt.measure("LI", "H")  # a two-lamp car has no inner lamp
        assert e.value.code is HltError.NO_LAMP
        lamps.switch("L", clock.t)  # low beam on, high asked
        await hlt.measure("R", "H")
        clock.t = 5.0
        with pytest.raises(HeadlampError) as e:
            await hlt.result()
        assert e.value.code is HltError.NO_LAMP
        # the beam counts as it was when the head found the lamp, not when RES asks
        await hlt.measure("R", "L")
        lamps.switch("H", 5.5)  # switched before the head got there
        clock.t = 10.0
        with pytest.raises(HeadlampError):
            await hlt.result()
        await hlt.measure("R", "H")
        lamps.switch("L", 14.5)  # switched after the head found the lamp (by 14.0)
        clock.t = 15.0
        r = await hlt.result()
        assert r is not None and r.beam == "H"


async def test_a_frame_with_a_bad_bcc_is_answered_e9() -> None:
    emu = HeadlampTesterEmulator(ManualClock())
    async with on_pty(emu, HltAscii) as hlt:
        reply = await hlt.port.request(
            bytes.fromhex("02 52 53 54 03 57"),  # RST with BCC 57 instead of 56
            split_hlt,
            lambda f: parse_hlt_reply(decode_hlt(f)),
        )
        assert reply.kind == "ERR" and reply.error is HltError.FRAME_ERROR
        await hlt.reset()  # a good frame right after is understood
