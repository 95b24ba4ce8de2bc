"""The nht6 driver against the opacimeter emulator through a real pty."""

from __future__ import annotations

import pytest
from serial_fixtures import ManualClock, on_pty

from linectl.drivers.errors import DeviceTimeout
from linectl.drivers.framing import NHT_PEAKS, decode_smoke_frame, nht_splitter
from linectl.drivers.nht6 import Nht6
from linectl.vehicle import Fuel
from sim.exhaust import Engine, ExhaustTraits, opacity_pct
from sim.opacimeter import DRIFT_AT_POWER_UP, OpacimeterEmulator

TRAITS = ExhaustTraits(
    fuel=Fuel.DIESEL,
    idle_rpm=800.0,
    governed_rpm=4500.0,
    high_idle_rpm=2500.0,
    oil_temp_c=-4.5,  # a cold morning: OIL_T is signed
    peak_k=1.80,
    idle_k=0.05,
)


async def test_live_values_without_and_with_a_vehicle() -> None:
    clock = ManualClock(50.0)
    emu = OpacimeterEmulator(clock, zero_s=3.0)
    async with on_pty(emu, Nht6) as smoke:
        # never zeroed: the drift of its optics shows in clean air
        r = await smoke.realtime()
        assert r.k_per_m == pytest.approx(DRIFT_AT_POWER_UP, abs=0.01) and r.rpm == 0
        await smoke.zero()
        assert emu.zeroed == 1 and emu.zeroing
        clock.t = 52.9  # the echo came at once; the zero is not applied yet
        assert (await smoke.realtime()).k_per_m > 0.05
        clock.t = 53.0
        r = await smoke.realtime()
        assert (r.opacity_pct, r.k_per_m) == (0.0, 0.0) and not emu.zeroing
        engine = Engine(TRAITS, clock.t, seed=1)
        emu.place_vehicle(engine)
        engine.insert_probe(clock.t)
        clock.t = 55.0
        r = await smoke.realtime()
        assert r.k_per_m == pytest.approx(0.05, abs=0.02) and r.oil_temp_c == -4.5
        assert abs(r.rpm - 800) < 40
    assert emu.referee.count == 0


async def test_peaks_hold_the_maximum_of_a_free_acceleration_until_cleared() -> None:
    clock = ManualClock(10.0)
    emu = OpacimeterEmulator(clock, clear_s=1.0)
    engine = Engine(TRAITS, clock.t, seed=2)
    async with on_pty(emu, Nht6) as smoke:
        emu.place_vehicle(engine)
        engine.insert_probe(clock.t)
        await smoke.clear_peaks()
        clock.t = 11.0  # the clear lands at the end of the measuring cycle
        engine.free_accelerate(clock.t, hold_s=2.0)
        clock.t = 12.0
        live = await smoke.realtime()
        assert live.rpm > 3500  # near the governed speed
        clock.t = 19.0  # the puff came and went between two polls
        live = await smoke.realtime()
        assert live.k_per_m < 0.2 and abs(live.rpm - 800) < 60
        peak = await smoke.peaks()
        assert peak.k_per_m == pytest.approx(1.80, rel=0.06)
        assert peak.opacity_pct == pytest.approx(opacity_pct(peak.k_per_m), abs=0.1)
        await smoke.clear_peaks()
        assert (await smoke.peaks()).k_per_m == peak.k_per_m  # not landed yet
        assert emu.old_peak_held
        clock.t = 20.0
        assert (await smoke.peaks()).k_per_m < 0.2 and emu.cleared == 2
        assert not emu.old_peak_held


async def test_a_frame_with_a_bad_cs_or_an_unknown_command_gets_no_reply() -> None:
    emu = OpacimeterEmulator(ManualClock())
    async with on_pty(emu, Nht6, timeout_s=0.1) as smoke:
        for frame in (bytes.fromhex("A6 5B"), bytes.fromhex("B0 50")):
            with pytest.raises(DeviceTimeout):
                await smoke.port.request(
                    frame, nht_splitter(NHT_PEAKS), lambda f: decode_smoke_frame(f, NHT_PEAKS)
                )
        # ... and the opacimeter is back in step for the next good frame
        assert (await smoke.peaks()).k_per_m == 0.0
