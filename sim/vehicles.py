"""Simulated vehicles: a registrable description plus the physics behind it.

A `SimVehicle` is what the registry would send (a `Vehicle`) and what the
instruments will measure (brake capacities per wheel, and later lamps and
exhaust), with the faults it was built with. Faults are sized well clear of
the limits so a correct station gives one unambiguous verdict per item, and
`expected_items()` says which items each fault must fail (or leave not
judged), including the whole-vehicle BT it drags down, worked out from the
noiseless brake model. The population generator uses a seeded
`random.Random`: the simulator must be reproducible. (The daemon's proxy
driver draw is never seeded; that lives in linectl.scheduler.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from linectl.vehicle import Fuel, Vehicle, vin_check_digit
from sim.exhaust import (
    EXHAUST_FAULTS,
    apply_exhaust_fault,
    exhaust_fault_fits,
    expected_exhaust_items,
    make_exhaust,
)
from sim.lamps import LAMP_FAULTS, apply_lamp_fault, expected_lamp_items, lamp_names, make_lamps
from sim.physics import AxleBrakes, G, WheelBrake

BRAKE_FAULTS = (
    "weak_axle",
    "imbalanced_axle",
    "dragging_wheel",
    "locking_wheel",
    "weak_parking_brake",
)
ALL_FAULTS = (*BRAKE_FAULTS, *LAMP_FAULTS, *EXHAUST_FAULTS)

# Design points of the model, as fractions of the wheel's own weight force.
FRONT_CAPACITY = 0.95  # front brakes exceed grip: the wheels slip at about mu
REAR_CAPACITY = 0.62  # rear brakes plateau below grip
HEAVY_OTHER_CAPACITY = 0.72
PARKING_SHARE = 0.28  # parking force sum as a fraction of the vehicle weight
BT_LIMIT = 0.60  # whole-vehicle rate limit: used only to keep designs clear of it
BT_MARGIN = 0.04


@dataclass(frozen=True)
class SimFault:
    kind: str
    axle: int | None = None
    side: str | None = None  # "left" / "right" for single-wheel faults
    lamp: str | None = None  # L, LI, RI, R for lamp faults

    def label(self) -> str:
        where = f":{self.axle}" if self.axle is not None else ""
        if self.lamp:
            where = f":{self.lamp}"
        side = f"{self.side[0].upper()}" if self.side else ""
        return f"{self.kind}{where}{side}"


@dataclass
class SimVehicle:
    vehicle: Vehicle
    axles: list[AxleBrakes]
    faults: list[SimFault] = field(default_factory=list)
    seed: int = 0
    # Per-station physical traits added by other station kinds (lamps, exhaust, ...).
    traits: dict[str, Any] = field(default_factory=dict)

    @property
    def plate(self) -> str:
        return self.vehicle.plate

    def fault_labels(self) -> list[str]:
        return [f.label() for f in self.faults]

    def axle(self, n: int) -> AxleBrakes:
        return self.axles[n - 1]

    def expected_items(
        self, inspection_type: str = "periodic", beam_position: str = "record"
    ) -> dict[str, str]:
        """Items this vehicle's faults must not pass: code -> "fail" / "not_judged".
        A misaimed lamp fails only where beam position is judged (site config)."""
        out: dict[str, str] = {}
        for f in self.faults:
            if f.kind in ("weak_axle", "imbalanced_axle", "dragging_wheel"):
                out[f"B{f.axle}"] = "fail"
            elif f.kind == "locking_wheel":
                out[f"B{f.axle}"] = "not_judged"
            elif f.kind == "weak_parking_brake":
                out["B0"] = "fail"
        bt = nominal_bt(self)
        if bt < BT_LIMIT:
            locked = any(f.kind == "locking_wheel" for f in self.faults)
            out["BT"] = "not_judged" if locked else "fail"
        out |= expected_lamp_items(self.vehicle, self.faults, inspection_type, beam_position)
        out |= expected_exhaust_items(self.faults)
        return out


# --- the noiseless model, for expectations -------------------------------------------

APPLY_AT_S = 2.3  # APPLY_BRAKE at 2.0 s plus a typical reaction
MAX_TEST_S = 8.0


def _demand(w: WheelBrake, t: np.ndarray, parking: bool) -> np.ndarray:
    cap = w.parking_capacity_n if parking else w.service_capacity_n
    dt = np.clip(t - APPLY_AT_S - w.dead_time_s, 0.0, None)
    return w.drag_n + cap * (1.0 - np.exp(-dt / w.rise_tau_s))


def nominal_run(axle: AxleBrakes, parking: bool = False) -> tuple[float, float, bool]:
    """Max left/right force (N) of a noiseless run, and whether a wheel locked first."""
    t = np.arange(0.0, MAX_TEST_S, 0.01)
    left, right = _demand(axle.left, t, parking), _demand(axle.right, t, parking)
    slip = (left > axle.left.grip_n) | (right > axle.right.grip_n)
    end = int(np.argmax(slip)) if slip.any() else len(t) - 1
    sl = slice(int(1.5 / 0.01), end + 1)
    return (
        float(np.minimum(left[sl], axle.left.grip_n).max()),
        float(np.minimum(right[sl], axle.right.grip_n).max()),
        bool(slip.any()),
    )


def nominal_bt(v: SimVehicle) -> float:
    total_force = sum(sum(nominal_run(a)[:2]) for a in v.axles)
    return total_force / (sum(a.load_kg for a in v.axles) * G)


# --- building vehicles ----------------------------------------------------------------

_WMI = ("LSV", "LFV", "LGB", "LVS", "LBV", "LHG", "LDC", "LZW")
_VIN_CHARS = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青川宁琼"
_PLATE_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"


def make_vin(rng: random.Random) -> str:
    body = rng.choice(_WMI) + "".join(rng.choice(_VIN_CHARS) for _ in range(5))
    tail = (
        rng.choice("LMNPRST")
        + rng.choice("ABCDEFGH")
        + "".join(rng.choice("0123456789") for _ in range(6))
    )
    vin = body + "0" + tail
    return vin[:8] + vin_check_digit(vin) + vin[9:]


def make_plate(rng: random.Random, fuel: Fuel) -> str:
    head = rng.choice(_PROVINCES) + rng.choice("ABCDEFGHJKLMN")
    if fuel is Fuel.ELECTRIC:  # new-energy small-car plate: D + 5
        return (
            head + "D" + rng.choice(_PLATE_CHARS.replace("Q", "")) + f"{rng.randrange(10000):04d}"
        )
    return head + "".join(rng.choice(_PLATE_CHARS.replace("Q", "")) for _ in range(5))


def _wheel(
    rng: random.Random,
    load_kg: float,
    capacity: float,
    parking_n: float,
    axle_tau_s: float,
    mu: float = 0.8,
) -> WheelBrake:
    w = load_kg * G
    return WheelBrake(
        load_kg=load_kg,
        service_capacity_n=capacity * w * rng.uniform(0.97, 1.03),
        parking_capacity_n=parking_n * rng.uniform(0.97, 1.03),
        drag_n=w * rng.uniform(0.015, 0.04),
        mu=mu * rng.uniform(0.98, 1.02),
        # Both wheels of an axle hang on one brake circuit: nearly the same rise.
        rise_tau_s=axle_tau_s * rng.uniform(0.97, 1.03),
    )


def _axle_loads(v: Vehicle, rng: random.Random) -> list[float]:
    if v.axles == 2:
        front = rng.uniform(0.56, 0.62) if v.vehicle_class in ("M1", "N1") else 0.38
        shares = [front, 1.0 - front]
    else:
        front = 0.30
        shares = [front] + [(1.0 - front) / (v.axles - 1)] * (v.axles - 1)
    return [v.curb_mass_kg * s for s in shares]


def build_brakes(v: Vehicle, rng: random.Random) -> list[AxleBrakes]:
    loads = _axle_loads(v, rng)
    heavy = v.vehicle_class not in ("M1",) and v.gross_mass_kg > 3500
    weight_n = v.curb_mass_kg * G
    per_wheel_parking = PARKING_SHARE * weight_n / (2 * max(1, len(v.parking_axles)))
    axles = []
    for n, load in enumerate(loads, start=1):
        cap = FRONT_CAPACITY if n == 1 else (HEAVY_OTHER_CAPACITY if heavy else REAR_CAPACITY)
        pk = per_wheel_parking if n in v.parking_axles else 0.0
        side = rng.uniform(-0.02, 0.02)
        tau = rng.uniform(0.35, 0.6)
        axles.append(
            AxleBrakes(
                n,
                _wheel(rng, load / 2 * (1 + side), cap, pk, tau),
                _wheel(rng, load / 2 * (1 - side), cap, pk, tau),
            )
        )
    return axles


def _replace_wheel(axle: AxleBrakes, side: str, **changes: float) -> AxleBrakes:
    from dataclasses import replace

    if side == "left":
        return AxleBrakes(axle.number, replace(axle.left, **changes), axle.right)
    return AxleBrakes(axle.number, axle.left, replace(axle.right, **changes))


def make_traits(v: Vehicle, seed: int) -> dict[str, Any]:
    """The lamps and exhaust of a vehicle; their own generator, so adding them
    leaves the brake designs drawn from the population's generator as they were."""
    rng = random.Random(seed ^ 0x1A4D5E)
    return {"lamps": make_lamps(v, rng), "exhaust": make_exhaust(v, rng)}


