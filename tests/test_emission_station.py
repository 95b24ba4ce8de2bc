"""The emission procedure end to end: guide display over Modbus, gas analyser and
opacimeter on ptys, a simulated driver holding the engine speed, scripted vehicles."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from serial_fixtures import StationRig, station_rig

from linectl.clock import Clock
from linectl.drivers.lineio_modbus import Prompt
from linectl.drivers.nha503 import Nha503
from linectl.drivers.nht6 import Nht6
from linectl.items import ItemResult, Verdict
from linectl.stations.emission import EmissionProcedure
from linectl.vehicle import Fuel
from sim import drive_emission
from sim.gas_analyser import GasAnalyserEmulator
from sim.opacimeter import OpacimeterEmulator
from sim.serial_emulator import LineNoise
from sim.vehicles import SimFault, SimVehicle, apply_fault, healthy_vehicle_for

SCALE = 100.0


def vehicle(plate: str, fuel: Fuel = Fuel.PETROL, *faults: SimFault) -> SimVehicle:
    base = healthy_vehicle_for(plate).vehicle
    sv = healthy_vehicle_for(plate, replace(base, fuel=fuel))
    for f in faults:
        apply_fault(sv, f)
    return sv


def instruments(clock: Clock, warmup_s: float = 0.0) -> dict[str, Any]:
    return {
        "nha503": GasAnalyserEmulator(clock, warmup_s=warmup_s),
        "nht6": OpacimeterEmulator(clock),
    }


def procedure(rig: StationRig) -> EmissionProcedure:
    return EmissionProcedure(
        rig.station, rig.ctx, Nha503(rig.devices["nha503"]), Nht6(rig.devices["nht6"])
    )


async def inspect(
    tmp_path: Path, sv: SimVehicle, emus: dict[str, Any], clock: Clock, **site: Any
) -> tuple[ItemResult, StationRig]:
    async with station_rig(tmp_path, "emission", emus, clock, **site) as rig:
        proc = procedure(rig)
        try:
            results, rec = await rig.visit(proc, sv, ["EX"])
        finally:
            await proc.close()
    assert rig.referee.count == 0, rig.referee.violations  # nothing out of order
    assert [r.code for r in results] == ["EX"] and len(rec.attempts) == 1
    return results[0], rig


@pytest.fixture(autouse=True)
def steady_feet(monkeypatch: pytest.MonkeyPatch) -> None:
    # Drivers who hold the band, unless a test says otherwise.
    monkeypatch.setattr(drive_emission, "MISS_CHANCE", 0.0)


async def test_healthy_petrol_car_passes_two_speed_idle(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    emus = instruments(clock)
    ex, rig = await inspect(tmp_path, vehicle("鲁G10001"), emus, clock)
    assert ex.verdict is Verdict.PASS, ex.to_json()
    v = ex.values
    assert v["method"] == "two_speed_idle"
    assert v["high_idle_readings"] == 45 and v["idle_readings"] == 45
    assert 2300 <= v["high_idle_rpm"] <= 2700 and 500 <= v["idle_rpm"] <= 1100
    assert 0.95 <= v["high_idle_lambda"] <= 1.05
    assert ex.raw["high_idle"].shape == (45, 7)
    # daily leak check, zero before the vehicle, back-flush after it
    assert emus["nha503"].commands == [0x87, 0x88, 0x85]
    order = [p for p, _ in rig.prompts]
    assert order.index(Prompt.INSERT_PROBE) < order.index(Prompt.ENGINE_HIGH_IDLE)
    assert order.index(Prompt.ENGINE_HIGH_IDLE) < order.index(Prompt.ENGINE_IDLE)
    assert order.index(Prompt.ENGINE_IDLE) < order.index(Prompt.REMOVE_PROBE)


@pytest.mark.parametrize("fault", ["rich_mixture", "lambda_out"])
async def test_petrol_faults_fail_ex(tmp_path: Path, fault: str) -> None:
    clock = Clock(SCALE)
    sv = vehicle("鲁G10002", Fuel.PETROL, SimFault(fault))
    ex, _ = await inspect(tmp_path, sv, instruments(clock), clock)
    assert sv.expected_items() == {"EX": "fail"}
    assert ex.verdict is Verdict.FAIL, ex.to_json()
    if fault == "lambda_out":
        assert ex.values["high_idle_lambda"] > 1.05
        assert ex.values["high_idle_co_pct"] <= ex.limits["high_idle_co_pct"]
    else:
        assert ex.values["idle_co_pct"] > ex.limits["idle_co_pct"]


async def test_an_rpm_sag_repeats_the_phase_which_then_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drive_emission, "MISS_CHANCE", 1.0)
    monkeypatch.setattr(drive_emission, "MISS_CALMING", 1e9)  # told again, the foot holds
    clock = Clock(SCALE)
    ex, rig = await inspect(tmp_path, vehicle("鲁G10003"), instruments(clock), clock)
    assert ex.verdict is Verdict.PASS, ex.to_json()
    assert rig.shown(Prompt.ENGINE_HIGH_IDLE) == 2
    assert ex.values["high_idle_readings"] == 45


async def test_the_phase_is_not_judged_after_the_configured_repeats(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drive_emission, "MISS_CHANCE", 1.0)
    monkeypatch.setattr(drive_emission, "MISS_CALMING", 1.0)  # sags every time
    clock = Clock(SCALE)
    ex, rig = await inspect(
        tmp_path, vehicle("鲁G10004"), instruments(clock), clock, emission={"max_phase_repeats": 1}
    )
    assert ex.verdict is Verdict.NOT_JUDGED and ex.reason == "invalid_phase"
    assert ex.values["high_idle_phase"] == "rpm_out_of_band"
    assert ex.values["high_idle_attempts"] == 2
    assert rig.shown(Prompt.ENGINE_HIGH_IDLE) == 2 and rig.shown(Prompt.ENGINE_IDLE) == 0
    assert rig.shown(Prompt.REMOVE_PROBE) == 1  # the probe always comes out


async def test_a_cold_analyser_is_waited_for(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    emus = instruments(clock, warmup_s=40.0)
    ex, rig = await inspect(tmp_path, vehicle("鲁G10005"), emus, clock)
    assert ex.verdict is Verdict.PASS, ex.to_json()
    assert rig.shown(Prompt.WAIT) == 1


async def test_a_failed_leak_check_is_a_device_fault(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    emus = instruments(clock)
    emus["nha503"].leak_fault = True
    ex, rig = await inspect(tmp_path, vehicle("鲁G10006"), emus, clock)
    assert ex.verdict is Verdict.NOT_JUDGED
    assert ex.reason == "device_fault: gas analyser leak check failed"
    assert rig.shown(Prompt.INSERT_PROBE) == 0


async def test_garbled_gas_analyser_stream_never_yields_a_verdict(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    emus = instruments(clock)
    emus["nha503"].noise = LineNoise(between=0.05, rng=random.Random(3))
    ex, rig = await inspect(tmp_path, vehicle("鲁G10007"), emus, clock)
    assert ex.verdict is Verdict.NOT_JUDGED and ex.reason == "garbled_data", ex.to_json()
    assert rig.shown(Prompt.REMOVE_PROBE) == 1


async def test_healthy_diesel_passes_free_acceleration(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    emus = instruments(clock)
    ex, rig = await inspect(
        tmp_path, vehicle("鲁G10008", Fuel.DIESEL), emus, clock, emission={"purge_accelerations": 2}
    )
    assert ex.verdict is Verdict.PASS, ex.to_json()
    assert ex.values["method"] == "free_acceleration"
    peaks = [ex.values[f"peak{i}_k_per_m"] for i in (1, 2, 3)]
    assert all(0.1 <= k <= 0.5 for k in peaks)
    assert ex.values["k_per_m"] == pytest.approx(sum(peaks) / 3, abs=0.01)
    assert rig.shown(Prompt.ACCELERATE_FULLY) == 5  # two purges, three measured
    assert emus["nht6"].zeroed == 1 and emus["nht6"].cleared == 3


async def test_a_smoky_diesel_fails(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    sv = vehicle("鲁G10009", Fuel.DIESEL, SimFault("smoky_diesel"))
    ex, _ = await inspect(tmp_path, sv, instruments(clock), clock, limits={"limit_set": "b"})
    assert ex.verdict is Verdict.FAIL and ex.values["k_per_m"] > 1.2
    assert ex.limits["k_per_m"] == 0.7 and sv.expected_items() == {"EX": "fail"}


async def test_garbled_opacimeter_stream_never_yields_a_verdict(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    emus = instruments(clock)
    emus["nht6"].noise = LineNoise(between=0.2, corrupt=0.1, rng=random.Random(4))
    ex, _ = await inspect(tmp_path, vehicle("鲁G10010", Fuel.DIESEL), emus, clock)
    assert ex.verdict is Verdict.NOT_JUDGED and ex.reason == "garbled_data", ex.to_json()


async def test_an_electric_vehicle_has_no_ex_item(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    sv = vehicle("鲁GD12345", Fuel.ELECTRIC)
    assert sv.traits["exhaust"] is None
    async with station_rig(tmp_path, "emission", instruments(clock), clock) as rig:
        proc = procedure(rig)
        try:
            results, rec = await rig.visit(proc, sv, [])
        finally:
            await proc.close()
    assert results == [] and rec.attempts == [] and rig.prompts == [(Prompt.DRIVE_OUT, "")]


async def test_a_back_flush_still_running_is_waited_for_before_the_zero(tmp_path: Path) -> None:
    # The last vehicle's back-flush (20 s) runs on as the next one drives in: the zero
    # is sent when STATUS clears, not hammered until the analyser stops saying busy.
    clock = Clock(SCALE)
    emus = instruments(clock)
    gas = emus["nha503"]
    gas.on_bytes(bytes([0x85]))  # back-flush, as the procedure leaves it
    assert gas.operation() == "back-flush"
    ex, _ = await inspect(tmp_path, vehicle("鲁G10011"), emus, clock)
    assert ex.verdict is Verdict.PASS, ex.to_json()
    assert gas.commands == [0x85, 0x87, 0x88, 0x85]


async def test_an_analyser_that_stays_busy_is_not_judged_and_the_next_vehicle_served(
    tmp_path: Path,
) -> None:
    clock = Clock(SCALE)
    emus = instruments(clock)
    gas = emus["nha503"]
    gas.stuck_busy = True
    gas.on_bytes(bytes([0x85]))  # a back-flush that never ends
    ex, rig = await inspect(tmp_path, vehicle("鲁G10012"), emus, clock)
    assert ex.verdict is Verdict.NOT_JUDGED and ex.reason == "analyser_busy", ex.to_json()
    assert rig.shown(Prompt.INSERT_PROBE) == 0
    gas.stuck_busy = False
    (tmp_path / "next").mkdir()
    ex, _ = await inspect(tmp_path / "next", vehicle("鲁G10013"), emus, clock)
    assert ex.verdict is Verdict.PASS, ex.to_json()


async def test_a_slow_opacimeter_zero_and_peak_clear_are_waited_for(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    emus = instruments(clock)
    emus["nht6"] = OpacimeterEmulator(clock, zero_s=8.0, clear_s=3.0)
    ex, _ = await inspect(tmp_path, vehicle("鲁G10014", Fuel.DIESEL), emus, clock)
    assert ex.verdict is Verdict.PASS, ex.to_json()
    assert emus["nht6"].zeroed == 1 and emus["nht6"].cleared == 3
