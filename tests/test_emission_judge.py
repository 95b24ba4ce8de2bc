"""Emission judgement, worked by hand: two-speed idle phases and limits, free acceleration."""

from __future__ import annotations

import pytest

from linectl.config import DEFAULT_LIMITS_DIR
from linectl.items import Verdict
from linectl.stations.emission_judge import (
    GasReading,
    evaluate_phase,
    high_idle_band,
    idle_band,
    judge_free_acceleration,
    judge_two_speed_idle,
)
from linectl.stations.limits import EmissionLimits, load_limits
from linectl.vehicle import Fuel, Vehicle


@pytest.fixture(scope="module")
def lim() -> EmissionLimits:
    return load_limits(DEFAULT_LIMITS_DIR).emission


def car(fuel: Fuel = Fuel.PETROL, gross: int = 1750) -> Vehicle:
    return Vehicle(
        vin="LSVAU218XN2183294",
        plate="鲁G12345",
        vehicle_class="M1" if gross <= 3500 else "N2",
        fuel=fuel,
        axles=2,
        parking_axles=(2,),
        curb_mass_kg=1320,
        gross_mass_kg=gross,
        headlamp_system=2,
        max_design_speed_kmh=180,
    )


def r(rpm: float, co: float, hc: float, lam: float | None = 1.0) -> GasReading:
    return GasReading(rpm=rpm, co_pct=co, hc_ppm=hc, lambda_=lam)


# The first 15 readings settle: far outside every band and limit, they must not count.
SETTLE = [r(3500, 5.0, 900, 0.5)] * 15


def phase(
    rpm: float, co: float, hc: float, lam: float | None = 1.0, n: int = 30
) -> list[GasReading]:
    return SETTLE + [r(rpm, co, hc, lam)] * n


def good_high() -> list[GasReading]:
    return phase(2500, 0.10, 20, 1.00)


def good_idle() -> list[GasReading]:
    return phase(800, 0.20, 40, 1.01)


# ---------------------------------------------------------------- phases


def test_phase_ignores_settle_readings_and_averages_the_next_30(lim: EmissionLimits) -> None:
    # measured: 15 x (2400 rpm, CO 0.2, HC 10) and 15 x (2600 rpm, CO 0.4, HC 30),
    # then 5 readings after the 45th at 9000 rpm, not used.
    measured = [r(2400, 0.2, 10)] * 15 + [r(2600, 0.4, 30)] * 15
    p = evaluate_phase(SETTLE + measured + [r(9000, 9, 999)] * 5, (2300, 2700), 15, 30)
    assert p.valid and p.reason is None
    assert p.n == 30
    assert p.mean["rpm"] == pytest.approx(2500)
    assert p.mean["co_pct"] == pytest.approx(0.3)
    assert p.mean["hc_ppm"] == pytest.approx(20)
    assert p.mean["lambda"] == pytest.approx(1.0)
    assert "co2_pct" not in p.mean  # not given by these readings


def test_band_edges_are_inside_and_one_reading_outside_invalidates(lim: EmissionLimits) -> None:
    edges = SETTLE + [r(2300, 0.1, 10)] * 15 + [r(2700, 0.1, 10)] * 15
    assert evaluate_phase(edges, (2300, 2700), 15, 30).valid
    one_out = SETTLE + [r(2500, 0.1, 10)] * 29 + [r(2701, 0.1, 10)]
    p = evaluate_phase(one_out, (2300, 2700), 15, 30)
    assert (p.valid, p.reason, p.out_of_band) == (False, "rpm_out_of_band", 1)


def test_fewer_than_45_readings_is_not_a_phase() -> None:
    p = evaluate_phase(SETTLE + [r(2500, 0.1, 10)] * 29, (2300, 2700), 15, 30)
    assert (p.valid, p.reason, p.n, p.mean) == (False, "too_few_readings", 0, {})


def test_bands(lim: EmissionLimits) -> None:
    assert high_idle_band(car(gross=3500), lim) == (2300, 2700)
    assert high_idle_band(car(gross=3501), lim) == (1600, 2000)  # over 3500 kg gross
    assert idle_band(lim) == (500, 1100)
    assert idle_band(lim, (600, 900)) == (600, 900)
    with pytest.raises(ValueError):
        idle_band(lim, (900, 600))


# ---------------------------------------------------------------- two-speed idle


