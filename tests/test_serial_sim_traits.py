"""The simulated vehicles' lamps and exhaust: healthy designs pass the real judgement
with room, each fault fails exactly the items its expectation names."""

from __future__ import annotations

from dataclasses import replace

import pytest

from linectl.config import DEFAULT_LIMITS_DIR
from linectl.items import LAMP_ITEMS
from linectl.stations.emission_judge import (
    GasReading,
    judge_free_acceleration,
    judge_two_speed_idle,
)
from linectl.stations.headlamp_judge import LampReading, judge_headlamps
from linectl.stations.limits import Limits, load_limits
from linectl.vehicle import Fuel, InspectionType
from sim.exhaust import Engine
from sim.lamps import passes_by_inner_pair
from sim.vehicles import (
    ALL_FAULTS,
    Population,
    SimFault,
    SimVehicle,
    apply_fault,
    healthy_vehicle_for,
)

LIMITS: Limits = load_limits(DEFAULT_LIMITS_DIR)


def nominal_lamps(sv: SimVehicle, inspection_type: InspectionType, mode: str) -> dict[str, str]:
    readings = [
        LampReading(name, beam, b.intensity_cd, b.h_mm, b.v_mm, lamp.height_mm)
        for name, lamp in sv.traits["lamps"].items()
        for beam, b in (("H", lamp.high), ("L", lamp.low))
        if b is not None  # the inner lamps of four have no low beam
    ]
    items = judge_headlamps(readings, sv.vehicle, inspection_type, LIMITS.headlamp, mode)
    return {r.code: str(r.verdict) for r in items}


def nominal_ex(sv: SimVehicle, limit_set: str) -> str | None:
    ex = sv.traits["exhaust"]
    if ex is None:
        return None
    if sv.vehicle.fuel is Fuel.DIESEL:
        peaks = [ex.peak_k] * LIMITS.emission.measured_accelerations
        return str(judge_free_acceleration(peaks, LIMITS.emission, limit_set).verdict)
    engine = Engine(ex, 0.0)
    engine.insert_probe(-100.0)

    def phase(rpm: float) -> list[GasReading]:
        engine.hold(0.0, rpm)
        g = engine.gases(30.0)
        r = GasReading(rpm, g.co_pct, g.hc_ppm, g.lambda_, g.co2_pct, g.o2_pct, g.no_ppm)
        return [r] * 45

    hi, lo = phase(ex.high_idle_rpm), phase(ex.idle_rpm)
    res = judge_two_speed_idle(hi, lo, sv.vehicle, LIMITS.emission, limit_set)
    return str(res.verdict)


def test_population_lamps_and_exhaust_match_their_expectations() -> None:
    pop = Population(seed=5, fault_rate=0.6, faults=ALL_FAULTS)
    kinds: set[str] = set()
    for _ in range(300):
        sv = pop.next()
        kinds |= {f.kind for f in sv.faults}
        for itype in InspectionType:
            for mode in ("record", "judge"):
                exp = sv.expected_items(str(itype), mode)
                got = nominal_lamps(sv, itype, mode)
                want = {c: exp.get(c, "pass") for c in got}
                assert got == want, (sv.plate, sv.fault_labels(), itype, mode)
        for limit_set in ("a", "b"):
            ex = nominal_ex(sv, limit_set)
            if sv.vehicle.fuel is Fuel.ELECTRIC:
                assert ex is None
            else:
                assert ex == sv.expected_items().get("EX", "pass"), (sv.plate, sv.fault_labels())
    assert kinds == set(ALL_FAULTS)


def test_four_lamp_systems_have_high_beam_only_inner_lamps_and_some_pass_by_their_pair() -> None:
    pop = Population(seed=5, fault_rate=0.0)
    four = [sv for sv in (pop.next() for _ in range(400)) if sv.vehicle.headlamp_system == 4]
    assert four
    for sv in four:
        lamps = sv.traits["lamps"]
        assert lamps["LI"].low is None and lamps["RI"].low is None
        assert lamps["L"].low is not None and lamps["R"].low is not None
    by_pair = [sv for sv in four if passes_by_inner_pair(sv.traits["lamps"], sv.vehicle)]
    assert 0 < len(by_pair) < len(four)
    for sv in by_pair:
        for itype in InspectionType:
            readings_pass = nominal_lamps(sv, itype, "record")
            assert set(readings_pass.values()) == {"pass"}, (sv.plate, itype)


@pytest.mark.parametrize("klass", ["M1", "N3"])
def test_misaim_leaves_the_windows_for_m1_and_other_vehicles(klass: str) -> None:
    pop = Population(seed=8, fault_rate=0.0)
    for way_seed in range(12):
        sv = pop.next()
        sv = replace(sv, vehicle=replace(sv.vehicle, vehicle_class=klass), faults=[])
        apply_fault(sv, SimFault("misaimed_lamp", lamp="L"))
        got = nominal_lamps(sv, InspectionType.PERIODIC, "judge")
        assert got[LAMP_ITEMS["L"]] == "fail", way_seed
        assert all(v == "pass" for c, v in got.items() if c != LAMP_ITEMS["L"])


def test_electric_vehicles_have_no_exhaust_and_no_exhaust_fault() -> None:
    base = healthy_vehicle_for("鲁GD12345")
    ev = healthy_vehicle_for("鲁GD12345", replace(base.vehicle, fuel=Fuel.ELECTRIC))
    assert ev.traits["exhaust"] is None
    with pytest.raises(ValueError):
        apply_fault(ev, SimFault("rich_mixture"))
    diesel = healthy_vehicle_for("鲁G54321", replace(base.vehicle, fuel=Fuel.DIESEL))
    with pytest.raises(ValueError):
        apply_fault(diesel, SimFault("lambda_out"))
    apply_fault(diesel, SimFault("smoky_diesel"))
    assert diesel.expected_items() == {"EX": "fail"}
