"""The simulated world: vehicles and the proxy drivers who take them through the line.

The world knows nothing of the daemon but what a real driver knows: the
guide display and the entry light of each station (the line I/O emulator),
and the vehicle under them. When a station's display shows DRIVE_IN with a
plate, the driver of that vehicle drives in once the light is green, sets
the photo switches as the car passes them, and then does what the display
says (RELEASE_BRAKE, APPLY_BRAKE, DRIVE_FORWARD, ...) with a human reaction
time, until DRIVE_OUT. Each station kind's part is a behaviour registered in
`BEHAVIOURS`; a station kind without one is driven through passively.

Vehicles the world was given (`add`) carry their designed faults; a plate it
has never heard of (registered from outside) gets a healthy vehicle, built to
the registered description when the world saw it (`learn`). A vehicle called
in again (a retest) is the one `add`ed last under its plate (repaired, see
sim/repair.py), driven once its previous trip has left the line.

A driver sent off mid-station (DRIVE_OUT with "see the operator", or the
text a restarted daemon shows to a vehicle it finds on a station) leaves at
once, whatever the station's procedure was at; a driver waiting for a call
that will never come (its inspection aborted by a daemon that died) gives
up when its vehicle is called into the line again.

Drivers do what the display says even when the instruments are not ready for
it, as real ones do; what they see go wrong they tell the `referee`
(sim/referee.py), which the instrument emulators share.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from linectl.clock import Clock
from linectl.drivers.lineio_modbus import Prompt
from linectl.vehicle import Vehicle
from sim.lineio import LineIOEmulator, PromptBlock
from sim.referee import Referee
from sim.vehicles import SimVehicle, healthy_vehicle_for

log = logging.getLogger(__name__)

# What a display says to send a vehicle off the line: "see the operator" after an
# abort, and (linectl.scheduler.line.LEFTOVER_TEXT) "please contact the operator"
# to a vehicle a restarted daemon finds on a station.
SENT_OFF_TEXTS = ("operator", "请联系操作员")


def sent_off(blk: PromptBlock) -> bool:
    return blk.code == Prompt.DRIVE_OUT and any(t in blk.text for t in SENT_OFF_TEXTS)


@dataclass
class SimStation:
    index: int
    id: str
    kind: str
    devices: Mapping[str, Any]  # device model -> emulator


@dataclass
class SimLine:
    id: str
    io: LineIOEmulator
    stations: list[SimStation]


@dataclass
class Habits:
    """How one simulated proxy driver handles a car (clock seconds)."""

    reaction_s: tuple[float, float] = (0.3, 0.8)
    drive_in_s: tuple[float, float] = (6.0, 10.0)
    to_rollers_s: tuple[float, float] = (1.5, 3.0)
    next_axle_s: tuple[float, float] = (2.5, 4.0)
    exit_s: tuple[float, float] = (2.5, 4.0)
    clear_s: tuple[float, float] = (1.5, 2.5)


@dataclass
class Trip:
    """What the world saw of one vehicle's way through the line."""

    plate: str
    line: str
    stations_done: list[str] = field(default_factory=list)
    finished: bool = False
    sent_off: bool = False  # told to leave the line ("see the operator") before its end


Behaviour = Callable[["Agent", SimStation], Awaitable[None]]
BEHAVIOURS: dict[str, Behaviour] = {}


def behaviour(kind: str) -> Callable[[Behaviour], Behaviour]:
    def register(fn: Behaviour) -> Behaviour:
        BEHAVIOURS[kind] = fn
        return fn

    return register


class Agent:
    """A proxy driver with one vehicle, from the line's start to the exit."""

    def __init__(self, world: World, line: SimLine, sv: SimVehicle, rng: random.Random) -> None:
        self.world = world
        self.line = line
        self.sv = sv
        self.clock = world.clock
        self.rng = rng
        self.habits = world.habits
        self._seen: dict[int, int] = {}
        self.trip = Trip(sv.plate, line.id)
        self.on_station: int | None = None  # the station it is on, None between them

    def span(self, rng_range: tuple[float, float]) -> float:
        return self.rng.uniform(*rng_range)

    async def pause(self, rng_range: tuple[float, float]) -> None:
        await self.clock.sleep(self.span(rng_range))

    async def react(self) -> None:
        await self.pause(self.habits.reaction_s)

    async def next_prompt(self, station: int) -> PromptBlock:
        """The next new prompt on this station's display (a new SEQ)."""
        seen = self._seen.get(station, self.line.io.prompt(station).seq)
        blk = await self.line.io.wait_prompt(station, seen)
        self._seen[station] = blk.seq
        return blk

    async def wait_for(self, station: int, pred: Callable[[PromptBlock], bool]) -> PromptBlock:
        """The first prompt on this display that satisfies `pred`, the current one included."""
        blk = self.line.io.prompt(station)
        if blk.seq != self._seen.get(station) and pred(blk):
            self._seen[station] = blk.seq
            return blk
        self._seen[station] = blk.seq
        while True:
            blk = await self.next_prompt(station)
            if pred(blk):
                return blk

    async def wait_until(self, station: int, code: Prompt) -> PromptBlock:
        return await self.wait_for(station, lambda b: b.code == code)

    async def run(self) -> None:
        io = self.line.io
        for st in self.line.stations:
            k = st.index
            await self.wait_for(k, lambda b: b.code == Prompt.DRIVE_IN and b.plate == self.sv.plate)
            await io.wait_entry_light(k, True)
            self.on_station = k
            await self.pause(self.habits.drive_in_s)
            io.set_inputs(k, in_position=True)
            await self._unless_sent_off(k, BEHAVIOURS.get(st.kind, passive)(self, st))
            # A driver reads the display: sent to the operator, the trip ends here.
            off = sent_off(io.prompt(k))
            await self.leave(k)
            self.on_station = None
            self.trip.stations_done.append(st.id)
            if off:
                self.trip.sent_off = True
                break
        self.trip.finished = True

    async def _unless_sent_off(self, k: int, work: Awaitable[None]) -> None:
        """Do the station's part, unless the display sends the vehicle off first."""
        task = asyncio.ensure_future(work)
        watch = asyncio.create_task(self._until_sent_off(k))
        try:
            await asyncio.wait([task, watch], return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (task, watch):
                t.cancel()
            await asyncio.gather(task, watch, return_exceptions=True)
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]

    async def _until_sent_off(self, k: int) -> None:
        io = self.line.io
        blk = io.prompt(k)
        while not sent_off(blk):
            blk = await io.wait_prompt(k, blk.seq)

    async def leave(self, k: int) -> None:
        # devices.md: EXIT_CLEAR falls no later than IN_POSITION falls.
        io = self.line.io
        io.set_inputs(k, exit_clear=False)
        await self.pause(self.habits.exit_s)
        io.set_inputs(k, in_position=False)
        await self.pause(self.habits.clear_s)
        io.set_inputs(k, exit_clear=True)


