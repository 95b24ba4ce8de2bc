"""Headlamp judgement, worked by hand: H1..H4 intensity, the pair rule, beam position."""

from __future__ import annotations

import pytest

from linectl.config import DEFAULT_LIMITS_DIR
from linectl.items import ItemResult, Verdict
from linectl.stations.headlamp_judge import LampReading, judge_headlamps
from linectl.stations.limits import HeadlampLimits, load_limits
from linectl.vehicle import Fuel, InspectionType, Vehicle

NEW, PERIODIC = InspectionType.NEW, InspectionType.PERIODIC
H = 700  # lamp-centre height, mm


@pytest.fixture(scope="module")
def lim() -> HeadlampLimits:
    return load_limits(DEFAULT_LIMITS_DIR).headlamp


def car(lamps: int = 2, speed: int = 180, vehicle_class: str = "M1") -> Vehicle:
    return Vehicle(
        vin="LSVAU218XN2183294",
        plate="鲁G12345",
        vehicle_class=vehicle_class,
        fuel=Fuel.PETROL,
        axles=2,
        parking_axles=(2,),
        curb_mass_kg=1320,
        gross_mass_kg=1750,
        headlamp_system=lamps,
        max_design_speed_kmh=speed,
    )


def high(lamp: str, cd: float, h: float = 0, v: float = -50) -> LampReading:
    # v = -50 at H = 700: centre at 650 mm = 0.929 H, inside every high-beam window
    return LampReading(lamp, "H", cd, h, v, H)


def low(lamp: str, h: float = 0, v: float = -140) -> LampReading:
    # v = -140 at H = 700: cut-off at 560 mm = 0.8 H, inside both low-beam windows
    return LampReading(lamp, "L", 0, h, v, H)


def verdicts(items: list[ItemResult]) -> dict[str, Verdict]:
    return {i.code: i.verdict for i in items}


def test_two_lamp_periodic_and_new(lim: HeadlampLimits) -> None:
    items = judge_headlamps([high("L", 15000), high("R", 14999)], car(), PERIODIC, lim)
    assert verdicts(items) == {"H1": Verdict.PASS, "H4": Verdict.FAIL}
    assert items[0].limits["intensity_cd"] == 15000
    assert items[0].values["intensity_cd"] == 15000
    items = judge_headlamps([high("L", 18000), high("R", 17999)], car(), NEW, lim)
    assert verdicts(items) == {"H1": Verdict.PASS, "H4": Verdict.FAIL}
    assert items[1].limits["intensity_cd"] == 18000


def test_slow_vehicles_take_the_lower_row(lim: HeadlampLimits) -> None:
    # max design speed < 70 km/h: two lamps periodic 8000 cd, new 10000 cd
    slow = car(speed=69)
    items = judge_headlamps([high("L", 8000), high("R", 7999)], slow, PERIODIC, lim)
    assert verdicts(items) == {"H1": Verdict.PASS, "H4": Verdict.FAIL}
    assert items[0].limits["intensity_cd"] == 8000
    assert judge_headlamps([high("L", 10000)], slow, NEW, lim)[0].limits["intensity_cd"] == 10000
    # 70 km/h is not below 70: the normal row
    at_70 = judge_headlamps([high("L", 8000)], car(speed=70), PERIODIC, lim)
    assert (at_70[0].verdict, at_70[0].limits["intensity_cd"]) == (Verdict.FAIL, 15000)
    # four lamps, slow, periodic: 6000 cd; new: 8000 cd
    four_slow = car(lamps=4, speed=60)
    items = judge_headlamps([high("LI", 6000), high("RI", 5999)], four_slow, PERIODIC, lim)
    assert verdicts(items) == {"H2": Verdict.PASS, "H3": Verdict.FAIL}
    assert judge_headlamps([high("L", 1)], four_slow, NEW, lim)[0].limits["intensity_cd"] == 8000


def test_four_lamp_system_without_the_pair_rule(lim: HeadlampLimits) -> None:
    # four lamps periodic: 12000 cd each; no pair reaches the two-lamp 15000 cd
    readings = [high("L", 12000), high("LI", 11999), high("RI", 12500), high("R", 11000)]
    items = judge_headlamps(readings, car(lamps=4), PERIODIC, lim)
    assert [i.code for i in items] == ["H1", "H2", "H3", "H4"]
    assert verdicts(items) == {
        "H1": Verdict.PASS,
        "H2": Verdict.FAIL,
        "H3": Verdict.PASS,
        "H4": Verdict.FAIL,
    }
    assert all(i.limits["intensity_cd"] == 12000 for i in items)
    assert not any(i.values.get("passed_by_pair") for i in items)


