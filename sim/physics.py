"""Brake physics of a simulated axle on the rollers.

Each wheel is a brake that, with the pedal released, leaves a residual drag,
and, once the driver applies the pedal, builds force along a first-order rise
towards the brake's capacity. The tyre grips the roller only up to
mu * wheel load * g: when the demanded force passes that, the wheel slips,
the third roller sees it and the tester stops. On top ride measurement noise
and the roller's once-per-revolution ripple, drawn with numpy from a
per-axle generator so a vehicle's curves are reproducible from its seed.

The brake tester emulator asks `AxleOnRollersModel.sample(t)` for each sample
it takes; the simulated driver calls `apply()` / `release()` as the guide
display tells them to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

G = 9.8  # m/s^2, as standards.md


@dataclass(frozen=True)
class WheelBrake:
    """One wheel: its static load and what its brakes can do."""

    load_kg: float
    service_capacity_n: float  # force the service brake reaches at full pedal
    parking_capacity_n: float  # force the parking brake reaches (0: no parking brake here)
    drag_n: float  # residual force with the brake released
    mu: float = 0.8  # tyre-roller adhesion; slip beyond mu * load * g
    rise_tau_s: float = 0.45  # first-order time constant of the pressure build-up
    dead_time_s: float = 0.15  # pedal travel before force starts to build

    @property
    def grip_n(self) -> float:
        return self.mu * self.load_kg * G

    def max_force_n(self, parking: bool = False) -> float:
        """The highest force the rollers can see: capacity or grip, whichever is lower."""
        cap = self.parking_capacity_n if parking else self.service_capacity_n
        return min(cap + self.drag_n, self.grip_n)


@dataclass(frozen=True)
class AxleBrakes:
    number: int  # 1 = front
    left: WheelBrake
    right: WheelBrake

    @property
    def load_kg(self) -> float:
        return self.left.load_kg + self.right.load_kg


class AxleOnRollersModel:
    """An axle standing on the rollers: what the brake tester emulator samples.

    Satisfies sim.rbt.AxleOnRollers. `t` is absolute clock time throughout.
    """

    ROLLER_HZ = 2.6  # roller revolutions per second: the ripple frequency
    NOISE_REL = 0.012  # relative noise on the brake force
    NOISE_ABS_N = 6.0  # noise floor of the force sensors

    def __init__(self, axle: AxleBrakes, seed: int) -> None:
        self.axle = axle
        self.left_load_kg = axle.left.load_kg
        self.right_load_kg = axle.right.load_kg
        self._rng = np.random.default_rng(seed)
        self._applied_at: float | None = None
        self._parking = False
        self._phase = self._rng.uniform(0, 2 * math.pi, size=2)
        self._noise = self._rng.standard_normal((4096, 2))
        self._noise_i = 0

    @property
    def applied(self) -> bool:
        return self._applied_at is not None

    def apply(self, t: float, parking: bool = False) -> None:
        """The driver presses the pedal (or pulls the parking brake) at clock time t."""
        if self._applied_at is None:
            self._applied_at = t
            self._parking = parking

    def release(self) -> None:
        self._applied_at = None
        self._parking = False

    def _wheel(self, w: WheelBrake, side: int, t: float) -> tuple[float, bool]:
        demand = w.drag_n
        if self._applied_at is not None:
            cap = w.parking_capacity_n if self._parking else w.service_capacity_n
            dt = t - self._applied_at - w.dead_time_s
            if dt > 0:
                demand += cap * (1.0 - math.exp(-dt / w.rise_tau_s))
        slips = demand > w.grip_n
        force = min(demand, w.grip_n)
        ripple = 0.004 * force * math.sin(2 * math.pi * self.ROLLER_HZ * t + self._phase[side])
        noise = self._noise[self._noise_i % len(self._noise), side]
        force += ripple + noise * (self.NOISE_REL * force + self.NOISE_ABS_N)
        return max(0.0, force), slips

    def sample(self, t: float) -> tuple[float, float, bool, bool]:
        self._noise_i += 1
        left, slip_l = self._wheel(self.axle.left, 0, t)
        right, slip_r = self._wheel(self.axle.right, 1, t)
        return left, right, slip_l, slip_r