async def passive(agent: Agent, st: SimStation) -> None:
    """A station kind the world has no behaviour for: wait to be sent on."""
    await agent.wait_until(st.index, Prompt.DRIVE_OUT)


class World:
    def __init__(
        self,
        clock: Clock,
        lines: list[SimLine],
        seed: int = 0,
        habits: Habits | None = None,
        referee: Referee | None = None,
    ) -> None:
        self.clock = clock
        self.referee = referee or Referee()
        self.lines = lines
        self.rng = random.Random(seed)
        self.habits = habits or Habits()
        self.vehicles: dict[str, SimVehicle] = {}
        self.described: dict[str, Vehicle] = {}
        self.trips: dict[str, Trip] = {}
        self._active: dict[str, asyncio.Task[None]] = {}  # plate -> its driver's trip
        self._agents: dict[str, Agent] = {}  # plate -> the driver on the way with it
        self._tasks: set[asyncio.Task[None]] = set()
        # Told (line id, plate) when a vehicle's trip ends: its driver walks back.
        self.on_trip_end: Callable[[str, str], None] | None = None

    def add(self, sv: SimVehicle) -> None:
        self.vehicles[sv.plate] = sv

    def learn(self, vehicle: Vehicle) -> None:
        """A registration the world overheard: its plate gets that body if unknown."""
        self.described.setdefault(vehicle.plate, vehicle)

    def vehicle(self, plate: str) -> SimVehicle:
        if plate not in self.vehicles:
            self.vehicles[plate] = healthy_vehicle_for(plate, self.described.get(plate))
            log.info("world: %s is not a simulated vehicle; driving a healthy one", plate)
        return self.vehicles[plate]

    async def run(self) -> None:
        try:
            async with asyncio.TaskGroup() as tg:
                for line in self.lines:
                    tg.create_task(self._watch(line), name=f"world-{line.id}")
        finally:
            for t in list(self._tasks):
                t.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _watch(self, line: SimLine) -> None:
        """Give every vehicle called into the line's first station a driver."""
        seq = line.io.prompt(0).seq
        while True:
            blk = await line.io.wait_prompt(0, seq)
            seq = blk.seq
            if blk.code == Prompt.DRIVE_IN and blk.plate:
                self._start(line, blk.plate)

    def _start(self, line: SimLine, plate: str) -> None:
        """A driver for the vehicle called in. Called again while still on its way out
        (a retest registered as its result came out), it comes round once it has left;
        a DRIVE_IN shown again while it is still being called in (a display write
        that was retried) is the same call."""
        before = self._active.get(plate)
        if before is not None:
            current = self._agents.get(plate)
            if current is None or not current.trip.stations_done:
                return
            del self._agents[plate]  # until the next trip sets off, a DRIVE_IN is its call
            if current.on_station is None and not current.trip.finished:
                # Between stations, waiting for a call that will not come (its
                # inspection was aborted): called in again, it gives that up.
                log.info("world: %s called in again while on its way: a new trip", plate)
                before.cancel()

        async def go() -> None:
            try:
                if before is not None:
                    await asyncio.wait([before])
                # Taken when it sets off: a retest comes back repaired (see `add`).
                agent = Agent(self, line, self.vehicle(plate), random.Random(self.rng.random()))
                self.trips[plate] = agent.trip
                self._agents[plate] = agent
                await agent.run()
                if self.on_trip_end:
                    self.on_trip_end(line.id, plate)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("world: the driver of %s gave up", plate)
            finally:
                if self._active.get(plate) is task:
                    del self._active[plate]
                    self._agents.pop(plate, None)

        task = asyncio.create_task(go(), name=f"agent-{plate}")
        self._active[plate] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


# Station behaviours register themselves on import.
from sim import drive_brake, drive_emission, drive_headlamp  # noqa: E402, F401
