"""The simulated population: faults designed clear of the limits, expectations consistent."""

from __future__ import annotations

from sim.vehicles import (
    BT_LIMIT,
    Population,
    SimFault,
    apply_fault,
    healthy_vehicle_for,
    nominal_bt,
    nominal_run,
)


def test_population_is_reproducible_and_clear_of_the_bt_limit() -> None:
    pa, pb = Population(seed=11), Population(seed=11)
    a = [pa.next() for _ in range(200)]
    b = [pb.next() for _ in range(200)]
    assert [v.plate for v in a] == [v.plate for v in b]
    assert len({v.plate for v in a}) == 200
    for v in a:
        assert abs(nominal_bt(v) - BT_LIMIT) >= 0.04, v.plate
        assert v.vehicle.vin[8] in "0123456789X"


def test_faults_change_what_they_should() -> None:
    base = healthy_vehicle_for("鲁G12345")
    front_l, front_r, locked = nominal_run(base.axle(1))
    w = base.axle(1).load_kg * 9.8
    assert locked and (front_l + front_r) / w > 0.7  # healthy front axle slips above 70 %
    assert base.expected_items() == {}

    weak = healthy_vehicle_for("鲁G12345")
    apply_fault(weak, SimFault("weak_axle", 2))
    l2, r2, _ = nominal_run(weak.axle(2))
    assert (l2 + r2) / (weak.axle(2).load_kg * 9.8) < 0.15
    assert weak.expected_items()["B2"] == "fail"

    lock = healthy_vehicle_for("鲁G12345")
    apply_fault(lock, SimFault("locking_wheel", 1, "left"))
    l1, r1, locked = nominal_run(lock.axle(1))
    assert locked and (l1 + r1) / w < 0.45  # locks long before the 60 % front limit
    assert lock.expected_items()["B1"] == "not_judged"

    park = healthy_vehicle_for("鲁G12345")
    apply_fault(park, SimFault("weak_parking_brake"))
    pl, pr, _ = nominal_run(park.axle(2), parking=True)
    assert (pl + pr) / (sum(a.load_kg for a in park.axles) * 9.8) < 0.15
    assert park.expected_items() == {"B0": "fail"}


def _nominal_imbalance(axle) -> float:  # type: ignore[no-untyped-def]
    import numpy as np

    from sim.vehicles import APPLY_AT_S, MAX_TEST_S, _demand

    t = np.arange(1.5, MAX_TEST_S, 0.01)
    left = np.minimum(_demand(axle.left, t, False), axle.left.grip_n)
    right = np.minimum(_demand(axle.right, t, False), axle.right.grip_n)
    assert APPLY_AT_S > 1.5
    return float(np.abs(left - right).max() / max(left.max(), right.max()))


def test_healthy_axles_brake_evenly() -> None:
    # A healthy axle's wheels share one brake circuit: their forces rise together, far
    # inside the tightest imbalance limit (20 %), so only a designed fault can fail it.
    p = Population(seed=5, fault_rate=0.0)
    worst = max(_nominal_imbalance(a) for _ in range(200) for a in p.next().axles)
    assert worst < 0.10, worst
