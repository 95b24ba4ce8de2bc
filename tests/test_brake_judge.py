"""Brake judgement, worked by hand: B1..Bn, B0 and BT from curves built in the tests.

Most curves use 100 ms samples, so the arithmetic stays visible: samples 0..4
are before the drag window (t < 0.5 s), samples 5..14 are the drag window
(0.5 <= t < 1.5 s), and sample 15 on is the brake phase (t >= 1.5 s). Forces
in the curves are in 10 N units; g = 9.8, so a 450 kg wheel weighs 4410 N.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from linectl.config import DEFAULT_LIMITS_DIR
from linectl.items import ItemResult, Verdict, not_judged
from linectl.stations.brake_judge import judge_axle, judge_parking, judge_total, vehicle_group
from linectl.stations.curve import BrakeCurve
from linectl.stations.limits import BrakeLimits, load_limits
from linectl.vehicle import Fuel, InspectionType, Vehicle

NEW, PERIODIC = InspectionType.NEW, InspectionType.PERIODIC


@pytest.fixture(scope="module")
def lim() -> BrakeLimits:
    return load_limits(DEFAULT_LIMITS_DIR).brake


def car(
    vehicle_class: str = "M1",
    gross: int = 1750,
    curb: int = 1320,
    axles: int = 2,
    parking: Sequence[int] = (2,),
) -> Vehicle:
    return Vehicle(
        vin="LSVAU218XN2183294",
        plate="鲁G12345",
        vehicle_class=vehicle_class,
        fuel=Fuel.PETROL,
        axles=axles,
        parking_axles=tuple(parking),
        curb_mass_kg=curb,
        gross_mass_kg=gross,
        headlamp_system=2,
        max_design_speed_kmh=180,
    )


def run(
    brake: Sequence[tuple[int, int]],
    drag: tuple[int | Sequence[int], int | Sequence[int]] = (0, 0),
    before: int = 0,
) -> BrakeCurve:
    """A 100 ms curve: 5 samples of `before`, 10 drag-window samples, then `brake`."""

    def window(d: int | Sequence[int]) -> list[int]:
        return [d] * 10 if isinstance(d, int) else list(d)

    left = [before] * 5 + window(drag[0]) + [lv for lv, _ in brake]
    right = [before] * 5 + window(drag[1]) + [rv for _, rv in brake]
    return BrakeCurve(100, np.array(left), np.array(right))


# ---------------------------------------------------------------- one axle


def test_mqtt_example_axle_front_periodic(lim: BrakeLimits) -> None:
    # Brake phase: the left wheel is the larger (312 > 298); it reaches its max at
    # the 3rd brake sample, so the rise phase is the first 3 samples:
    # |100-81| = 19, |200-190| = 10, |312-298| = 14 -> diff 19 (190 N). The 4th
    # sample (|300-290| = 10) is after the rise phase.
    curve = run([(100, 81), (200, 190), (312, 298), (300, 290)], drag=(6, [5, 6] * 5))
    r = judge_axle(1, 452, 448, curve, car(), PERIODIC, lim)
    assert r.code == "B1"
    assert r.verdict is Verdict.PASS
    v = r.values
    assert (v["left_max_n"], v["right_max_n"]) == (3120, 2980)
    assert (v["left_drag_n"], v["right_drag_n"]) == (60, 55)  # means 6 and 5.5 of 10 N
    # (3120 + 2980) / ((452 + 448) * 9.8) = 6100 / 8820 = 69.16 %
    assert v["axle_rate_pct"] == 69.2
    # rate >= 60 %: 190 / larger max 3120 = 6.09 %
    assert v["imbalance_pct"] == 6.1
    assert v["imbalance_branch"] == "of_max_force"
    assert v["imbalance_diff_n"] == 190
    # 60 / (452 * 9.8) = 1.35 %, 55 / (448 * 9.8) = 1.25 %
    assert (v["left_drag_pct"], v["right_drag_pct"]) == (1.4, 1.3)
    assert r.limits == {"axle_rate_pct": 60, "imbalance_pct": 24, "drag_pct": 10}
    assert r.curve == curve.to_upstream()
    assert r.raw["curve"].shape == (19, 2)


def test_drag_window_is_half_to_one_and_a_half_seconds(lim: BrakeLimits) -> None:
    # Samples before 0.5 s hold 90 (they would swamp the mean); the window is
    # [30, 10 x 9]: mean 12 -> 120 N. The brake phase's 500 at t = 1.5 s is not drag.
    curve = run([(500, 500)], drag=([30] + [10] * 9, 10), before=90)
    v = judge_axle(1, 450, 450, curve, car(), PERIODIC, lim).values
    assert (v["left_drag_n"], v["right_drag_n"]) == (120, 100)


def test_a_10_ms_curve(lim: BrakeLimits) -> None:
    # 10 ms samples: 0..49 before the window (99, excluded), 50..149 the window
    # (left 4, right 5), then a ramp 10, 20, ... 300 left and 5, 15, ... 295 right.
    left = np.concatenate([np.full(50, 99), np.full(100, 4), np.arange(10, 301, 10)])
    right = np.concatenate([np.full(50, 99), np.full(100, 5), np.arange(5, 296, 10)])
    r = judge_axle(1, 450, 450, BrakeCurve(10, left, right), car(), PERIODIC, lim)
    v = r.values
    assert (v["left_drag_n"], v["right_drag_n"]) == (40, 50)
    assert (v["left_max_n"], v["right_max_n"]) == (3000, 2950)
    assert v["axle_rate_pct"] == 67.5  # 5950 / 8820 = 67.46 %
    assert v["imbalance_pct"] == 1.7  # diff 5 all along: 50 / 3000 = 1.67 %
    assert r.verdict is Verdict.PASS


def test_right_wheel_larger_ends_rise_phase_at_its_max(lim: BrakeLimits) -> None:
    # Right max 300 > left max 250: the rise phase ends where the right wheel first
    # reaches 300 (2nd sample): diffs 50, 100. The later |100 - 300| = 200 is outside.
    curve = run([(150, 200), (200, 300), (250, 300), (100, 300)])
    v = judge_axle(2, 300, 300, curve, car(), PERIODIC, lim).values
    assert v["imbalance_diff_n"] == 1000
    # rate (2500 + 3000) / 5880 = 93.5 % >= 60: 1000 / 3000 = 33.3 %
    assert v["axle_rate_pct"] == 93.5
    assert v["imbalance_pct"] == 33.3


def test_tie_takes_the_left_wheel_as_larger(lim: BrakeLimits) -> None:
    # Both maxima 300: the left wheel decides; it reaches 300 at the 1st sample, so
    # the rise phase is that one sample: |300 - 100| = 200. Taking the right wheel
    # (max at the 3rd sample) would give max(200, 250, 0) = 250.
    curve = run([(300, 100), (50, 300), (300, 300)])
    v = judge_axle(1, 450, 450, curve, car(), PERIODIC, lim).values
    assert v["imbalance_diff_n"] == 2000


def test_front_axle_imbalance_new_vs_periodic_and_vs_other_axle(lim: BrakeLimits) -> None:
    # max 3000 + 2340 = 5340 N of 8820 N: 60.5 % (>= 60: of the larger max).
    # Rise phase (left max at the 3rd sample): 20, 50, 66 -> 660 N / 3000 = 22.0 %.
    curve = run([(100, 80), (200, 150), (300, 234)])
    front_new = judge_axle(1, 450, 450, curve, car(), NEW, lim)
    front_periodic = judge_axle(1, 450, 450, curve, car(), PERIODIC, lim)
    other_new = judge_axle(2, 450, 450, curve, car(), NEW, lim)
    assert front_new.values["axle_rate_pct"] == 60.5
    assert front_new.values["imbalance_pct"] == 22.0
    assert (front_new.verdict, front_new.limits["imbalance_pct"]) == (Verdict.FAIL, 20)
    assert (front_periodic.verdict, front_periodic.limits["imbalance_pct"]) == (Verdict.PASS, 24)
    # other axle, rate >= 60 %: new 24 %
    assert (other_new.verdict, other_new.limits["imbalance_pct"]) == (Verdict.PASS, 24)


def test_other_axle_high_rate_branch_new_vs_periodic(lim: BrakeLimits) -> None:
    # 300 + 300 kg = 5880 N. max 2500 + 1800 = 4300 N: 73.1 % (>= 60 %).
    # Rise phase: 20, 50, 70 -> 700 N / larger max 2500 = 28.0 %.
    curve = run([(100, 80), (200, 150), (250, 180)])
    new = judge_axle(2, 300, 300, curve, car(), NEW, lim)
    periodic = judge_axle(2, 300, 300, curve, car(), PERIODIC, lim)
    assert new.values["axle_rate_pct"] == 73.1
    assert new.values["imbalance_pct"] == 28.0
    assert new.values["imbalance_branch"] == "of_max_force"
    assert (new.verdict, new.limits["imbalance_pct"]) == (Verdict.FAIL, 24)
    assert (periodic.verdict, periodic.limits["imbalance_pct"]) == (Verdict.PASS, 30)


def test_other_axle_low_rate_branch_is_of_axle_load(lim: BrakeLimits) -> None:
    # 400 + 400 kg = 7840 N. max 1500 + 800 = 2300 N: 29.3 % (< 60 %, >= 20 %).
    # Rise phase: 10, 40, 70 -> 700 N / axle load 7840 N = 8.9 % (of the larger
    # max it would be 46.7 %).
    curve = run([(50, 40), (100, 60), (150, 80)])
    new = judge_axle(2, 400, 400, curve, car(), NEW, lim)
    periodic = judge_axle(2, 400, 400, curve, car(), PERIODIC, lim)
    assert new.values["axle_rate_pct"] == 29.3
    assert new.values["imbalance_pct"] == 8.9
    assert new.values["imbalance_branch"] == "of_axle_load"
    assert (new.verdict, new.limits["imbalance_pct"]) == (Verdict.FAIL, 8)
    assert (periodic.verdict, periodic.limits["imbalance_pct"]) == (Verdict.PASS, 10)


def test_imbalance_branch_at_exactly_60_percent_is_of_max_force(lim: BrakeLimits) -> None:
    # 500 + 500 kg = 9800 N; 3600 + 2280 = 5880 N: exactly 60.0 %.
    # diff 132 -> 1320 N: of the larger max 1320 / 3600 = 36.7 % (of the axle load: 13.5 %)
    r = judge_axle(2, 500, 500, run([(360, 228)]), car(), PERIODIC, lim)
    assert r.values["axle_rate_pct"] == 60.0
    assert (r.values["imbalance_branch"], r.values["imbalance_pct"]) == ("of_max_force", 36.7)
    assert (r.verdict, r.limits["imbalance_pct"]) == (Verdict.FAIL, 30)


@pytest.mark.parametrize(
    ("vehicle_class", "gross", "group", "other_min"),
    [
        ("M1", 1750, "light", 20),
        ("M1", 5000, "light", 20),  # M1 of any mass
        ("N1", 3500, "light", 20),  # up to 3500 kg gross
        ("M2", 3500, "light", 20),
        ("N2", 3501, "heavy", 50),
        ("M2", 3501, "bus", 40),
        ("M3", 12000, "bus", 40),
        ("N3", 25000, "heavy", 50),
    ],
)
def test_vehicle_groups_set_the_other_axle_rate(
    lim: BrakeLimits, vehicle_class: str, gross: int, group: str, other_min: int
) -> None:
    v = car(vehicle_class, gross=gross, curb=1000)
    assert vehicle_group(v, lim) == group
    # 1000 + 1000 kg = 19600 N; 2 x 4410 N = 8820 N: 45.0 %; 2 x 3430 N: 35.0 %
    at_45 = judge_axle(2, 1000, 1000, run([(441, 441)]), v, PERIODIC, lim)
    at_35 = judge_axle(2, 1000, 1000, run([(343, 343)]), v, PERIODIC, lim)
    assert at_45.values["axle_rate_pct"] == 45.0
    assert at_35.values["axle_rate_pct"] == 35.0
    assert at_45.limits["axle_rate_pct"] == other_min
    assert at_45.verdict is (Verdict.PASS if other_min <= 45 else Verdict.FAIL)
    assert at_35.verdict is (Verdict.PASS if other_min <= 35 else Verdict.FAIL)
    # the front axle needs 60 % in every group
    front = judge_axle(1, 1000, 1000, run([(441, 441)]), v, PERIODIC, lim)
    assert (front.verdict, front.limits["axle_rate_pct"]) == (Verdict.FAIL, 60)


def test_front_axle_rate_boundary_and_rounding(lim: BrakeLimits) -> None:
    # 500 + 500 kg = 9800 N. 2940 + 2930 = 5870 N: 59.9 % fails; 5880 N: 60.0 % passes.
    assert judge_axle(1, 500, 500, run([(294, 293)]), car(), PERIODIC, lim).verdict is Verdict.FAIL
    assert judge_axle(1, 500, 500, run([(294, 294)]), car(), PERIODIC, lim).verdict is Verdict.PASS
    # 500.5 + 500.2 kg = 9806.86 N: 5880 N is 59.958 %, reported 60.0 %, and the
    # reported value is the judged one.
    r = judge_axle(1, 500.5, 500.2, run([(294, 294)]), car(), PERIODIC, lim)
    assert r.values["axle_rate_pct"] == 60.0
    assert r.verdict is Verdict.PASS


def test_drag_is_judged_per_wheel_against_its_own_load(lim: BrakeLimits) -> None:
    brake = [(400, 400)]  # 8000 N: well over every rate
    # 450 kg wheel = 4410 N: 440 N is 9.98 % (10.0, passes), 450 N is 10.2 % (fails)
    ok = judge_axle(1, 450, 450, run(brake, drag=(44, 44)), car(), PERIODIC, lim)
    assert (ok.values["left_drag_pct"], ok.verdict) == (10.0, Verdict.PASS)
    bad = judge_axle(1, 450, 450, run(brake, drag=(45, 0)), car(), PERIODIC, lim)
    assert (bad.values["left_drag_pct"], bad.values["right_drag_pct"]) == (10.2, 0.0)
    assert bad.verdict is Verdict.FAIL
    assert bad.limits["drag_pct"] == 10
    # An unbalanced axle: 350 N on a 300 kg wheel (2940 N) is 11.9 % and fails,
    # although it is under 5 % of the 900 kg axle (441 N), the older text.
    uneven = judge_axle(1, 300, 600, run(brake, drag=(35, 0)), car(), PERIODIC, lim)
    assert uneven.values["left_drag_pct"] == 11.9
    assert uneven.verdict is Verdict.FAIL


def test_wheel_locked_before_the_rate_limit_is_not_judged(lim: BrakeLimits) -> None:
    # Front: 3000 + 2000 = 5000 N of 8820 N = 56.7 % < 60 % when the left wheel slipped.
    r = judge_axle(1, 450, 450, run([(300, 200)]), car(), PERIODIC, lim, left_locked=True)
    assert r.verdict is Verdict.NOT_JUDGED
    assert r.reason == "locked_wheel"
    assert r.values["axle_rate_pct"] == 56.7
    assert r.values["left_locked"] is True
    assert r.curve is not None  # the measurement is kept with the attempt
    # the same curve without a lock is a plain fail
    assert judge_axle(1, 450, 450, run([(300, 200)]), car(), PERIODIC, lim).verdict is Verdict.FAIL
    # other axle, right wheel: 1000 + 900 = 1900 N of 19600 N = 9.7 % < 20 %
    r2 = judge_axle(2, 1000, 1000, run([(100, 90)]), car(), PERIODIC, lim, right_locked=True)
    assert (r2.verdict, r2.reason) == (Verdict.NOT_JUDGED, "locked_wheel")


def test_wheel_locked_after_the_rate_limit_changes_nothing(lim: BrakeLimits) -> None:
    # 3200 + 3000 = 6200 N of 8820 N = 70.3 %: the lock came after 60 % was reached.
    locked = judge_axle(1, 450, 450, run([(320, 300)]), car(), PERIODIC, lim, right_locked=True)
    assert locked.verdict is Verdict.PASS
    assert locked.reason is None
    # ... and an imbalance fail stays a fail: 6500 / 8820 = 73.7 %, 1500 / 4000 = 37.5 %
    r = judge_axle(1, 450, 450, run([(400, 250)]), car(), PERIODIC, lim, left_locked=True)
    assert (r.values["axle_rate_pct"], r.values["imbalance_pct"]) == (73.7, 37.5)
    assert r.verdict is Verdict.FAIL


def test_a_curve_too_short_is_not_judged(lim: BrakeLimits) -> None:
    # 15 samples of 100 ms end at t = 1.4 s: no brake phase.
    short = BrakeCurve(100, np.full(15, 5), np.full(15, 5))
    r = judge_axle(1, 450, 450, short, car(), PERIODIC, lim)
    assert (r.verdict, r.reason) == (Verdict.NOT_JUDGED, "curve_too_short")
    assert r.values["duration_s"] == 1.5
    # 2 s samples: t = 0, 2, 4 s, nothing in the drag window
    sparse = BrakeCurve(2000, np.array([0, 400, 400]), np.array([0, 400, 400]))
    assert judge_axle(1, 450, 450, sparse, car(), PERIODIC, lim).reason == "curve_too_short"
    # one sample at t = 1.5 s is enough
    assert judge_axle(1, 450, 450, run([(400, 400)]), car(), PERIODIC, lim).verdict is Verdict.PASS


def test_an_unweighed_axle_is_not_judged(lim: BrakeLimits) -> None:
    r = judge_axle(1, 0, 450, run([(400, 400)]), car(), PERIODIC, lim)
    assert (r.verdict, r.reason) == (Verdict.NOT_JUDGED, "invalid_load")


# ---------------------------------------------------------------- parking


def test_parking_20_percent(lim: BrakeLimits) -> None:
    # gross 1750 >= 1.2 x 1320 = 1584: 20 %. Vehicle 1500 kg = 14700 N.
    v = car(gross=1750, curb=1320)
    # 1500 + 1450 = 2950 N: 20.07 % passes; drag is not judged (window at 100 = 1000 N)
    ok = judge_parking([(2, run([(150, 145)], drag=(100, 100)), False)], 1500, v, lim)
    assert ok.code == "B0"
    assert ok.values["parking_rate_pct"] == 20.1
    assert ok.limits == {"parking_rate_pct": 20}
    assert ok.verdict is Verdict.PASS
    assert not any("drag" in k or "imbalance" in k for k in ok.values)
    # 1400 + 1400 = 2800 N: 19.0 % fails
    bad = judge_parking([(2, run([(140, 140)]), False)], 1500, v, lim)
    assert (bad.values["parking_rate_pct"], bad.verdict) == (19.0, Verdict.FAIL)


def test_parking_15_percent_when_gross_under_1_2_curb(lim: BrakeLimits) -> None:
    # gross 1750 < 1.2 x 1500 = 1800: 15 %. 2800 N of 14700 N = 19.0 % passes;
    # 2200 N = 14.97 % -> 15.0 % passes; 2100 N = 14.3 % fails.
    v = car(gross=1750, curb=1500)
    r = judge_parking([(2, run([(140, 140)]), False)], 1500, v, lim)
    assert (r.limits["parking_rate_pct"], r.verdict) == (15, Verdict.PASS)
    edge = judge_parking([(2, run([(110, 110)]), False)], 1500, v, lim)
    assert (edge.values["parking_rate_pct"], edge.verdict) == (15.0, Verdict.PASS)
    low = judge_parking([(2, run([(110, 100)]), False)], 1500, v, lim)
    assert (low.values["parking_rate_pct"], low.verdict) == (14.3, Verdict.FAIL)


def test_parking_20_percent_when_gross_is_exactly_1_2_curb(lim: BrakeLimits) -> None:
    # gross 1800 = 1.2 x 1500 is not below it: 20 %, so 2800 N of 14700 N (19.0 %) fails
    v = car(gross=1800, curb=1500)
    r = judge_parking([(2, run([(140, 140)]), False)], 1500, v, lim)
    assert (r.limits["parking_rate_pct"], r.verdict) == (20, Verdict.FAIL)


def test_parking_sums_runs_over_several_axles(lim: BrakeLimits) -> None:
    truck = car("N3", gross=25000, curb=12000, axles=3, parking=(2, 3))
    # 30000 + 20000 = 50000 N of 24000 kg = 235200 N: 21.3 %
    runs = [(3, run([(1000, 1000)]), False), (2, run([(1500, 1500)]), False)]
    r = judge_parking(runs, 24000, truck, lim)
    assert r.values["sum_max_n"] == 50000
    assert (r.values["axle2_left_max_n"], r.values["axle3_right_max_n"]) == (15000, 10000)
    assert (r.values["parking_rate_pct"], r.verdict) == (21.3, Verdict.PASS)
    assert r.curve is None  # several runs have no single upstream curve
    assert set(r.raw) == {"curve_axle2", "curve_axle3"}
    # a parking axle without its run
    missing = judge_parking(runs[:1], 24000, truck, lim)
    assert (missing.verdict, missing.reason) == (Verdict.NOT_JUDGED, "missing_axles")
    assert missing.values["missing_axles"] == [2]


def test_parking_lock(lim: BrakeLimits) -> None:
    v = car()
    # locked at 19.0 %: could not prove 20 %: not judged, not failed
    low = judge_parking([(2, run([(140, 140)]), True)], 1500, v, lim)
    assert (low.verdict, low.reason) == (Verdict.NOT_JUDGED, "locked_wheel")
    # locked at 21.1 % (3100 N): the limit was reached, the lock changes nothing
    high = judge_parking([(2, run([(160, 150)]), True)], 1500, v, lim)
    assert (high.values["parking_rate_pct"], high.verdict) == (21.1, Verdict.PASS)


def test_parking_refuses_runs_that_do_not_fit(lim: BrakeLimits) -> None:
    with pytest.raises(ValueError, match="not a parking axle"):
        judge_parking([(1, run([(160, 150)]), False)], 1500, car(), lim)
    with pytest.raises(ValueError, match="at least one"):
        judge_parking([], 1500, car(), lim)
    short = BrakeCurve(100, np.full(10, 5), np.full(10, 5))
    r = judge_parking([(2, short, False)], 1500, car(), lim)
    assert (r.verdict, r.reason) == (Verdict.NOT_JUDGED, "curve_too_short")


# ---------------------------------------------------------------- whole vehicle


def _axles(lim: BrakeLimits) -> list[ItemResult]:
    # B1: 452 + 448 kg, 3120 + 2980 N; B2: 310 + 290 kg, 2600 + 2500 N
    b1 = judge_axle(1, 452, 448, run([(100, 81), (312, 298)]), car(), PERIODIC, lim)
    b2 = judge_axle(2, 310, 290, run([(100, 90), (260, 250)]), car(), PERIODIC, lim)
    return [b1, b2]


def test_total_is_all_forces_over_all_loads(lim: BrakeLimits) -> None:
    # (6100 + 5100) N / (1500 kg * 9.8) = 11200 / 14700 = 76.2 %
    bt = judge_total(_axles(lim), lim)
    assert bt.code == "BT"
    assert bt.values == {"vehicle_load_kg": 1500.0, "sum_max_n": 11200, "vehicle_rate_pct": 76.2}
    assert bt.limits == {"vehicle_rate_pct": 60}
    assert bt.verdict is Verdict.PASS


def test_total_fails_under_60_percent_with_failed_axles_counted(lim: BrakeLimits) -> None:
    # B2 2000 + 1900 N (3900 / 5880 = 66.3 %); B1 fails its imbalance (3120 vs 1500):
    # its forces are still trustworthy. (3120 + 1500 + 2000 + 1900) / 14700 = 58.0 %
    b1 = judge_axle(1, 452, 448, run([(312, 150)]), car(), PERIODIC, lim)
    b2 = judge_axle(2, 310, 290, run([(200, 190)]), car(), PERIODIC, lim)
    assert b1.verdict is Verdict.FAIL
    bt = judge_total([b1, b2], lim)
    assert (bt.values["vehicle_rate_pct"], bt.verdict) == (58.0, Verdict.FAIL)


def test_total_not_judged_when_an_axle_cannot_be_trusted(lim: BrakeLimits) -> None:
    b1, _ = _axles(lim)
    bt = judge_total([b1, not_judged("B2", "device_fault")], lim)
    assert (bt.verdict, bt.reason) == (Verdict.NOT_JUDGED, "device_fault")
    assert bt.values["untrusted_axle"] == "B2"
    overrun = judge_total([b1, not_judged("B2", "overrun")], lim)
    assert overrun.reason == "overrun"


def test_total_with_a_locked_axle(lim: BrakeLimits) -> None:
    bus = car("M3", gross=12000, curb=9000)  # other axles need 40 %
    b1 = judge_axle(1, 452, 448, run([(100, 81), (312, 298)]), bus, PERIODIC, lim)
    assert b1.verdict is Verdict.PASS  # 6100 N of 8820 N = 69.2 %
    # B2 locked at 1000 + 900 = 1900 N of 5880 N = 32.3 % < 40 %: not judged
    b2 = judge_axle(2, 310, 290, run([(100, 90)]), bus, PERIODIC, lim, left_locked=True)
    assert b2.reason == "locked_wheel"
    # BT (6100 + 1900) / 14700 = 54.4 % < 60 %: the lock hides the rest, not judged
    bt = judge_total([b1, b2], lim)
    assert (bt.values["vehicle_rate_pct"], bt.verdict, bt.reason) == (
        54.4,
        Verdict.NOT_JUDGED,
        "locked_wheel",
    )
    assert bt.values["locked_axles"] == ["B2"]

    # B1 locked at 3000 + 2000 = 5000 N of 8820 N = 56.7 % < 60 %: not judged; B2
    # 2600 + 2500 = 5100 N. BT (5000 + 5100) / 14700 = 68.7 %: passes even so.
    b1 = judge_axle(1, 450, 450, run([(300, 200)]), bus, PERIODIC, lim, left_locked=True)
    b2 = judge_axle(2, 310, 290, run([(100, 90), (260, 250)]), bus, PERIODIC, lim)
    assert (b1.reason, b2.verdict) == ("locked_wheel", Verdict.PASS)
    bt = judge_total([b1, b2], lim)
    assert (bt.values["vehicle_rate_pct"], bt.verdict) == (68.7, Verdict.PASS)


def test_total_needs_every_axle_of_the_vehicle(lim: BrakeLimits) -> None:
    b1, _ = _axles(lim)
    bt = judge_total([b1], lim, vehicle=car())
    assert (bt.verdict, bt.reason) == (Verdict.NOT_JUDGED, "missing_axles")
    assert bt.values["missing_axles"] == ["B2"]
    assert judge_total(_axles(lim), lim, vehicle=car()).verdict is Verdict.PASS
    with pytest.raises(ValueError):
        judge_total([], lim)
