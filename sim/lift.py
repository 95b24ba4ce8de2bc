"""The brake tester's lift, as it moves (devices.md section 1, "The lift").

LIFT_UP and LIFT_DOWN start it moving at a steady speed: `travel_s` from one
end to the other (about 1 s, up to 3 s); a command mid-travel turns it round
from where it is. Input 4 (LIFT_UP) is latched: it changes only when the lift
arrives at an end, so on its way down it still reads 1. A jammed lift
(`stuck`) stays where it is and takes no command until freed. Time is the
caller's: `advance(dt)` moves it on.
"""

from __future__ import annotations


class Lift:
    def __init__(self, travel_s: float, up: bool = False) -> None:
        if not travel_s > 0:
            raise ValueError(f"lift travel must take some time, got {travel_s}")
        self.travel_s = travel_s
        self.stuck = False
        self.position = 1.0 if up else 0.0  # 0 down .. 1 up
        self.target = self.position
        self.input = up  # input 4: the end it last arrived at was the top

    @property
    def is_up(self) -> bool:
        return self.position == 1.0

    @property
    def is_down(self) -> bool:
        return self.position == 0.0

    @property
    def moving(self) -> bool:
        return self.position != self.target

    def command(self, up: bool) -> bool:
        """Start it towards an end; whether it will move (a jammed lift does not)."""
        if self.stuck:
            return False
        self.target = 1.0 if up else 0.0
        return self.moving

    def advance(self, dt: float) -> None:
        if self.stuck or dt <= 0 or not self.moving:
            return
        step = dt / self.travel_s
        if self.target > self.position:
            self.position = min(self.target, self.position + step)
        else:
            self.position = max(self.target, self.position - step)
        if self.position in (0.0, 1.0):
            self.input = self.position == 1.0

    def describe(self) -> str:
        where = f"at {100 * self.position:.0f} % of its travel"
        return f"{'travelling' if self.moving else 'standing'} {where}"


__all__ = ["Lift"]
