"""The headlamp procedure end to end: guide display over Modbus, tester on a pty,
a simulated driver switching the beams, scripted vehicles with lamp faults."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
from serial_fixtures import StationRig, station_rig

from linectl.clock import Clock
from linectl.drivers.hlt_ascii import HltAscii
from linectl.drivers.lineio_modbus import Prompt
from linectl.items import Verdict
from linectl.stations.headlamp import HeadlampProcedure
from linectl.vehicle import InspectionType
from sim import drive_headlamp
from sim.headlamp_tester import HeadlampTesterEmulator
from sim.serial_emulator import LineNoise
from sim.vehicles import SimFault, SimVehicle, apply_fault, healthy_vehicle_for

SCALE = 100.0


def car(plate: str = "鲁G12345", lamps: int = 2, *faults: SimFault) -> SimVehicle:
    sv = healthy_vehicle_for(plate)
    if lamps == 4:
        sv = healthy_vehicle_for(plate, replace(sv.vehicle, headlamp_system=4))
    for f in faults:
        apply_fault(sv, f)
    return sv


def procedure(rig: StationRig) -> HeadlampProcedure:
    return HeadlampProcedure(rig.station, rig.ctx, HltAscii(rig.devices["hlt-ascii"]))


@pytest.fixture(autouse=True)
def prompt_drivers(monkeypatch: pytest.MonkeyPatch) -> None:
    # Drivers who always switch in time, unless a test says otherwise.
    monkeypatch.setattr(drive_headlamp, "SLOW_SWITCH_CHANCE", 0.0)


async def test_healthy_two_lamp_car_passes_with_both_beams_recorded(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    async with station_rig(
        tmp_path, "headlamp", {"hlt-ascii": HeadlampTesterEmulator(clock)}, clock
    ) as rig:
        proc = procedure(rig)
        try:
            results, rec = await rig.visit(proc, car(), ["H1", "H4"])
        finally:
            await proc.close()
    assert [r.code for r in results] == ["H1", "H4"]
    assert all(r.verdict is Verdict.PASS for r in results), [r.to_json() for r in results]
    for r in results:
        assert r.values["intensity_cd"] >= 18000 and r.limits["intensity_cd"] == 15000
        assert "low_height_ratio" in r.values and r.values["beam_position"] == "record"
    assert [r.code for r, _ in rec.attempts] == ["H1", "H4"]
    assert rig.shown(Prompt.HIGH_BEAM_ON) == 2 and rig.shown(Prompt.LOW_BEAM_ON) == 2


@pytest.mark.parametrize("lamp", ["L", "R"])
async def test_a_dim_lamp_fails_its_own_item_only(tmp_path: Path, lamp: str) -> None:
    clock = Clock(SCALE)
    sv = car("鲁G23456", 2, SimFault("dim_lamp", lamp=lamp))
    async with station_rig(
        tmp_path, "headlamp", {"hlt-ascii": HeadlampTesterEmulator(clock)}, clock
    ) as rig:
        proc = procedure(rig)
        try:
            results, _ = await rig.visit(proc, sv, ["H1", "H4"])
        finally:
            await proc.close()
    got = {r.code: str(r.verdict) for r in results}
    assert got == {"H1": "pass", "H4": "pass"} | sv.expected_items()
    assert sv.expected_items() == {"H1" if lamp == "L" else "H4": "fail"}


async def test_four_lamps_a_dim_inner_lamp_is_not_rescued_by_the_pair_rule(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    sv = car("鲁G34567", 4, SimFault("dim_lamp", lamp="LI"))
    async with station_rig(
        tmp_path, "headlamp", {"hlt-ascii": HeadlampTesterEmulator(clock)}, clock
    ) as rig:
        proc = procedure(rig)
        try:
            results, _ = await rig.visit(
                proc, sv, ["H1", "H2", "H3", "H4"], InspectionType.PERIODIC
            )
        finally:
            await proc.close()
    got = {r.code: str(r.verdict) for r in results}
    assert got == {"H1": "pass", "H2": "fail", "H3": "pass", "H4": "pass"}
    assert got["H2"] == sv.expected_items()["H2"]


@pytest.mark.parametrize("mode", ["record", "judge"])
async def test_a_misaimed_lamp_fails_only_where_beam_position_is_judged(
    tmp_path: Path, mode: str
) -> None:
    clock = Clock(SCALE)
    sv = car("鲁G45678", 2, SimFault("misaimed_lamp", lamp="R"))
    async with station_rig(
        tmp_path,
        "headlamp",
        {"hlt-ascii": HeadlampTesterEmulator(clock)},
        clock,
        limits={"beam_position": mode},
    ) as rig:
        proc = procedure(rig)
        try:
            results, _ = await rig.visit(proc, sv, ["H1", "H4"])
        finally:
            await proc.close()
    got = {r.code: str(r.verdict) for r in results}
    assert got == {"H1": "pass", "H4": "pass"} | sv.expected_items(beam_position=mode)
    h4 = results[1]
    assert h4.values["high_position_ok"] is False or h4.values["low_position_ok"] is False


async def test_a_slow_driver_is_asked_again_and_the_lamp_is_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(drive_headlamp, "SLOW_SWITCH_CHANCE", 1.0)
    monkeypatch.setattr(drive_headlamp, "SLOW_SWITCH_S", (7.0, 8.0))  # after the head looked
    clock = Clock(SCALE)
    tester = HeadlampTesterEmulator(clock)
    async with station_rig(tmp_path, "headlamp", {"hlt-ascii": tester}, clock) as rig:
        proc = procedure(rig)
        try:
            results, _ = await rig.visit(proc, car(), ["H1"])
        finally:
            await proc.close()
    assert results[0].verdict is Verdict.PASS
    # each beam: the first look finds the wrong beam lit (E1), the second finds it
    assert rig.shown(Prompt.HIGH_BEAM_ON) == 2 and rig.shown(Prompt.LOW_BEAM_ON) == 2
    assert tester.measurements == 4


async def test_garbled_stream_never_yields_a_verdict_and_never_crashes(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    tester = HeadlampTesterEmulator(clock)
    tester.noise = LineNoise(between=0.5, corrupt=0.2, rng=random.Random(11))
    async with station_rig(tmp_path, "headlamp", {"hlt-ascii": tester}, clock) as rig:
        proc = procedure(rig)
        try:
            results, rec = await rig.visit(proc, car(lamps=4), ["H1", "H2", "H3", "H4"])
        finally:
            await proc.close()
    assert [r.code for r in results] == ["H1", "H2", "H3", "H4"]
    assert all(r.verdict is Verdict.NOT_JUDGED for r in results), [r.to_json() for r in results]
    assert {r.reason for r in results} == {"garbled_data"}
    assert len(rec.attempts) == 4
    assert tester.noise.injected + tester.noise.corrupted > 0


async def test_a_dead_tester_leaves_every_lamp_not_judged(tmp_path: Path) -> None:
    clock = Clock(SCALE)
    tester = HeadlampTesterEmulator(clock)
    tester.mute = True
    async with station_rig(tmp_path, "headlamp", {"hlt-ascii": tester}, clock) as rig:
        proc = procedure(rig)
        try:
            results, _ = await rig.visit(proc, car(), ["H1", "H4"])
        finally:
            await proc.close()
    assert [str(r.verdict) for r in results] == ["not_judged", "not_judged"]
    assert all((r.reason or "").startswith("device_fault: ") for r in results)
    assert not proc.device_health()["hlt-ascii-1"]
