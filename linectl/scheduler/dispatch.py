"""Which line a new registration goes to.

Among the lines that have a station for every item the vehicle needs (a
diesel needs an opacimeter, a petrol car a gas analyser), the one expected
to finish it first: the work already waiting in its queue and on its
stations, divided by its throughput, plus its own time through the line.
Station times are learned from what the lines have measured (after their
warm-up); a line that has not measured a station kind yet borrows the other
lines' figure for it, so two alike lines are compared alike, and until no
line has one, a nominal time per station kind stands in. A line whose
station the vehicle needs is in maintenance comes after every line that can
measure it now (it would hold the vehicle in its queue until the station is back).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from linectl.items import STATION_OF_ITEM
from linectl.vehicle import InvalidField, Vehicle

# Nominal clock seconds a vehicle holds a station, before the line has measured its own.
NOMINAL_SERVICE_S = {"brake": 75.0, "headlamp": 50.0, "emission": 130.0}

# Which device model a station needs to measure a vehicle of a given fuel.
EMISSION_MODEL = {"petrol": "nha503", "hybrid": "nha503", "gas": "nha503", "diesel": "nht6"}


class LineView(Protocol):
    id: str

    def station_kinds(self) -> list[str]: ...
    def device_models(self) -> set[str]: ...
    def mean_service_s(self, kind: str) -> float | None: ...
    def queue_length(self) -> int: ...
    def in_line(self) -> int: ...
    def kinds_in_maintenance(self) -> set[str]: ...


def missing_for(line: LineView, vehicle: Vehicle, items: Sequence[str]) -> list[str]:
    """What this line lacks to measure `items` of `vehicle` (empty: it can)."""
    kinds = set(line.station_kinds())
    missing = sorted({STATION_OF_ITEM[c] for c in items} - kinds)
    if "EX" in items and "emission" in kinds:
        model = EMISSION_MODEL.get(str(vehicle.fuel))
        if model and model not in line.device_models():
            missing.append(f"emission instrument {model}")
    return missing


def service_s(line: LineView, kind: str, lines: Sequence[LineView] = ()) -> float:
    """The service time to plan with for `line`'s station of `kind`."""
    own = line.mean_service_s(kind)
    if own is not None:
        return own
    others = [x for ln in lines if kind in ln.station_kinds() and (x := ln.mean_service_s(kind))]
    if others:
        return sum(others) / len(others)
    return NOMINAL_SERVICE_S.get(kind, 60.0)


def expected_finish_s(line: LineView, lines: Sequence[LineView] = ()) -> float:
    """Clock seconds until a vehicle registered now would leave this line."""
    service = [service_s(line, k, lines) for k in line.station_kinds()]
    bottleneck = max(service)
    ahead = line.queue_length() + line.in_line()
    return ahead * bottleneck + sum(service)


def choose_line(lines: Sequence[LineView], vehicle: Vehicle, items: Sequence[str]) -> LineView:
    able = [ln for ln in lines if not missing_for(ln, vehicle, items)]
    if not able:
        reasons = "; ".join(
            f"{ln.id} lacks {', '.join(missing_for(ln, vehicle, items))}" for ln in lines
        )
        raise InvalidField(
            "no_line", "items", f"no line of this site can measure these items ({reasons})"
        )
    # Ties go to the line listed first, so a quiet site fills its lines in order.
    order = [x.id for x in lines]
    kinds = {STATION_OF_ITEM[c] for c in items}

    def held(ln: LineView) -> bool:
        return bool(kinds & ln.kinds_in_maintenance())

    return min(able, key=lambda ln: (held(ln), expected_finish_s(ln, lines), order.index(ln.id)))