@pytest.mark.parametrize(
    ("cd", "expected"),
    [
        # outer pair L, R at the two-lamp 15000 cd: all four pass
        ({"L": 15000, "LI": 5000, "RI": 4000, "R": 15000}, "all pass"),
        # inner pair LI, RI at 15000 cd: all four pass
        ({"L": 3000, "LI": 15000, "RI": 15000, "R": 3000}, "all pass"),
        # L and LI are not a symmetric pair: the right lamps fail
        ({"L": 15000, "LI": 15000, "RI": 3000, "R": 3000}, {"H3", "H4"}),
        # one of the pair 1 cd short: no pair rule
        ({"L": 15000, "LI": 5000, "RI": 5000, "R": 14999}, {"H2", "H3"}),
    ],
)
def test_four_lamp_pair_rule(lim: HeadlampLimits, cd: dict[str, int], expected: object) -> None:
    readings = [high(lamp, c) for lamp, c in cd.items()]
    items = judge_headlamps(readings, car(lamps=4), PERIODIC, lim)
    failed = {i.code for i in items if i.verdict is Verdict.FAIL}
    if expected == "all pass":
        assert failed == set()
        weak = [i for i in items if i.values["intensity_cd"] < 12000]
        assert weak and all(i.values["passed_by_pair"] is True for i in weak)
    else:
        assert failed == expected


def test_pair_rule_uses_the_same_column_and_row(lim: HeadlampLimits) -> None:
    readings = [high("L", 16000), high("LI", 9000), high("R", 16000)]
    # new: the two-lamp limit is 18000 cd, the pair at 16000 does not reach it; L and R
    # pass on their own (four-lamp new 15000), LI fails
    new = judge_headlamps(readings, car(lamps=4), NEW, lim)
    assert verdicts(new) == {"H1": Verdict.PASS, "H2": Verdict.FAIL, "H4": Verdict.PASS}
    # periodic: the two-lamp limit is 15000 cd, the pair reaches it: LI passes
    periodic = judge_headlamps(readings, car(lamps=4), PERIODIC, lim)
    assert verdicts(periodic) == {"H1": Verdict.PASS, "H2": Verdict.PASS, "H4": Verdict.PASS}
    # slow row: the two-lamp periodic limit is 8000 cd
    slow = judge_headlamps(
        [high("L", 8000), high("LI", 1000), high("R", 8000)], car(lamps=4, speed=60), PERIODIC, lim
    )
    assert set(verdicts(slow).values()) == {Verdict.PASS}


def test_beam_position_recorded_or_judged(lim: HeadlampLimits) -> None:
    # v = -20: centre at 680 mm = 0.971 H, above the M1 window 0.85..0.95 H
    readings = [high("L", 20000, v=-20), high("R", 20000)]
    recorded = judge_headlamps(readings, car(), PERIODIC, lim)
    assert verdicts(recorded) == {"H1": Verdict.PASS, "H4": Verdict.PASS}
    v = recorded[0].values
    assert (v["high_height_ratio"], v["high_position_ok"], v["beam_position"]) == (
        0.971,
        False,
        "record",
    )
    assert recorded[0].limits["high_height_ratio_min"] == 0.85
    assert recorded[0].limits["high_height_ratio_max"] == 0.95
    judged = judge_headlamps(readings, car(), PERIODIC, lim, beam_position="judge")
    assert verdicts(judged) == {"H1": Verdict.FAIL, "H4": Verdict.PASS}
    assert judged[0].values["beam_position"] == "judge"


@pytest.mark.parametrize(
    ("vehicle_class", "v", "ratio", "ok"),
    [
        ("M1", -105, 0.85, True),  # 595 / 700: the M1 window's low edge
        ("M1", -106, 0.849, False),
        ("M1", -35, 0.95, True),  # 665 / 700
        ("M1", -34, 0.951, False),
        ("M1", -130, 0.814, False),  # 570 / 700: below M1's 0.85 ...
        ("N1", -130, 0.814, True),  # ... inside the others' 0.80..0.95
        ("N1", -141, 0.799, False),
    ],
)
def test_high_beam_height_window(
    lim: HeadlampLimits, vehicle_class: str, v: int, ratio: float, ok: bool
) -> None:
    [item] = judge_headlamps(
        [high("L", 20000, v=v)], car(vehicle_class=vehicle_class), PERIODIC, lim, "judge"
    )
    assert item.values["high_height_ratio"] == ratio
    assert item.values["high_position_ok"] is ok
    assert item.verdict is (Verdict.PASS if ok else Verdict.FAIL)


