"""The garage: a failed vehicle goes away, some of its faults are put right, it comes back.

`repair()` draws, with the caller's seeded generator, which of a simulated
vehicle's faults the garage repaired, and builds the vehicle that comes back
for its retest: repaired brakes get new parts at their design values (the
capacities `build_brakes` designs, a nominal drag and grip), repaired lamps
and exhaust are as the vehicle was built (its traits are made again from its
seed), and every fault not repaired is applied again as it was. The vehicle
keeps its plate, VIN and everything the registry knows of it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from sim.physics import AxleBrakes, G
from sim.vehicles import (
    BRAKE_FAULTS,
    FRONT_CAPACITY,
    HEAVY_OTHER_CAPACITY,
    PARKING_SHARE,
    REAR_CAPACITY,
    SimFault,
    SimVehicle,
    apply_fault,
    make_traits,
)

NEW_DRAG = 0.0275  # of the wheel's weight force: the middle of what new brakes drag
NEW_MU = 0.8


@dataclass(frozen=True)
class Repair:
    """What came back from the garage: the vehicle, and which faults were put right."""

    vehicle: SimVehicle
    repaired: list[SimFault]
    left: list[SimFault]


def design_capacity(sv: SimVehicle, axle: int) -> float:
    """The service-brake capacity `build_brakes` designs, as a share of the wheel's weight."""
    v = sv.vehicle
    heavy = v.vehicle_class not in ("M1",) and v.gross_mass_kg > 3500
    if axle == 1:
        return FRONT_CAPACITY
    return HEAVY_OTHER_CAPACITY if heavy else REAR_CAPACITY


def _new_brakes(sv: SimVehicle, fault: SimFault, axles: list[AxleBrakes]) -> None:
    """Put right, in `axles`, what `fault` did to the brakes."""
    if fault.kind == "weak_parking_brake":
        parking = sv.vehicle.parking_axles
        per_wheel = PARKING_SHARE * sv.vehicle.curb_mass_kg * G / (2 * max(1, len(parking)))
        for i, a in enumerate(axles):
            if a.number in parking:
                axles[i] = AxleBrakes(
                    a.number,
                    replace(a.left, parking_capacity_n=per_wheel),
                    replace(a.right, parking_capacity_n=per_wheel),
                )
        return
    assert fault.axle is not None
    i = fault.axle - 1
    a = axles[i]
    share = design_capacity(sv, a.number)
    if fault.kind == "weak_axle":
        wheels = {"left": a.left, "right": a.right}
    else:
        side = fault.side or "left"
        wheels = {side: a.left if side == "left" else a.right}
    fixed = {
        side: replace(
            w,
            service_capacity_n=share * w.load_kg * G,
            drag_n=NEW_DRAG * w.load_kg * G,
            mu=NEW_MU,
        )
        for side, w in wheels.items()
    }
    axles[i] = AxleBrakes(a.number, fixed.get("left", a.left), fixed.get("right", a.right))


def repair(sv: SimVehicle, rng: random.Random, rate: float) -> Repair:
    """Each fault put right with probability `rate` (drawn from `rng`)."""
    repaired = [f for f in sv.faults if rng.random() < rate]
    left = [f for f in sv.faults if f not in repaired]
    axles = list(sv.axles)
    for f in repaired:
        if f.kind in BRAKE_FAULTS:
            _new_brakes(sv, f, axles)
    back = SimVehicle(sv.vehicle, axles, seed=sv.seed, traits=make_traits(sv.vehicle, sv.seed))
    for f in left:
        if f.kind in BRAKE_FAULTS:
            back.faults.append(f)  # its brakes were not touched: still as they were
        else:
            apply_fault(back, f)
    return Repair(back, repaired, left)
