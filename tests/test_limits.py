"""Limits data: config/limits/*.toml hold standards.md's numbers; bad files are refused by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from linectl.config import DEFAULT_LIMITS_DIR, ConfigError
from linectl.stations.limits import Limits, LimitsError, load_limits
from linectl.vehicle import InspectionType


@pytest.fixture
def limits_dir(tmp_path: Path) -> Path:
    d = tmp_path / "limits"
    shutil.copytree(DEFAULT_LIMITS_DIR, d)
    return d


def edit(d: Path, file: str, old: str, new: str) -> None:
    p = d / file
    text = p.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {file}"
    p.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_shipped_limits_hold_the_numbers_of_standards_md() -> None:
    lim = load_limits(DEFAULT_LIMITS_DIR)
    assert isinstance(lim, Limits)
    b = lim.brake
    assert b.g_m_s2 == 9.8
    assert (b.drag_window_start_s, b.drag_window_end_s, b.brake_phase_start_s) == (0.5, 1.5, 1.5)
    assert b.drag_max_pct == 10
    assert b.vehicle_min_pct == 60
    assert b.group_gross_mass_kg == 3500
    rates = [
        (r.front_axle_min_pct, r.other_axle_min_pct)
        for r in (b.rate_light, b.rate_bus, b.rate_heavy)
    ]
    assert rates == [(60, 20), (60, 40), (60, 50)]
    assert b.imbalance_branch_rate_pct == 60
    new, periodic = b.imbalance.of(InspectionType.NEW), b.imbalance.of(InspectionType.PERIODIC)
    assert (new.front_axle_max_pct, new.other_axle_max_pct, new.other_axle_low_rate_max_pct) == (
        20,
        24,
        8,
    )
    assert (
        periodic.front_axle_max_pct,
        periodic.other_axle_max_pct,
        periodic.other_axle_low_rate_max_pct,
    ) == (24, 30, 10)
    assert (
        b.parking_min_pct,
        b.parking_reduced_min_pct,
        b.parking_reduced_below_gross_to_curb,
    ) == (20, 15, 1.2)

    h = lim.headlamp
    assert h.slow_below_kmh == 70
    assert h.intensity_normal.of(2, InspectionType.NEW) == 18000
    assert h.intensity_normal.of(2, InspectionType.PERIODIC) == 15000
    assert h.intensity_normal.of(4, InspectionType.NEW) == 15000
    assert h.intensity_normal.of(4, InspectionType.PERIODIC) == 12000
    assert h.intensity_slow.of(2, InspectionType.NEW) == 10000
    assert h.intensity_slow.of(2, InspectionType.PERIODIC) == 8000
    assert h.intensity_slow.of(4, InspectionType.NEW) == 8000
    assert h.intensity_slow.of(4, InspectionType.PERIODIC) == 6000
    assert (h.low_beam_m1.min_ratio, h.low_beam_m1.max_ratio) == (0.7, 0.9)
    assert (h.low_beam_other.min_ratio, h.low_beam_other.max_ratio) == (0.6, 0.8)
    assert (h.low_beam_horizontal.left_mm, h.low_beam_horizontal.right_mm) == (170, 350)
    assert (h.high_beam_m1.min_ratio, h.high_beam_m1.max_ratio) == (0.85, 0.95)
    assert (h.high_beam_other.min_ratio, h.high_beam_other.max_ratio) == (0.80, 0.95)
    assert (h.high_beam_left_lamp.left_mm, h.high_beam_left_lamp.right_mm) == (170, 350)
    assert (h.high_beam_right_lamp.left_mm, h.high_beam_right_lamp.right_mm) == (350, 350)

    e = lim.emission
    assert (e.settle_readings, e.measure_readings) == (15, 30)
    assert (e.high_idle_rpm, e.high_idle_tolerance_rpm) == (2500, 200)
    assert (e.heavy_gross_mass_kg, e.heavy_high_idle_rpm, e.heavy_high_idle_tolerance_rpm) == (
        3500,
        1800,
        200,
    )
    assert (e.idle_min_rpm, e.idle_max_rpm) == (500, 1100)
    a, bb = e.two_speed_idle["a"], e.two_speed_idle["b"]
    assert (
        a.idle_co_max_pct,
        a.idle_hc_max_ppm,
        a.high_idle_co_max_pct,
        a.high_idle_hc_max_ppm,
    ) == (0.6, 80, 0.3, 50)
    assert (
        bb.idle_co_max_pct,
        bb.idle_hc_max_ppm,
        bb.high_idle_co_max_pct,
        bb.high_idle_hc_max_ppm,
    ) == (0.4, 40, 0.3, 30)
    assert (a.high_idle_lambda_min, a.high_idle_lambda_max) == (0.95, 1.05)
    assert (bb.high_idle_lambda_min, bb.high_idle_lambda_max) == (0.95, 1.05)
    assert e.measured_accelerations == 3
    assert dict(e.k_max_per_m) == {"a": 1.2, "b": 0.7}


def test_unconfirmed_rows_say_so_in_the_files() -> None:
    # standards.md marks limit set b of the petrol table and the beam position unconfirmed.
    emission = (DEFAULT_LIMITS_DIR / "emission.toml").read_text(encoding="utf-8")
    assert (
        "[two_speed_idle.b]   # limit b, GB 18285-2018 via standards.md (unconfirmed)" in emission
    )
    headlamp = (DEFAULT_LIMITS_DIR / "headlamp.toml").read_text(encoding="utf-8")
    for table in ("[beam_position.low_beam]", "[beam_position.high_beam]"):
        line = next(x for x in headlamp.splitlines() if x.startswith(table))
        assert "(unconfirmed)" in line


def test_each_table_names_its_source_for_the_report(limits_dir: Path) -> None:
    lim = load_limits(DEFAULT_LIMITS_DIR)
    assert lim.source("brake.rate.light") == lim.source("brake") == "GB 7258-2017, GB 38900-2020"
    assert lim.source("headlamp.beam_position.low_beam") == lim.source("headlamp")
    assert lim.source("emission.two_speed_idle.b") == "GB 18285-2018"
    assert lim.source("emission.free_acceleration.a") == "GB 3847-2018"
    assert lim.source("emission") is None  # no source for the file as a whole
    # A table may name its own, which then applies inside it.
    edit(
        limits_dir,
        "emission.toml",
        "[two_speed_idle.b]",
        '[two_speed_idle.b]\nsource = "DB 37/0000"',
    )
    lim = load_limits(limits_dir)
    assert lim.source("emission.two_speed_idle.b") == "DB 37/0000"
    assert lim.source("emission.two_speed_idle.a") == "GB 18285-2018"


def test_a_table_without_a_source_is_refused_by_name(limits_dir: Path) -> None:
    edit(limits_dir, "emission.toml", 'source = "GB 3847-2018"', "")
    with pytest.raises(LimitsError) as e:
        load_limits(limits_dir)
    assert e.value.key == "free_acceleration.source" and "missing" in str(e.value)
    edit(limits_dir, "emission.toml", 'source = "GB 18285-2018"', "source = 18285")
    with pytest.raises(LimitsError, match=r"two_speed_idle\.source: must be the name"):
        load_limits(limits_dir)


def test_limits_are_frozen(limits_dir: Path) -> None:
    lim = load_limits(limits_dir)
    with pytest.raises(AttributeError):
        lim.brake.drag_max_pct = 50  # type: ignore[misc]
    with pytest.raises(TypeError):
        lim.emission.k_max_per_m["a"] = 9  # type: ignore[index]


def test_a_changed_number_is_read(limits_dir: Path) -> None:
    edit(limits_dir, "brake.toml", "max_pct_of_wheel_load = 10.0", "max_pct_of_wheel_load = 8.5")
    assert load_limits(limits_dir).brake.drag_max_pct == 8.5


@pytest.mark.parametrize(
    ("file", "old", "new", "key", "message"),
    [
        (
            "brake.toml",
            "other_axle_min_pct = 40.0\n",
            "\n",
            "rate.bus.other_axle_min_pct",
            "missing",
        ),
        ("brake.toml", "g_m_s2 = 9.8", 'g_m_s2 = "9.8"', "g_m_s2", "must be a number"),
        ("brake.toml", "g_m_s2 = 9.8", "g_m_s2 = 0", "g_m_s2", "must be > 0"),
        (
            "brake.toml",
            "front_axle_max_pct = 20.0",
            "front_axle_max_pct = 120.0",
            "imbalance.new.front_axle_max_pct",
            "<= 100",
        ),
        (
            "brake.toml",
            "front_axle_max_pct = 20.0",
            "fornt_axle_max_pct = 20.0",
            "imbalance.new.front_axle_max_pct",
            "missing",
        ),
        ("brake.toml", "[parking]", "[parking]\nmin_pc = 3", "parking.min_pc", "unknown key"),
        (
            "brake.toml",
            "[imbalance.periodic]",
            "[imbalance.periodict]",
            "imbalance.periodic",
            "missing",
        ),
        (
            "brake.toml",
            "drag_window_start_s = 0.5",
            "drag_window_start_s = 1.6",
            "timing.drag_window_end_s",
            "must be above",
        ),
        (
            "brake.toml",
            "brake_phase_start_s = 1.5",
            "brake_phase_start_s = 1.0",
            "timing.brake_phase_start_s",
            "must not be before",
        ),
        (
            "brake.toml",
            "reduced_below_gross_to_curb = 1.2",
            "reduced_below_gross_to_curb = true",
            "parking.reduced_below_gross_to_curb",
            "must be a number",
        ),
        ("brake.toml", "[rate.light]", "light = 3\n[rate.lite]", "rate.light", "must be a table"),
        (
            "headlamp.toml",
            "four_lamp_periodic_cd = 6000\n",
            "\n",
            "intensity.slow.four_lamp_periodic_cd",
            "missing",
        ),
        (
            "headlamp.toml",
            "m1_max_ratio = 0.95",
            "m1_max_ratio = 0.8",
            "beam_position.high_beam.m1_max_ratio",
            "must be above",
        ),
        (
            "headlamp.toml",
            "m1_max_ratio = 0.9",
            "m1_max_ratio = 1.9",
            "beam_position.low_beam.m1_max_ratio",
            "<= 1",
        ),
        (
            "headlamp.toml",
            "left_mm = 170",
            "left_mm = -170",
            "beam_position.low_beam.left_mm",
            ">= 0",
        ),
        (
            "emission.toml",
            "[two_speed_idle.b]",
            "[two_speed_idle.c]",
            "two_speed_idle.b",
            "missing",
        ),
        (
            "emission.toml",
            "settle_readings = 15",
            "settle_readings = 1.5",
            "two_speed_idle.settle_readings",
            "whole number",
        ),
        (
            "emission.toml",
            "idle_min_rpm = 500",
            "idle_min_rpm = 1200",
            "two_speed_idle.idle_max_rpm",
            "must be above",
        ),
        (
            "emission.toml",
            "high_idle_tolerance_rpm = 200",
            "high_idle_tolerance_rpm = 2600",
            "two_speed_idle.high_idle_tolerance_rpm",
            "must be below",
        ),
        (
            "emission.toml",
            "high_idle_lambda_max = 1.05",
            "high_idle_lambda_max = 0.9",
            "two_speed_idle.a.high_idle_lambda_max",
            "must be above",
        ),
        (
            "emission.toml",
            "k_max_per_m = 0.7",
            "k_max_per_m = nan",
            "free_acceleration.b.k_max_per_m",
            "must be a number",
        ),
    ],
)
def test_a_bad_key_is_refused_naming_file_and_key(
    limits_dir: Path, file: str, old: str, new: str, key: str, message: str
) -> None:
    edit(limits_dir, file, old, new)
    with pytest.raises(LimitsError) as e:
        load_limits(limits_dir)
    text = str(e.value)
    assert text.startswith(f"{limits_dir / file}: {key}: ")
    assert message in text
    assert e.value.key == key


def test_a_missing_file_is_refused_by_name(limits_dir: Path) -> None:
    (limits_dir / "headlamp.toml").unlink()
    with pytest.raises(LimitsError, match=r"headlamp\.toml: limits file not found"):
        load_limits(limits_dir)


def test_a_file_that_is_not_toml_is_refused_by_name(limits_dir: Path) -> None:
    (limits_dir / "emission.toml").write_text("[two_speed_idle\nsettle = 1\n", encoding="utf-8")
    with pytest.raises(LimitsError, match=r"emission\.toml: not valid TOML"):
        load_limits(limits_dir)


def test_a_missing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LimitsError, match="limits folder not found"):
        load_limits(tmp_path / "nowhere")


def test_limits_errors_are_config_errors(limits_dir: Path) -> None:
    # The CLI and the daemon's start-up report config errors as one line, not a traceback.
    (limits_dir / "brake.toml").unlink()
    with pytest.raises(ConfigError):
        load_limits(limits_dir)
