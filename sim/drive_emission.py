"""How a simulated proxy driver handles the emission station.

With the engine running (an `Engine` of the vehicle's exhaust traits, which
both instruments sample), the driver follows the display: puts the probe in
the tailpipe on INSERT_PROBE, holds the high-idle speed on ENGINE_HIGH_IDLE,
lets the engine idle on ENGINE_IDLE, floors the pedal for a moment and lets
go on ACCELERATE_FULLY, pulls the probe on REMOVE_PROBE. Holding 2500 rpm by
foot for 45 s is hard: now and then the foot sags out of the band in the
middle of a phase, as real drivers' do, and the line repeats the phase; a
driver told again is more careful. An electric vehicle just waits to be sent on.
The driver tells the referee of an INSERT_PROBE shown while an instrument
is not ready for exhaust (the analyser zeroing, checking for leaks or
back-flushing; the opacimeter zeroing) and of an ACCELERATE_FULLY shown
while the opacimeter still holds the peak of an earlier acceleration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from linectl.drivers.lineio_modbus import Prompt
from linectl.vehicle import Fuel
from sim.exhaust import Engine

if TYPE_CHECKING:
    from sim.world import Agent, SimStation

from sim.world import behaviour

MISS_CHANCE = 0.15  # of a sag in the first high-idle phase of a visit
MISS_CALMING = 4.0  # each repeat makes a sag this much less likely
SAG_AFTER_S = (20.0, 40.0)  # into the phase: among the measured readings
SAG_DEPTH_RPM = (330.0, 450.0)  # beyond the +/- 200 rpm band
SAG_S = (2.0, 4.0)
HIGH_IDLE_AIM_RPM = 90.0  # how far from the nominal speed a driver holds it
PROBE_S = (1.5, 3.0)
HOLD_FULL_S = (1.5, 2.5)


def _referee_checks(agent: Agent, st: SimStation, code: Prompt, diesel: bool) -> None:
    """What the driver sees wrong; each probe goes into its own instrument's test."""
    gas = None if diesel else st.devices.get("nha503")
    smoke = st.devices.get("nht6") if diesel else None
    now = agent.clock.now()
    note = agent.world.referee.note
    if code == Prompt.INSERT_PROBE:
        if gas is not None and (op := gas.operation()) is not None:
            note(now, gas.name, "probe_in_busy", f"INSERT_PROBE while the analyser's {op} runs")
        if smoke is not None and smoke.zeroing:
            note(now, smoke.name, "probe_in_zeroing", "INSERT_PROBE while the opacimeter zeroes")
    elif code == Prompt.ACCELERATE_FULLY and smoke is not None and smoke.old_peak_held:
        note(
            now,
            smoke.name,
            "accelerate_peak_held",
            "ACCELERATE_FULLY while the opacimeter still holds the last peak (clear not taken yet)",
        )


@behaviour("emission")
async def drive_emission(agent: Agent, st: SimStation) -> None:
    ex = agent.sv.traits.get("exhaust")
    if ex is None:
        await agent.wait_until(st.index, Prompt.DRIVE_OUT)
        return
    clock, rng = agent.clock, agent.rng
    engine = Engine(ex, clock.now(), seed=agent.sv.seed)
    instruments = [d for d in (st.devices.get("nha503"), st.devices.get("nht6")) if d is not None]
    for d in instruments:
        d.place_vehicle(engine)
    miss = MISS_CHANCE
    try:
        while True:
            code = Prompt((await agent.next_prompt(st.index)).code)
            if code == Prompt.DRIVE_OUT:
                return
            _referee_checks(agent, st, code, diesel=ex.fuel is Fuel.DIESEL)
            await agent.react()
            now = clock.now()
            if code == Prompt.INSERT_PROBE:
                await agent.pause(PROBE_S)
                engine.insert_probe(clock.now())
            elif code == Prompt.ENGINE_HIGH_IDLE:
                engine.hold(
                    now, ex.high_idle_rpm + rng.uniform(-HIGH_IDLE_AIM_RPM, HIGH_IDLE_AIM_RPM)
                )
                if rng.random() < miss:
                    # Planned ahead: the next prompt replaces it if the phase ends first.
                    engine.dip(
                        now + rng.uniform(*SAG_AFTER_S),
                        rng.uniform(*SAG_DEPTH_RPM),
                        rng.uniform(*SAG_S),
                    )
                miss /= MISS_CALMING
            elif code == Prompt.ENGINE_IDLE:
                engine.idle(now)
            elif code == Prompt.ACCELERATE_FULLY:
                engine.free_accelerate(now, rng.uniform(*HOLD_FULL_S))
            elif code == Prompt.REMOVE_PROBE:
                engine.remove_probe()
    finally:
        engine.remove_probe()
        for d in instruments:
            d.place_vehicle(None)
