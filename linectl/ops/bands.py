"""The limit bands a station's live values are drawn against (the console's level 3).

Read from the site's limit files (linectl.stations.limits) with the site's
limit set, never written here: for exhaust gas the CO and HC maxima of each
idle phase, for smoke the light absorption maximum, for headlamps the
minimum high-beam intensity and the low beam's horizontal window, for
brakes the minimum axle rates and the largest imbalance (judged on the axle
load, so shown as figures beside the live forces, not as a line on them).
Each band carries the standard it comes from.

`bands(...)["live"]` is what the page's script draws; `rows` the table
beside it (label msgid, value, unit msgid, source).
"""

from __future__ import annotations

from typing import Any

from linectl.i18n import N_
from linectl.stations.limits import Limits
from linectl.vehicle import InspectionType

Row = tuple[str, float, str, str | None]


def bands(limits: Limits, kind: str, limit_set: str) -> dict[str, Any]:
    periodic = InspectionType.PERIODIC
    if kind == "emission":
        tsi = limits.emission.two_speed_idle[limit_set]
        src = limits.source(f"emission.two_speed_idle.{limit_set}")
        ksrc = limits.source("emission.free_acceleration")
        k_max = limits.emission.k_max_per_m[limit_set]
        rows: list[Row] = [
            (N_("CO at idle, at most"), tsi.idle_co_max_pct, N_("% vol"), src),
            (N_("HC at idle, at most"), tsi.idle_hc_max_ppm, N_("ppm"), src),
            (N_("CO at high idle, at most"), tsi.high_idle_co_max_pct, N_("% vol"), src),
            (N_("HC at high idle, at most"), tsi.high_idle_hc_max_ppm, N_("ppm"), src),
            (N_("Light absorption k, at most"), k_max, N_("m⁻¹"), ksrc),
        ]
        live = {
            "co": {"idle": tsi.idle_co_max_pct, "high_idle": tsi.high_idle_co_max_pct},
            "hc": {"idle": tsi.idle_hc_max_ppm, "high_idle": tsi.high_idle_hc_max_ppm},
            "k": k_max,
        }
        return {"rows": rows, "live": live, "limit_set": limit_set}
    if kind == "headlamp":
        h = limits.headlamp
        src = limits.source("headlamp")
        two = h.intensity_normal.two_lamp.of(periodic)
        four = h.intensity_normal.four_lamp.of(periodic)
        win = h.low_beam_horizontal
        rows = [
            (N_("High-beam intensity, two-lamp system, at least"), two, N_("cd"), src),
            (N_("High-beam intensity, four-lamp system, at least"), four, N_("cd"), src),
            (N_("Low beam, left of straight ahead at 10 m, at most"), win.left_mm, N_("mm"), src),
            (N_("Low beam, right of straight ahead at 10 m, at most"), win.right_mm, N_("mm"), src),
        ]
        live = {"intensity_min": min(two, four), "h_mm": [-win.left_mm, win.right_mm]}
        return {"rows": rows, "live": live, "limit_set": None}
    if kind == "brake":
        b = limits.brake
        src = limits.source("brake")
        imb = b.imbalance.of(periodic)
        rows = [
            (N_("Front axle braking rate, at least"), b.rate_light.front_axle_min_pct, "%", src),
            (N_("Other axle braking rate, at least"), b.rate_light.other_axle_min_pct, "%", src),
            (N_("Front axle imbalance, at most"), imb.front_axle_max_pct, "%", src),
            (N_("Other axle imbalance, at most"), imb.other_axle_max_pct, "%", src),
            (N_("Whole-vehicle braking rate, at least"), b.vehicle_min_pct, "%", src),
            (N_("Parking braking rate, at least"), b.parking_min_pct, "%", src),
        ]
        live = {"imbalance_max_pct": max(imb.front_axle_max_pct, imb.other_axle_max_pct)}
        return {"rows": rows, "live": live, "limit_set": None}
    return {"rows": [], "live": {}, "limit_set": None}