def fault_fits(kind: str, v: Vehicle) -> bool:
    if kind in EXHAUST_FAULTS:
        return exhaust_fault_fits(kind, v)
    return True


def apply_fault(sv: SimVehicle, fault: SimFault) -> None:
    """Change the vehicle's physics so that it shows `fault`."""
    from dataclasses import replace

    if fault.kind in LAMP_FAULTS or fault.kind in EXHAUST_FAULTS:
        if not sv.traits:
            sv.traits.update(make_traits(sv.vehicle, sv.seed))
        rng = random.Random(f"{sv.seed}:{fault.label()}")
        if fault.kind in LAMP_FAULTS:
            assert fault.lamp is not None
            sv.traits["lamps"] = apply_lamp_fault(
                sv.traits["lamps"], sv.vehicle, fault.kind, fault.lamp, rng
            )
        else:
            if not exhaust_fault_fits(fault.kind, sv.vehicle):
                raise ValueError(f"{fault.kind} does not fit a {sv.vehicle.fuel} vehicle")
            sv.traits["exhaust"] = apply_exhaust_fault(sv.traits["exhaust"], fault.kind, rng)
        sv.faults.append(fault)
        return
    if fault.kind == "weak_parking_brake":
        weight_n = sum(a.load_kg for a in sv.axles) * G
        per_wheel = 0.10 * weight_n / (2 * len(sv.vehicle.parking_axles))
        for i, a in enumerate(sv.axles):
            if a.number in sv.vehicle.parking_axles:
                sv.axles[i] = AxleBrakes(
                    a.number,
                    replace(a.left, parking_capacity_n=per_wheel),
                    replace(a.right, parking_capacity_n=per_wheel),
                )
        sv.faults.append(fault)
        return
    assert fault.axle is not None
    i = fault.axle - 1
    a = sv.axles[i]
    if fault.kind == "weak_axle":
        frac = 0.35 if a.number == 1 else 0.10
        sv.axles[i] = AxleBrakes(
            a.number,
            replace(a.left, service_capacity_n=frac * a.left.load_kg * G),
            replace(a.right, service_capacity_n=frac * a.right.load_kg * G),
        )
    elif fault.kind == "imbalanced_axle":
        w = a.right if fault.side == "right" else a.left
        sv.axles[i] = _replace_wheel(
            a, fault.side or "left", service_capacity_n=0.45 * w.service_capacity_n
        )
    elif fault.kind == "dragging_wheel":
        w = a.right if fault.side == "right" else a.left
        sv.axles[i] = _replace_wheel(a, fault.side or "left", drag_n=0.17 * w.load_kg * G)
    elif fault.kind == "locking_wheel":
        sv.axles[i] = _replace_wheel(a, fault.side or "left", mu=0.28)
    else:
        raise ValueError(f"unknown brake fault {fault.kind!r}")
    sv.faults.append(fault)


