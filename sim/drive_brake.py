"""How a simulated proxy driver takes a vehicle over the roller brake tester.

The car rolls on until its front axle stands on the rollers, then the driver
follows the display: foot off the pedal on RELEASE_BRAKE, press it (after a
reaction time) on APPLY_BRAKE, pull the parking brake on
APPLY_PARKING_BRAKE, roll to the next axle on DRIVE_FORWARD, leave on
DRIVE_OUT. Each axle is an `AxleOnRollersModel` that the tester emulator
samples; what the driver does changes the forces it sees. A driver rolls on
or off the rollers when told, lift or no lift, as real ones do: the tester
emulator reports it to the referee when the lift was not up, and the driver
tells it when an APPLY prompt came (too early, or with no run going).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from linectl.drivers.lineio_modbus import Prompt
from sim.physics import AxleOnRollersModel

if TYPE_CHECKING:
    from sim.world import Agent, SimStation

from sim.world import behaviour


@behaviour("brake")
async def drive_brake(agent: Agent, st: SimStation) -> None:
    rbt = st.devices["rbt-modbus"]
    axles = [AxleOnRollersModel(a, agent.sv.seed * 7 + a.number) for a in agent.sv.axles]
    i = 0
    await agent.pause(agent.habits.to_rollers_s)
    rbt.place_axle(axles[0])
    try:
        while True:
            blk = await agent.next_prompt(st.index)
            code = blk.code
            if code == Prompt.RELEASE_BRAKE:
                axles[i].release()
            elif code in (Prompt.APPLY_BRAKE, Prompt.APPLY_PARKING_BRAKE):
                rbt.apply_shown(blk.shown_at, parking=code == Prompt.APPLY_PARKING_BRAKE)
                await agent.react()
                axles[i].apply(agent.clock.now(), parking=code == Prompt.APPLY_PARKING_BRAKE)
            elif code == Prompt.DRIVE_FORWARD and i + 1 < len(axles):
                axles[i].release()
                rbt.place_axle(None)
                await agent.pause(agent.habits.next_axle_s)
                i += 1
                rbt.place_axle(axles[i])
            elif code == Prompt.DRIVE_OUT:
                return
    finally:
        axles[i].release()
        rbt.place_axle(None)