def test_petrol_passes_at_every_limit_a_edge(lim: EmissionLimits) -> None:
    # high idle CO 0.30 (mean of 0.2 and 0.4), HC 50, lambda 1.05; idle CO 0.60, HC 80
    high = SETTLE + [r(2500, 0.2, 50, 1.05)] * 15 + [r(2500, 0.4, 50, 1.05)] * 15
    ex = judge_two_speed_idle(high, phase(800, 0.60, 80), car(), lim, "a")
    assert ex.code == "EX"
    assert ex.verdict is Verdict.PASS
    v = ex.values
    assert (v["high_idle_co_pct"], v["high_idle_hc_ppm"], v["high_idle_lambda"]) == (0.3, 50, 1.05)
    assert (v["idle_co_pct"], v["idle_hc_ppm"]) == (0.6, 80)
    assert (v["high_idle_rpm"], v["idle_rpm"]) == (2500, 800)
    assert (v["method"], v["limit_set"]) == ("two_speed_idle", "a")
    assert ex.limits == {
        "high_idle_co_pct": 0.3,
        "high_idle_hc_ppm": 50,
        "high_idle_lambda_min": 0.95,
        "high_idle_lambda_max": 1.05,
        "idle_co_pct": 0.6,
        "idle_hc_ppm": 80,
        "high_idle_rpm_min": 2300,
        "high_idle_rpm_max": 2700,
        "idle_rpm_min": 500,
        "idle_rpm_max": 1100,
    }
    assert ex.raw["high_idle"].shape == (45, 7)


@pytest.mark.parametrize(
    ("high", "idle", "what"),
    [
        (good_high(), phase(800, 0.61, 40), "idle CO 0.61 > 0.6"),
        (good_high(), phase(800, 0.20, 81), "idle HC 81 > 80"),
        (phase(2500, 0.31, 20), good_idle(), "high idle CO 0.31 > 0.3"),
        (phase(2500, 0.10, 51), good_idle(), "high idle HC 51 > 50"),
        (phase(2500, 0.10, 20, 0.94), good_idle(), "lambda 0.94 < 0.95"),
        (phase(2500, 0.10, 20, 1.06), good_idle(), "lambda 1.06 > 1.05"),
    ],
)
def test_each_limit_fails_on_its_own(
    lim: EmissionLimits, high: list[GasReading], idle: list[GasReading], what: str
) -> None:
    assert judge_two_speed_idle(high, idle, car(), lim, "a").verdict is Verdict.FAIL, what


def test_good_readings_pass(lim: EmissionLimits) -> None:
    assert judge_two_speed_idle(good_high(), good_idle(), car(), lim, "a").verdict is Verdict.PASS


def test_a_measured_reading_outside_the_band_is_not_judged(lim: EmissionLimits) -> None:
    # 29 good readings and one at 2701 rpm in the high-idle measurement
    high = SETTLE + [r(2500, 0.1, 20)] * 29 + [r(2701, 0.1, 20)]
    ex = judge_two_speed_idle(high, good_idle(), car(), lim, "a")
    assert (ex.verdict, ex.reason) == (Verdict.NOT_JUDGED, "invalid_phase")
    assert ex.values["high_idle_phase"] == "rpm_out_of_band"
    assert ex.values["high_idle_out_of_band"] == 1
    assert "idle_phase" not in ex.values
    # idle at 1101 rpm, with readings that would fail: still not judged, never failed
    ex = judge_two_speed_idle(good_high(), phase(1101, 5.0, 500), car(), lim, "a")
    assert (ex.verdict, ex.values["idle_phase"]) == (Verdict.NOT_JUDGED, "rpm_out_of_band")


def test_too_few_readings_is_not_judged(lim: EmissionLimits) -> None:
    ex = judge_two_speed_idle(good_high(), phase(800, 0.2, 40, n=29), car(), lim, "a")
    assert (ex.verdict, ex.reason) == (Verdict.NOT_JUDGED, "invalid_phase")
    assert ex.values["idle_phase"] == "too_few_readings"
    assert ex.values["idle_readings"] == 44


def test_heavy_vehicles_take_the_1800_rpm_band(lim: EmissionLimits) -> None:
    heavy = car(gross=4000)
    ex = judge_two_speed_idle(phase(1800, 0.1, 20), good_idle(), heavy, lim, "a")
    assert ex.verdict is Verdict.PASS
    assert (ex.limits["high_idle_rpm_min"], ex.limits["high_idle_rpm_max"]) == (1600, 2000)
    at_2500 = judge_two_speed_idle(good_high(), good_idle(), heavy, lim, "a")
    assert at_2500.values["high_idle_phase"] == "rpm_out_of_band"
    light_at_1800 = judge_two_speed_idle(phase(1800, 0.1, 20), good_idle(), car(), lim, "a")
    assert light_at_1800.values["high_idle_phase"] == "rpm_out_of_band"


def test_limit_set_b(lim: EmissionLimits) -> None:
    # idle HC 60: under a's 80, over b's 40
    idle = phase(800, 0.2, 60)
    assert judge_two_speed_idle(good_high(), idle, car(), lim, "a").verdict is Verdict.PASS
    b = judge_two_speed_idle(good_high(), idle, car(), lim, "b")
    assert b.verdict is Verdict.FAIL
    assert (b.limits["idle_hc_ppm"], b.limits["idle_co_pct"], b.limits["high_idle_hc_ppm"]) == (
        40,
        0.4,
        30,
    )
    assert b.values["limit_set"] == "b"
    # idle CO 0.5 (b: 0.4) and high idle HC 40 (b: 30) fail b alone
    assert (
        judge_two_speed_idle(good_high(), phase(800, 0.5, 20), car(), lim, "b").verdict
        is Verdict.FAIL
    )
    assert (
        judge_two_speed_idle(phase(2500, 0.1, 40), good_idle(), car(), lim, "b").verdict
        is Verdict.FAIL
    )
    assert judge_two_speed_idle(good_high(), good_idle(), car(), lim, "b").verdict is Verdict.PASS


