"""Assignment policies: when a call is drawn, and among which drivers and vehicles.

Drawing a driver among the idle ones when a vehicle is called gives no
choice at all when one driver is idle, which on a busy line is most of the
time: the vehicle goes to whoever got back first, and a driver who wants a
particular car only has to time his return (README, "Threat model"). A
policy widens the draw along two axes:

- `window` (k): the vehicle is drawn among the first k of the queue, not
  taken from its head, so a driver who times his return for one car gets it
  only by luck. So that an owner's place slips by at most k - 1, a vehicle
  already overtaken k - 1 times closes the window behind it (`eligible`).
- `min_idle` (m) and `hold_s` (T): a call waits, with the first station free
  and a vehicle waiting, until at least m drivers are idle (or all on duty,
  when fewer), but never longer than T clock seconds.

The draw itself is uniform over (idle driver, window vehicle) pairs, from
the CSPRNG; its choice in bits is log2(drivers x vehicles). Nothing here, nor
in any config or command, names a driver: a policy only says how many.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

PolicyName = Literal["idle", "window", "hold", "joint"]


@dataclass(frozen=True)
class AssignmentPolicy:
    name: str
    window: int = 1  # k: the vehicle is drawn among the first k queued
    min_idle: int = 1  # m: a call waits for this many idle drivers ...
    hold_s: float = 0.0  # T: ... for at most this many clock seconds

    def __post_init__(self) -> None:
        if self.window < 1 or self.min_idle < 1 or self.hold_s < 0:
            raise ValueError(f"policy {self.name}: window and min_idle >= 1, hold_s >= 0")

    def ready(self, idle: int, on_duty: int, held_s: float) -> bool:
        """May the call be drawn now, `held_s` after it began, with `idle` of `on_duty`?"""
        if idle < 1:
            return False
        return idle >= min(self.min_idle, max(on_duty, 1)) or held_s >= self.hold_s

    def label(self) -> str:
        parts = [self.name]
        if self.window > 1:
            parts.append(f"k={self.window}")
        if self.min_idle > 1:
            parts.append(f"m={self.min_idle} T={self.hold_s:g}s")
        return " ".join(parts)


# The named policies. `idle` is the draw as it was before issue 15. The
# defaults of the others are those benchmarks/assignment.py measured best.
POLICIES: dict[str, AssignmentPolicy] = {
    "idle": AssignmentPolicy("idle"),
    "window": AssignmentPolicy("window", window=3),
    "hold": AssignmentPolicy("hold", min_idle=2, hold_s=60.0),
    "joint": AssignmentPolicy("joint", window=3, min_idle=2, hold_s=60.0),
}
DEFAULT_POLICY: PolicyName = "joint"


def policy(
    name: str,
    *,
    window: int | None = None,
    min_idle: int | None = None,
    hold_s: float | None = None,
) -> AssignmentPolicy:
    """The named policy, with any of its parameters overridden."""
    if name not in POLICIES:
        raise ValueError(f"unknown assignment policy {name!r} (one of {', '.join(POLICIES)})")
    base = POLICIES[name]
    return AssignmentPolicy(
        name,
        window=base.window if window is None else window,
        min_idle=base.min_idle if min_idle is None else min_idle,
        hold_s=base.hold_s if hold_s is None else hold_s,
    )


def eligible(overtaken: Sequence[int], window: int) -> int:
    """How many of the first queued vehicles a call may be drawn among.

    `overtaken[i]`: how many vehicles registered after the i-th queued one were
    called before it. The first `window`, cut just after the first vehicle that
    has been overtaken window - 1 times already: no one is overtaken more often."""
    n = min(window, len(overtaken))
    for i in range(n):
        if overtaken[i] >= window - 1:
            return i + 1
    return n


def overtaken_in(inspection_id: str, draws: Iterable[tuple[str, Sequence[str] | None]]) -> int:
    """How often a queued vehicle was overtaken, from the draw record: `draws` are
    (drawn inspection, the window it was drawn among) in order. Counted since its
    own last draw (a retest queues the same inspection again), so a restart that
    puts it back in the queue keeps its count."""
    n = 0
    for drawn, window in draws:
        if drawn == inspection_id:
            n = 0
        elif window and inspection_id in window and drawn in window:
            n += int(list(window).index(inspection_id) < list(window).index(drawn))
    return n


Choose = Callable[[Sequence[str]], str]


def csprng_choice(candidates: Sequence[str]) -> str:
    return secrets.choice(candidates)


def draw_pair(
    drivers: Sequence[str], vehicles: Sequence[str], choose: Choose = csprng_choice
) -> tuple[str, str]:
    """A (driver, vehicle) pair, uniform over all pairs: two independent uniform draws
    (the vehicle's only when there is a choice, so a seeded `choose` in tests gives
    the same drivers as before windows existed)."""
    if not drivers or not vehicles:
        raise ValueError("a draw needs at least one driver and one vehicle")
    driver = choose(drivers)
    return driver, choose(vehicles) if len(vehicles) > 1 else vehicles[0]


def bits(drivers: int, vehicles: int = 1) -> float:
    """The choice a draw among `drivers` x `vehicles` equally likely pairs carried."""
    return math.log2(max(drivers, 1) * max(vehicles, 1))
