"""The simulated garage: what it repairs comes back healthy, what it leaves stays as it was."""

from __future__ import annotations

import random

import pytest

from sim.repair import repair
from sim.vehicles import (
    ALL_FAULTS,
    SimVehicle,
    _fault_for,
    apply_fault,
    build_brakes,
    fault_fits,
    make_traits,
    random_vehicle_description,
)


@pytest.mark.parametrize("kind", ALL_FAULTS)
def test_a_repaired_fault_is_gone_and_one_left_is_still_there(kind: str) -> None:
    rng = random.Random(kind)
    done = 0
    while done < 5:
        v = random_vehicle_description(rng)
        if not fault_fits(kind, v):
            continue
        sv = SimVehicle(v, build_brakes(v, rng), seed=rng.randrange(2**31))
        sv.traits.update(make_traits(v, sv.seed))
        healthy = sv.expected_items("periodic", "judge")
        apply_fault(sv, _fault_for(kind, v, rng))
        faulty = sv.expected_items("periodic", "judge")
        assert faulty != healthy

        fixed = repair(sv, random.Random(1), rate=1.0)
        assert fixed.repaired == sv.faults and fixed.left == []
        assert fixed.vehicle.expected_items("periodic", "judge") == healthy
        assert fixed.vehicle.vehicle == sv.vehicle  # the same car for the registry

        kept = repair(sv, random.Random(1), rate=0.0)
        assert kept.left == sv.faults and kept.repaired == []
        assert kept.vehicle.expected_items("periodic", "judge") == faulty
        assert kept.vehicle.traits == sv.traits and kept.vehicle.axles == sv.axles
        done += 1