def test_idle_band_override(lim: EmissionLimits) -> None:
    idle = phase(950, 0.2, 40)
    assert judge_two_speed_idle(good_high(), idle, car(), lim, "a").verdict is Verdict.PASS
    narrow = judge_two_speed_idle(good_high(), idle, car(), lim, "a", idle_band=(600, 900))
    assert narrow.values["idle_phase"] == "rpm_out_of_band"
    assert (narrow.limits["idle_rpm_min"], narrow.limits["idle_rpm_max"]) == (600, 900)


def test_no_lambda_at_high_idle_is_not_judged(lim: EmissionLimits) -> None:
    ex = judge_two_speed_idle(phase(2500, 0.1, 20, None), good_idle(), car(), lim, "a")
    assert (ex.verdict, ex.reason) == (Verdict.NOT_JUDGED, "no_lambda")
    # the analyser's lambda 0 means "not computable"
    assert GasReading(2500, 0.1, 20, lambda_=0).lambda_ is None
    ex0 = judge_two_speed_idle(phase(2500, 0.1, 20, 0), good_idle(), car(), lim, "a")
    assert ex0.reason == "no_lambda"
    # idle needs no lambda
    assert (
        judge_two_speed_idle(good_high(), phase(800, 0.2, 40, None), car(), lim, "a").verdict
        is Verdict.PASS
    )


def test_other_gases_are_recorded(lim: EmissionLimits) -> None:
    high = SETTLE + [GasReading(2500, 0.1, 20, 1.0, co2_pct=14.5, o2_pct=0.4, no_ppm=120)] * 30
    v = judge_two_speed_idle(high, good_idle(), car(), lim, "a").values
    assert (v["high_idle_co2_pct"], v["high_idle_o2_pct"], v["high_idle_no_ppm"]) == (
        14.5,
        0.4,
        120,
    )


def test_fuels_and_limit_sets_that_do_not_fit(lim: EmissionLimits) -> None:
    for fuel in (Fuel.HYBRID, Fuel.GAS):
        assert (
            judge_two_speed_idle(good_high(), good_idle(), car(fuel), lim, "a").verdict
            is Verdict.PASS
        )
    for fuel in (Fuel.DIESEL, Fuel.ELECTRIC):
        with pytest.raises(ValueError, match="petrol, hybrid and gas"):
            judge_two_speed_idle(good_high(), good_idle(), car(fuel), lim, "a")
    with pytest.raises(ValueError, match="limit set 'c'"):
        judge_two_speed_idle(good_high(), good_idle(), car(), lim, "c")
    with pytest.raises(ValueError, match="co_pct"):
        GasReading(2500, -0.1, 20)


# ---------------------------------------------------------------- free acceleration


def test_diesel_mean_of_three_peaks_limit_a_and_b(lim: EmissionLimits) -> None:
    # (1.1 + 1.3 + 1.2) / 3 = 1.2: at a's 1.2, over b's 0.7
    a = judge_free_acceleration([1.1, 1.3, 1.2], lim, "a")
    assert (a.code, a.verdict, a.values["k_per_m"], a.limits) == (
        "EX",
        Verdict.PASS,
        1.2,
        {"k_per_m": 1.2},
    )
    assert (a.values["peak1_k_per_m"], a.values["peak3_k_per_m"]) == (1.1, 1.2)
    b = judge_free_acceleration([1.1, 1.3, 1.2], lim, "b")
    assert (b.verdict, b.limits) == (Verdict.FAIL, {"k_per_m": 0.7})
    # (0.6 + 0.7 + 0.8) / 3 = 0.7: at b's limit
    assert judge_free_acceleration([0.6, 0.7, 0.8], lim, "b").verdict is Verdict.PASS
    # (1.21 + 1.21 + 1.22) / 3 = 1.2133 -> 1.21 > 1.2
    over = judge_free_acceleration([1.21, 1.21, 1.22], lim, "a")
    assert (over.values["k_per_m"], over.verdict) == (1.21, Verdict.FAIL)


def test_fewer_than_three_peaks_is_not_judged(lim: EmissionLimits) -> None:
    for peaks in ([1.0, 1.0], []):
        ex = judge_free_acceleration(peaks, lim, "a")
        assert (ex.verdict, ex.reason) == (Verdict.NOT_JUDGED, "too_few_peaks")
        assert "k_per_m" not in ex.values


def test_peaks_that_do_not_fit_are_refused(lim: EmissionLimits) -> None:
    with pytest.raises(ValueError, match="exactly 3"):
        judge_free_acceleration([1.0, 1.0, 1.0, 1.0], lim, "a")
    with pytest.raises(ValueError, match=">= 0"):
        judge_free_acceleration([1.0, -1.0, 1.0], lim, "a")
    with pytest.raises(ValueError, match="limit set"):
        judge_free_acceleration([1.0, 1.0, 1.0], lim, "x")