def _fault_for(kind: str, v: Vehicle, rng: random.Random) -> SimFault:
    side = rng.choice(("left", "right"))
    if kind == "weak_axle":
        return SimFault(kind, rng.randint(1, v.axles))
    if kind == "imbalanced_axle":
        # A rear axle: its rate stays below 60 %, where imbalance is judged against
        # the axle load and the fault cannot hide behind a slipping front wheel.
        return SimFault(kind, rng.randint(2, v.axles), side)
    if kind == "dragging_wheel":
        return SimFault(kind, rng.randint(1, v.axles), side)
    if kind == "locking_wheel":
        return SimFault(kind, 1, side)  # on the front axle it locks before 60 %
    if kind in LAMP_FAULTS:
        return SimFault(kind, lamp=rng.choice(lamp_names(v)))
    return SimFault(kind)


def random_vehicle_description(rng: random.Random) -> Vehicle:
    r = rng.random()
    if r < 0.80:
        fuel = rng.choices(
            [Fuel.PETROL, Fuel.DIESEL, Fuel.HYBRID, Fuel.ELECTRIC, Fuel.GAS], [55, 12, 10, 18, 5]
        )[0]
        curb = rng.randrange(1100, 1850, 10)
        return Vehicle(
            vin=make_vin(rng),
            plate=make_plate(rng, fuel),
            vehicle_class="M1",
            fuel=fuel,
            axles=2,
            parking_axles=(2,),
            curb_mass_kg=curb,
            gross_mass_kg=curb + rng.randrange(350, 520, 10),
            headlamp_system=4 if rng.random() < 0.2 else 2,
            max_design_speed_kmh=rng.choice((160, 170, 180, 190, 200)),
            registration_date=f"{rng.randint(2012, 2024)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        )
    if r < 0.95:
        fuel = rng.choice([Fuel.DIESEL, Fuel.DIESEL, Fuel.PETROL])
        curb = rng.randrange(1600, 2200, 10)
        return Vehicle(
            vin=make_vin(rng),
            plate=make_plate(rng, fuel),
            vehicle_class="N1",
            fuel=fuel,
            axles=2,
            parking_axles=(2,),
            curb_mass_kg=curb,
            gross_mass_kg=min(3500, curb + rng.randrange(900, 1400, 10)),
            headlamp_system=2,
            max_design_speed_kmh=rng.choice((120, 130, 140)),
        )
    curb = rng.randrange(7000, 9000, 50)
    return Vehicle(
        vin=make_vin(rng),
        plate=make_plate(rng, Fuel.DIESEL),
        vehicle_class="N3",
        fuel=Fuel.DIESEL,
        axles=3,
        parking_axles=(2, 3),
        curb_mass_kg=curb,
        gross_mass_kg=curb + rng.randrange(8000, 16000, 100),
        headlamp_system=2,
        max_design_speed_kmh=90,
    )


class Population:
    """A reproducible stream of simulated vehicles with a mix of faults."""

    def __init__(
        self, seed: int = 1, fault_rate: float = 0.4, faults: tuple[str, ...] = ALL_FAULTS
    ) -> None:
        self.rng = random.Random(seed)
        self.fault_rate = fault_rate
        self.faults = faults
        self._plates: set[str] = set()

    def next(self) -> SimVehicle:
        while True:
            v = random_vehicle_description(self.rng)
            if v.plate in self._plates:
                continue
            sv = SimVehicle(v, build_brakes(v, self.rng), seed=self.rng.randrange(2**31))
            sv.traits.update(make_traits(v, sv.seed))
            if self.rng.random() < self.fault_rate:
                kind = self.rng.choice([k for k in self.faults if fault_fits(k, v)])
                apply_fault(sv, _fault_for(kind, v, self.rng))
            # A design too close to the whole-vehicle limit would make BT a coin toss.
            if abs(nominal_bt(sv) - BT_LIMIT) < BT_MARGIN:
                continue
            self._plates.add(v.plate)
            return sv


def healthy_vehicle_for(plate: str, vehicle: Vehicle | None = None) -> SimVehicle:
    """A healthy vehicle for a plate the simulator does not know (registered from
    outside): built to the registered description when there is one, else a
    typical petrol car."""
    seed = int.from_bytes(plate.encode("utf-8"), "little") % (2**31)
    rng = random.Random(seed)
    if vehicle is None:
        vehicle = Vehicle(
            vin=make_vin(rng),
            plate=plate,
            vehicle_class="M1",
            fuel=Fuel.PETROL,
            axles=2,
            parking_axles=(2,),
            curb_mass_kg=1300,
            gross_mass_kg=1750,
            headlamp_system=2,
            max_design_speed_kmh=180,
        )
    sv = SimVehicle(vehicle, build_brakes(vehicle, rng), seed=seed)
    sv.traits.update(make_traits(vehicle, seed))
    return sv


def describe(sv: SimVehicle) -> str:
    f = ", ".join(sv.fault_labels()) or "healthy"
    return f"{sv.plate} {sv.vehicle.vehicle_class} {sv.vehicle.fuel} {sv.vehicle.axles} axles: {f}"


__all__ = [
    "ALL_FAULTS",
    "BRAKE_FAULTS",
    "Population",
    "SimFault",
    "SimVehicle",
    "apply_fault",
    "describe",
    "healthy_vehicle_for",
]
