"""The simulator as a protocol referee: what a line computer did out of order.

A real instrument tolerates a great deal without saying so: it ignores a
command while busy, answers "busy" or "refused", weighs an axle that partly
rests on the lift, lets a driver roll off the rollers with the lift down.
A line computer that relies on any of that works on the bench and fails on
a site. So every emulator and the simulated world report such things to a
`Referee`: each one is logged as a warning and counted, by kind. The demo
prints the count; end-to-end tests assert it is zero.

One referee serves a whole simulated site (`SimSite.referee`); an emulator
built on its own gets one of its own, which a test can read or replace.
The faults a test injects on purpose (a stuck lift, a head that never
arrives) are not violations: only what the line computer did is.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Violation:
    at: float  # clock time
    device: str  # which instrument (or station) saw it
    kind: str  # short key, e.g. "weigh_lift_not_down"
    detail: str  # one line for people


class Referee:
    """Counts and logs every protocol violation the simulator sees."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def note(self, at: float, device: str, kind: str, detail: str) -> None:
        v = Violation(at, device, kind, detail)
        self.violations.append(v)
        log.warning("sim referee: %s: %s (violation %d)", device, detail, len(self.violations))

    @property
    def count(self) -> int:
        return len(self.violations)

    def by_kind(self) -> dict[str, int]:
        return dict(Counter(v.kind for v in self.violations))

    def kinds(self) -> set[str]:
        return {v.kind for v in self.violations}

    def clear(self) -> None:
        self.violations.clear()

    def __repr__(self) -> str:
        return f"Referee({self.count} violations: {self.by_kind()})"


__all__ = ["Referee", "Violation"]
