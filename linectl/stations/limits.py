"""The national limits as data: config/limits/*.toml loaded into typed, frozen objects.

This module owns the shape of the three limits files (brake.toml, headlamp.toml,
emission.toml) and their validation; it holds no limit number itself. A file
that is missing, not TOML, lacks a key, has a key of the wrong type or range,
or has a key nobody reads (a typo would otherwise silently keep a default) is
refused with `LimitsError`, whose message names the file and the key.

Each file also says where its numbers come from: a `source` string (the
standard) at its top or in a table, inherited by the tables inside it, and
required for every top-level table. `Limits.source("emission.two_speed_idle.b")`
gives the one that applies, for the inspection report to print beside a limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from linectl import tomlfile
from linectl.config import ConfigError
from linectl.vehicle import InspectionType

T = TypeVar("T")

LIMIT_SETS = ("a", "b")  # the emission limit sets the site config may choose


class LimitsError(ConfigError):
    """A limits file that cannot be used; the message names the file and the key."""

    def __init__(self, file: Path | str, key: str | None, message: str) -> None:
        where = f"{file}: {key}" if key else str(file)
        super().__init__(f"{where}: {message}")
        self.file = str(file)
        self.key = key
        self.message = message


@dataclass(frozen=True)
class ByColumn(Generic[T]):
    """One limit in the `new` and `periodic` columns of standards.md."""

    new: T
    periodic: T

    def of(self, inspection_type: InspectionType) -> T:
        return self.new if inspection_type is InspectionType.NEW else self.periodic


# ---------------------------------------------------------------- brake


@dataclass(frozen=True)
class AxleRateLimits:
    """Minimum axle brake rates of one vehicle group, % of axle load."""

    front_axle_min_pct: float
    other_axle_min_pct: float


@dataclass(frozen=True)
class ImbalanceLimits:
    """Maximum imbalance of one column, %."""

    front_axle_max_pct: float
    other_axle_max_pct: float  # axle rate >= branch: of the larger max force
    other_axle_low_rate_max_pct: float  # axle rate < branch: of the axle load


@dataclass(frozen=True)
class BrakeLimits:
    g_m_s2: float
    drag_window_start_s: float
    drag_window_end_s: float
    brake_phase_start_s: float
    drag_max_pct: float  # of the wheel's own static load
    group_gross_mass_kg: float
    vehicle_min_pct: float  # BT
    rate_light: AxleRateLimits
    rate_bus: AxleRateLimits
    rate_heavy: AxleRateLimits
    imbalance_branch_rate_pct: float
    imbalance: ByColumn[ImbalanceLimits]
    parking_min_pct: float
    parking_reduced_min_pct: float
    parking_reduced_below_gross_to_curb: float


# ---------------------------------------------------------------- headlamp


@dataclass(frozen=True)
class IntensityRow:
    """High-beam intensity minima of one speed row, cd."""

    two_lamp: ByColumn[float]
    four_lamp: ByColumn[float]

    def of(self, headlamp_system: int, inspection_type: InspectionType) -> float:
        return (self.four_lamp if headlamp_system == 4 else self.two_lamp).of(inspection_type)


@dataclass(frozen=True)
class HeightWindow:
    """Where a cut-off or beam centre may sit, as fractions of the lamp-centre height H."""

    min_ratio: float
    max_ratio: float


@dataclass(frozen=True)
class HorizontalWindow:
    """How far a beam may point left (h < 0) and right (h > 0) at 10 m, mm."""

    left_mm: float
    right_mm: float


@dataclass(frozen=True)
class HeadlampLimits:
    slow_below_kmh: float
    intensity_normal: IntensityRow
    intensity_slow: IntensityRow
    low_beam_m1: HeightWindow
    low_beam_other: HeightWindow
    low_beam_horizontal: HorizontalWindow
    high_beam_m1: HeightWindow
    high_beam_other: HeightWindow
    high_beam_left_lamp: HorizontalWindow
    high_beam_right_lamp: HorizontalWindow


# ---------------------------------------------------------------- emission


@dataclass(frozen=True)
class TwoSpeedIdleSet:
    """GB 18285 limits of one limit set."""

    idle_co_max_pct: float
    idle_hc_max_ppm: float
    high_idle_co_max_pct: float
    high_idle_hc_max_ppm: float
    high_idle_lambda_min: float
    high_idle_lambda_max: float


@dataclass(frozen=True)
class EmissionLimits:
    settle_readings: int
    measure_readings: int
    high_idle_rpm: float
    high_idle_tolerance_rpm: float
    heavy_gross_mass_kg: float
    heavy_high_idle_rpm: float
    heavy_high_idle_tolerance_rpm: float
    idle_min_rpm: float
    idle_max_rpm: float
    two_speed_idle: Mapping[str, TwoSpeedIdleSet]  # by limit set
    measured_accelerations: int
    k_max_per_m: Mapping[str, float]  # by limit set


@dataclass(frozen=True)
class Limits:
    brake: BrakeLimits
    headlamp: HeadlampLimits
    emission: EmissionLimits
    # Where the numbers come from, by table: "brake", "brake.rate", "headlamp.intensity", ...
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def source(self, table: str) -> str | None:
        """The source of the numbers in `table` (a dotted path below the file's
        stem), from the nearest table up that names one."""
        path = table
        while path:
            if path in self.sources:
                return self.sources[path]
            path = path.rpartition(".")[0]
        return None


# ---------------------------------------------------------------- reading


class _Table:
    """One TOML table being read: every read names its key; unread keys are errors."""

    def __init__(
        self,
        file: Path,
        data: dict[str, Any],
        path: str = "",
        sources: dict[str, str] | None = None,
        inherited: str | None = None,
    ) -> None:
        self.file = file
        self.data = data
        self.path = path
        self._read: set[str] = set()
        self.sources = {} if sources is None else sources
        own = data.get("source")
        if own is not None:
            self._read.add("source")
            if not isinstance(own, str) or not own.strip():
                raise self.error("source", f"must be the name of a standard, got {own!r}")
        self.source: str | None = own.strip() if own is not None else inherited
        if own is not None:
            stem = Path(file).stem
            self.sources[f"{stem}.{path}" if path else stem] = self.source

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, message: str) -> LimitsError:
        return LimitsError(self.file, self.key(name), message)

    def _get(self, name: str) -> Any:
        if name not in self.data:
            raise self.error(name, "missing")
        self._read.add(name)
        return self.data[name]

    def table(self, name: str) -> _Table:
        v = self._get(name)
        if not isinstance(v, dict):
            raise self.error(name, f"must be a table, got {_shown(v)}")
        child = _Table(self.file, v, self.key(name), self.sources, self.source)
        if child.source is None:
            raise child.error(
                "source", "missing: the standard these limits come from (printed on reports)"
            )
        return child

    def number(
        self,
        name: str,
        *,
        above: float | None = 0.0,
        at_most: float | None = None,
        at_least: float | None = None,
    ) -> float:
        v = self._get(name)
        if isinstance(v, bool) or not isinstance(v, int | float) or not _finite(v):
            raise self.error(name, f"must be a number, got {_shown(v)}")
        if above is not None and not v > above:
            raise self.error(name, f"must be > {above:g}, got {_shown(v)}")
        if at_least is not None and v < at_least:
            raise self.error(name, f"must be >= {at_least:g}, got {_shown(v)}")
        if at_most is not None and v > at_most:
            raise self.error(name, f"must be <= {at_most:g}, got {_shown(v)}")
        return float(v)

    def pct(self, name: str) -> float:
        return self.number(name, above=0.0, at_most=100.0)

    def count(self, name: str, at_most: int) -> int:
        v = self._get(name)
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= at_most:
            raise self.error(name, f"must be a whole number from 1 to {at_most}, got {_shown(v)}")
        return v

    def done(self) -> None:
        unknown = sorted(set(self.data) - self._read)
        if unknown:
            raise self.error(unknown[0], "unknown key (misspelt?)")


def _finite(v: int | float) -> bool:
    # A TOML integer has no size limit here: one past float's range would make
    # math.isfinite raise OverflowError. No limit is anywhere near 1e15.
    if isinstance(v, int):
        return abs(v) < 10**15
    return math.isfinite(v)


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def _open(dir: Path, name: str, sources: dict[str, str]) -> _Table:
    file = dir / name
    try:
        data = tomlfile.load(file)
    except tomlfile.TomlError as e:
        raise LimitsError(file, None, "limits file not found" if e.missing else str(e)) from None
    return _Table(file, data, sources=sources)


def _ordered(t: _Table, low_name: str, low: float, high_name: str, high: float) -> None:
    if not low < high:
        raise t.error(high_name, f"must be above {t.key(low_name)} ({low:g}), got {high:g}")


def _load_brake(dir: Path, sources: dict[str, str]) -> BrakeLimits:
    root = _open(dir, "brake.toml", sources)
    g = root.number("g_m_s2")

    timing = root.table("timing")
    start = timing.number("drag_window_start_s", above=None, at_least=0.0)
    end = timing.number("drag_window_end_s")
    _ordered(timing, "drag_window_start_s", start, "drag_window_end_s", end)
    phase = timing.number("brake_phase_start_s")
    if phase < end:
        raise timing.error(
            "brake_phase_start_s",
            f"must not be before drag_window_end_s ({end:g}): the brake is applied after the drag window",
        )
    timing.done()

    drag = root.table("drag")
    drag_max = drag.pct("max_pct_of_wheel_load")
    drag.done()

    rate = root.table("rate")
    group_mass = rate.number("group_gross_mass_kg")
    vehicle_min = rate.pct("vehicle_min_pct")

    def axle_rates(name: str) -> AxleRateLimits:
        t = rate.table(name)
        r = AxleRateLimits(t.pct("front_axle_min_pct"), t.pct("other_axle_min_pct"))
        t.done()
        return r

    light, bus, heavy = axle_rates("light"), axle_rates("bus"), axle_rates("heavy")
    rate.done()

    imb = root.table("imbalance")
    branch = imb.pct("branch_rate_pct")

    def imbalance(name: str) -> ImbalanceLimits:
        t = imb.table(name)
        r = ImbalanceLimits(
            t.pct("front_axle_max_pct"),
            t.pct("other_axle_max_pct"),
            t.pct("other_axle_low_rate_max_pct"),
        )
        t.done()
        return r

    imbalance_limits = ByColumn(imbalance("new"), imbalance("periodic"))
    imb.done()

    park = root.table("parking")
    park_min = park.pct("min_pct")
    park_reduced = park.pct("reduced_min_pct")
    factor = park.number("reduced_below_gross_to_curb", above=1.0)
    park.done()
    root.done()
    return BrakeLimits(
        g_m_s2=g,
        drag_window_start_s=start,
        drag_window_end_s=end,
        brake_phase_start_s=phase,
        drag_max_pct=drag_max,
        group_gross_mass_kg=group_mass,
        vehicle_min_pct=vehicle_min,
        rate_light=light,
        rate_bus=bus,
        rate_heavy=heavy,
        imbalance_branch_rate_pct=branch,
        imbalance=imbalance_limits,
        parking_min_pct=park_min,
        parking_reduced_min_pct=park_reduced,
        parking_reduced_below_gross_to_curb=factor,
    )


def _load_headlamp(dir: Path, sources: dict[str, str]) -> HeadlampLimits:
    root = _open(dir, "headlamp.toml", sources)
    inten = root.table("intensity")
    slow_below = inten.number("slow_below_kmh")

    def row(name: str) -> IntensityRow:
        t = inten.table(name)
        r = IntensityRow(
            ByColumn(t.number("two_lamp_new_cd"), t.number("two_lamp_periodic_cd")),
            ByColumn(t.number("four_lamp_new_cd"), t.number("four_lamp_periodic_cd")),
        )
        t.done()
        return r

    normal, slow = row("normal"), row("slow")
    inten.done()

    pos = root.table("beam_position")

    def window(t: _Table, prefix: str) -> HeightWindow:
        lo = t.number(f"{prefix}_min_ratio")
        hi = t.number(f"{prefix}_max_ratio", at_most=1.0)
        _ordered(t, f"{prefix}_min_ratio", lo, f"{prefix}_max_ratio", hi)
        return HeightWindow(lo, hi)

    def horizontal(t: _Table, prefix: str) -> HorizontalWindow:
        return HorizontalWindow(
            t.number(f"{prefix}left_mm", above=None, at_least=0.0),
            t.number(f"{prefix}right_mm", above=None, at_least=0.0),
        )

    low = pos.table("low_beam")
    low_m1, low_other, low_h = window(low, "m1"), window(low, "other"), horizontal(low, "")
    low.done()
    high = pos.table("high_beam")
    high_m1, high_other = window(high, "m1"), window(high, "other")
    high_left, high_right = horizontal(high, "left_lamp_"), horizontal(high, "right_lamp_")
    high.done()
    pos.done()
    root.done()
    return HeadlampLimits(
        slow_below_kmh=slow_below,
        intensity_normal=normal,
        intensity_slow=slow,
        low_beam_m1=low_m1,
        low_beam_other=low_other,
        low_beam_horizontal=low_h,
        high_beam_m1=high_m1,
        high_beam_other=high_other,
        high_beam_left_lamp=high_left,
        high_beam_right_lamp=high_right,
    )


def _load_emission(dir: Path, sources: dict[str, str]) -> EmissionLimits:
    root = _open(dir, "emission.toml", sources)
    tsi = root.table("two_speed_idle")
    # One reading a second: a phase of more than ten minutes is a typo, and would
    # hold the vehicle on the station for it.
    settle = tsi.count("settle_readings", at_most=600)
    measure = tsi.count("measure_readings", at_most=600)
    high_rpm = tsi.number("high_idle_rpm")
    high_tol = tsi.number("high_idle_tolerance_rpm")
    heavy_mass = tsi.number("heavy_gross_mass_kg")
    heavy_rpm = tsi.number("heavy_high_idle_rpm")
    heavy_tol = tsi.number("heavy_high_idle_tolerance_rpm")
    for rpm_key, rpm, tol_key, tol in (
        ("high_idle_rpm", high_rpm, "high_idle_tolerance_rpm", high_tol),
        ("heavy_high_idle_rpm", heavy_rpm, "heavy_high_idle_tolerance_rpm", heavy_tol),
    ):
        if tol >= rpm:
            raise tsi.error(tol_key, f"must be below {tsi.key(rpm_key)} ({rpm:g}), got {tol:g}")
    idle_min = tsi.number("idle_min_rpm")
    idle_max = tsi.number("idle_max_rpm")
    _ordered(tsi, "idle_min_rpm", idle_min, "idle_max_rpm", idle_max)

    sets: dict[str, TwoSpeedIdleSet] = {}
    for name in LIMIT_SETS:
        t = tsi.table(name)
        lam_min = t.number("high_idle_lambda_min")
        lam_max = t.number("high_idle_lambda_max")
        _ordered(t, "high_idle_lambda_min", lam_min, "high_idle_lambda_max", lam_max)
        sets[name] = TwoSpeedIdleSet(
            idle_co_max_pct=t.pct("idle_co_max_pct"),
            idle_hc_max_ppm=t.number("idle_hc_max_ppm"),
            high_idle_co_max_pct=t.pct("high_idle_co_max_pct"),
            high_idle_hc_max_ppm=t.number("high_idle_hc_max_ppm"),
            high_idle_lambda_min=lam_min,
            high_idle_lambda_max=lam_max,
        )
        t.done()
    tsi.done()

    fa = root.table("free_acceleration")
    measured = fa.count("measured_accelerations", at_most=10)
    k_max: dict[str, float] = {}
    for name in LIMIT_SETS:
        t = fa.table(name)
        k_max[name] = t.number("k_max_per_m")
        t.done()
    fa.done()
    root.done()
    return EmissionLimits(
        settle_readings=settle,
        measure_readings=measure,
        high_idle_rpm=high_rpm,
        high_idle_tolerance_rpm=high_tol,
        heavy_gross_mass_kg=heavy_mass,
        heavy_high_idle_rpm=heavy_rpm,
        heavy_high_idle_tolerance_rpm=heavy_tol,
        idle_min_rpm=idle_min,
        idle_max_rpm=idle_max,
        two_speed_idle=MappingProxyType(sets),
        measured_accelerations=measured,
        k_max_per_m=MappingProxyType(k_max),
    )


def load_limits(dir: str | Path) -> Limits:
    """Read and validate brake.toml, headlamp.toml and emission.toml from `dir`."""
    d = Path(dir)
    if "\0" in str(d) or not d.is_dir():
        raise LimitsError(d, None, "limits folder not found")
    sources: dict[str, str] = {}
    return Limits(
        brake=_load_brake(d, sources),
        headlamp=_load_headlamp(d, sources),
        emission=_load_emission(d, sources),
        sources=MappingProxyType(sources),
    )
