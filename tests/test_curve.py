"""BrakeCurve: the upstream P@L#R$ form, the database bytes, and their errors."""

from __future__ import annotations

import numpy as np
import pytest

from linectl.stations.curve import BrakeCurve


def test_upstream_form_of_standards_example() -> None:
    # standards.md: "1@56#45$57#46" is P = 1 (10 ms), two samples of (L, R) in 10 N.
    c = BrakeCurve(10, np.array([56, 57]), np.array([45, 46]))
    assert c.to_upstream() == "1@56#45$57#46"
    back = BrakeCurve.from_upstream("1@56#45$57#46")
    assert back == c
    assert back.period_ms == 10
    assert back.left.tolist() == [56, 57]
    assert back.right.tolist() == [45, 46]


def test_period_is_p_times_10_ms_and_t_follows_it() -> None:
    c = BrakeCurve.from_upstream("5@0#0$1#2$3#4$5#6")
    assert c.period_ms == 50
    assert len(c) == 4
    # sample i at i * P * 10 ms
    assert c.t().tolist() == [0.0, 0.05, 0.1, 0.15]
    assert c.t_ms().tolist() == [0, 50, 100, 150]
    assert c.to_upstream() == "5@0#0$1#2$3#4$5#6"


def test_round_trip_of_a_long_curve() -> None:
    rng = np.random.default_rng(7)
    left = rng.integers(0, 65536, 1000)
    right = rng.integers(0, 65536, 1000)
    c = BrakeCurve(20, left, right)
    assert BrakeCurve.from_upstream(c.to_upstream()) == c


def test_trailing_dollar_and_outer_whitespace_are_tolerated() -> None:
    assert BrakeCurve.from_upstream(" 1@56#45$57#46$\n") == BrakeCurve.from_upstream(
        "1@56#45$57#46"
    )


def test_a_curve_with_no_samples_round_trips() -> None:
    c = BrakeCurve.from_upstream("1@")
    assert len(c) == 0
    assert c.to_upstream() == "1@"
    assert BrakeCurve.from_bytes(c.to_bytes()) == c


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no '@'"),
        ("56#45$57#46", "no '@'"),
        ("0@1#2", "period P must be a whole number >= 1"),
        ("x@1#2", "period P must be a whole number >= 1"),
        ("-1@1#2", "period P must be a whole number >= 1"),
        ("1.5@1#2", "period P must be a whole number >= 1"),
        ("1@1#2$3", "sample 1 is '3'"),
        ("1@1#2$$3#4", "sample 1 is ''"),
        ("1@-1#2", "sample 0 is '-1#2'"),
        ("1@1.5#2", "sample 0 is '1.5#2'"),
        ("1@1#2#3", "sample 0 is '1#2#3'"),
        ("1@1 #2", "sample 0 is '1 #2'"),
        ("1@#", "sample 0 is '#'"),
        ("7000@1#2", "period must be a positive multiple of 10 ms"),
    ],
)
def test_bad_upstream_text_is_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ValueError) as e:
        BrakeCurve.from_upstream(text)
    assert message in str(e.value)


def test_non_string_upstream_is_refused() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        BrakeCurve.from_upstream(123)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("period_ms", "left", "right", "message"),
    [
        (15, [1], [1], "multiple of 10"),
        (0, [1], [1], "multiple of 10"),
        (10.0, [1], [1], "whole number of ms"),
        (10, [1, 2], [1], "as many samples"),
        (10, [1, -2], [1, 2], "must not be negative"),
        (10, [1.5], [1], "whole numbers of 10 N"),
        (10, [np.nan], [1], "whole numbers of 10 N"),
        (10, [[1, 2]], [[1, 2]], "1-D"),
    ],
)
def test_bad_curve_values_are_refused(
    period_ms: object, left: list, right: list, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BrakeCurve(period_ms, np.array(left), np.array(right))  # type: ignore[arg-type]


def test_whole_floats_are_taken_and_the_callers_array_is_not_shared() -> None:
    left = np.array([1.0, 2.0])
    c = BrakeCurve(10, left, np.array([3, 4]))
    assert c.left.dtype.kind == "i"
    left[0] = 99
    assert c.left.tolist() == [1, 2]
    with pytest.raises(ValueError):
        c.left[0] = 5  # the curve is a value: its arrays are read-only


def test_as_array_and_from_array() -> None:
    c = BrakeCurve.from_upstream("1@56#45$57#46")
    a = c.as_array()
    assert a.shape == (2, 2)
    assert a.tolist() == [[56, 45], [57, 46]]
    assert BrakeCurve.from_array(10, a) == c
    with pytest.raises(ValueError, match=r"\(n, 2\)"):
        BrakeCurve.from_array(10, np.zeros((3, 3)))


def test_bytes_are_compact_and_round_trip() -> None:
    rng = np.random.default_rng(1)
    c = BrakeCurve(10, rng.integers(0, 65536, 1000), rng.integers(0, 65536, 1000))
    b = c.to_bytes()
    # a 12-byte header and two u16 arrays: 2 bytes per force, not a row per sample
    assert len(b) == 12 + 2 * 1000 * 2
    assert BrakeCurve.from_bytes(b) == c


def test_bytes_widen_for_forces_beyond_16_bits() -> None:
    c = BrakeCurve(10, np.array([70000, 1]), np.array([0, 65536]))
    b = c.to_bytes()
    assert len(b) == 12 + 2 * 2 * 4
    assert BrakeCurve.from_bytes(b) == c


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:5], "too short for the header"),
        (lambda b: b"XYZ" + b[3:], "not brake curve bytes"),
        (lambda b: b[:3] + b"\x09" + b[4:], "unknown version"),
        (lambda b: b[:4] + b"\x03" + b[5:], "bad force size"),
        (lambda b: b[:-1], "expected"),
        (lambda b: b + b"\x00\x00", "expected"),
    ],
)
def test_bad_bytes_are_refused(mangle: object, message: str) -> None:
    good = BrakeCurve.from_upstream("1@56#45$57#46").to_bytes()
    with pytest.raises(ValueError, match=message):
        BrakeCurve.from_bytes(mangle(good))  # type: ignore[operator]


def test_equality_compares_period_and_samples() -> None:
    a = BrakeCurve.from_upstream("1@1#2$3#4")
    assert a == BrakeCurve.from_upstream("1@1#2$3#4")
    assert a != BrakeCurve.from_upstream("2@1#2$3#4")
    assert a != BrakeCurve.from_upstream("1@1#2$3#5")
    assert a != "1@1#2$3#4"