@pytest.mark.parametrize(
    ("lamp", "h", "ok"),
    [
        ("L", -170, True),  # left lamp: 170 mm to the left ...
        ("L", -171, False),
        ("L", 350, True),  # ... 350 mm to the right
        ("L", 351, False),
        ("R", -350, True),  # right lamp: 350 mm either way
        ("R", -351, False),
        ("R", 350, True),
        ("R", 351, False),
    ],
)
def test_high_beam_horizontal_per_lamp_side(
    lim: HeadlampLimits, lamp: str, h: int, ok: bool
) -> None:
    [item] = judge_headlamps([high(lamp, 20000, h=h)], car(), PERIODIC, lim, "judge")
    assert item.values["high_h_mm"] == h
    assert item.values["high_position_ok"] is ok
    assert item.verdict is (Verdict.PASS if ok else Verdict.FAIL)


@pytest.mark.parametrize(
    ("vehicle_class", "h", "v", "ratio", "ok"),
    [
        ("M1", 0, -140, 0.8, True),  # 560 / 700, M1 0.7..0.9
        ("M1", 0, -60, 0.914, False),  # 640 / 700
        ("M1", 0, -220, 0.686, False),  # 480 / 700
        ("N1", 0, -100, 0.857, False),  # 600 / 700: others 0.6..0.8 ...
        ("M1", 0, -100, 0.857, True),  # ... but inside M1's window
        ("N1", 0, -280, 0.6, True),  # 420 / 700
        ("M1", -170, -140, 0.8, True),
        ("M1", -171, -140, 0.8, False),  # 170 mm to the left at most
        ("M1", 350, -140, 0.8, True),
        ("M1", 351, -140, 0.8, False),  # 350 mm to the right at most
    ],
)
def test_low_beam_lives_in_its_lamps_item(
    lim: HeadlampLimits, vehicle_class: str, h: int, v: int, ratio: float, ok: bool
) -> None:
    readings = [high("R", 20000), low("R", h=h, v=v)]
    vehicle = car(vehicle_class=vehicle_class)
    [recorded] = judge_headlamps(readings, vehicle, PERIODIC, lim)
    assert recorded.code == "H4"  # the low beam is no item of its own
    assert recorded.verdict is Verdict.PASS
    values = recorded.values
    assert (values["low_h_mm"], values["low_v_mm"]) == (h, v)
    assert values["low_height_ratio"] == ratio
    assert values["low_position_ok"] is ok
    assert values["high_position_ok"] is True
    assert recorded.limits["low_h_left_mm"] == 170
    [judged] = judge_headlamps(readings, vehicle, PERIODIC, lim, "judge")
    assert judged.verdict is (Verdict.PASS if ok else Verdict.FAIL)


def test_a_lamp_without_a_high_beam_reading_has_no_item(lim: HeadlampLimits) -> None:
    items = judge_headlamps([low("L"), high("R", 16000)], car(), PERIODIC, lim)
    assert [i.code for i in items] == ["H4"]
    assert judge_headlamps([], car(), PERIODIC, lim) == []


def test_readings_that_do_not_fit_are_refused(lim: HeadlampLimits) -> None:
    with pytest.raises(ValueError, match="lamp LI on a 2-lamp system"):
        judge_headlamps([high("LI", 16000)], car(), PERIODIC, lim)
    with pytest.raises(ValueError, match="lamp L high beam read twice"):
        judge_headlamps([high("L", 16000), high("L", 17000)], car(), PERIODIC, lim)
    with pytest.raises(ValueError, match="record or judge"):
        judge_headlamps([high("L", 16000)], car(), PERIODIC, lim, "aim")
    with pytest.raises(ValueError, match="lamp 'X'"):
        LampReading("X", "H", 1, 0, 0, H)
    with pytest.raises(ValueError, match="beam 'M'"):
        LampReading("L", "M", 1, 0, 0, H)
    with pytest.raises(ValueError, match="height_mm"):
        LampReading("L", "H", 1, 0, 0, 0)
    with pytest.raises(ValueError, match="intensity_cd"):
        LampReading("L", "H", -1, 0, 0, H)
