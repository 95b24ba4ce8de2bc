"""The site end to end with instruments that take their real time: the brake tester's
lift travels, the headlamp head searches, a vehicle may stand in a station; the
simulator referees every step. Faults that never arrive leave items not judged,
release the vehicle, and the line serves the next one once the device answers."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from pathlib import Path

from site_fixtures import running_site
from test_site import brake_only_items, fleet

from linectl.drivers.lineio_modbus import Prompt
from sim.lamps import make_lamps, passes_by_inner_pair
from sim.vehicles import SimFault, SimVehicle, healthy_vehicle_for

BRAKE = ("brake",)
HEADLAMP = ("headlamp",)


async def test_axles_are_weighed_on_a_lowered_lift_and_driven_only_with_it_up(
    tmp_path: Path,
) -> None:
    # The lift is down at power-up and takes the longest devices.md allows: a daemon
    # that weighed before it arrived would read 60 % of each axle (sim/rbt.py). A
    # station before another is left at once on DRIVE_OUT (no result shown first).
    cars = fleet(None, SimFault("weak_axle", 2), seed=31)
    async with running_site(tmp_path, kinds=(*BRAKE, "headlamp")) as rig:
        rbt = rig.sim.emulators["rbt-L1"]
        rbt.lift_travel_s = 3.0
        assert not rbt.lift_up
        recs = await rig.inspect_all(cars, items=brake_only_items())
        violations = rig.sim.referee.violations
    assert not violations, violations
    for sv, rec in zip(cars, recs, strict=True):
        got = {c: str(v) for c, v in rec.item_verdicts().items()}
        assert got == {c: "pass" for c in got} | sv.expected_items(), got
        for n in (1, 2):
            values = rec.latest_attempts()[f"B{n}"].values
            axle = sv.axle(n)
            assert abs(values["left_load_kg"] - axle.left.load_kg) <= 1
            assert abs(values["right_load_kg"] - axle.right.load_kg) <= 1


async def test_a_stuck_lift_is_a_lift_fault_and_the_next_vehicle_waits_for_it(
    tmp_path: Path,
) -> None:
    first, second = fleet(None, None, seed=32)
    async with running_site(tmp_path, kinds=BRAKE) as rig:
        rbt = rig.sim.emulators["rbt-L1"]
        io = rig.sim.emulators["io-L1"]
        with rig.site.events.subscribe({"completed"}) as sub:
            reply = await rig.register(first, brake_only_items())
            seq = io.prompt(0).seq
            while (blk := await asyncio.wait_for(io.wait_prompt(0, seq), 30)).code != (
                Prompt.STOP_HERE
            ):
                seq = blk.seq
            rbt.stick_lift()  # up, with the first axle on the rollers
            await asyncio.wait_for(sub.get(), 30)
            rec = await rig.store.inspection(reply["inspection_id"])
            again = await rig.register(second, brake_only_items())
            # The lift cannot show it works: the next vehicle is not called in.
            await rig.clock.sleep(30.0)
            assert io.prompt(0).code != Prompt.DRIVE_IN and not io.entry_light(0)
            rbt.stick_lift(False)
            ev = await asyncio.wait_for(sub.get(), 30)
        rec2 = await rig.store.inspection(again["inspection_id"])
        violations = rig.sim.referee.violations
    got = {c: (str(a.verdict), a.reason) for c, a in rec.latest_attempts().items()}
    assert got == {c: ("not_judged", "lift_fault") for c in brake_only_items()}
    assert rec.verdict == "incomplete"  # the vehicle was released
    assert ev.inspection_id == again["inspection_id"] and rec2.verdict == "pass"
    assert not violations, violations


def four_lamp_car(plate: str) -> SimVehicle:
    base = healthy_vehicle_for(plate)
    sv = healthy_vehicle_for(plate, replace(base.vehicle, headlamp_system=4))
    sv.traits["lamps"] = make_lamps(sv.vehicle, random.Random(7), weak_outer=True)
    return sv


async def test_a_four_lamp_vehicle_passes_by_its_inner_pair(tmp_path: Path) -> None:
    sv = four_lamp_car("鲁G40404")
    lamps = sv.traits["lamps"]
    assert passes_by_inner_pair(lamps, sv.vehicle)  # both outer lamps below 12000 cd
    async with running_site(tmp_path, kinds=HEADLAMP) as rig:
        tester = rig.sim.emulators["hlt-L1"]
        (rec,) = await rig.inspect_all([sv], items=["H1", "H2", "H3", "H4"])
        violations = rig.sim.referee.violations
    assert not violations, violations  # no low beam asked of LI or RI
    assert rec.verdict == "pass"
    items = rec.latest_attempts()
    assert {c: str(a.verdict) for c, a in items.items()} == dict.fromkeys(items, "pass")
    for code in ("H1", "H4"):  # outer: below the four-lamp limit, passed by the pair
        v = items[code].values
        assert v["intensity_cd"] < items[code].limits["intensity_cd"]
        assert v["passed_by_pair"] is True and "low_intensity_cd" in v
    for code in ("H2", "H3"):  # inner: high beam only
        assert items[code].values["intensity_cd"] >= 15000
        assert "low_intensity_cd" not in items[code].values
    assert tester.measurements == 6  # L and R both beams, LI and RI high only


async def test_a_vehicle_left_in_a_station_keeps_the_next_one_out(tmp_path: Path) -> None:
    (car,) = fleet(None, seed=33)
    async with running_site(tmp_path, kinds=HEADLAMP) as rig:
        io = rig.sim.emulators["io-L1"]
        io.set_inputs(0, in_position=True)  # standing there since before the start
        with rig.site.events.subscribe({"completed"}) as sub:
            await rig.register(car, ["H1", "H4"])
            await rig.clock.sleep(20.0)
            assert io.prompt(0).code != Prompt.DRIVE_IN and not io.entry_light(0)
            io.set_inputs(0, in_position=False)  # it is pushed out
            ev = await asyncio.wait_for(sub.get(), 30)
        violations = rig.sim.referee.violations
    assert ev.data["verdict"] == "pass"
    assert not violations, violations
