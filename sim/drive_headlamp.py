"""How a simulated proxy driver handles the headlamp station.

The driver switches the beam the display asks for (HIGH_BEAM_ON, LOW_BEAM_ON)
after a reaction time; now and then a driver is slow to find the switch, so
the tester's head may find the wrong beam lit and the line has to ask again.
Asked again for the same beam, a driver pays attention. The lamps go off on
DRIVE_OUT. The tester emulator sees the vehicle's lamps through a
`LampSwitch` for as long as the car stands at the station. Sent off with the
tester's head still out (no RST since its last MEA), the driver tells the
referee: the head stands in the vehicle's way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from linectl.drivers.lineio_modbus import Prompt
from sim.lamps import LampSwitch

if TYPE_CHECKING:
    from sim.world import Agent, SimStation

from sim.world import behaviour

SLOW_SWITCH_CHANCE = 0.08
SLOW_SWITCH_S = (3.0, 6.5)
BEAMS = {Prompt.HIGH_BEAM_ON: "H", Prompt.LOW_BEAM_ON: "L"}


@behaviour("headlamp")
async def drive_headlamp(agent: Agent, st: SimStation) -> None:
    tester = st.devices.get("hlt-ascii")
    lamps = LampSwitch(agent.sv.traits.get("lamps") or {})
    if tester is not None:
        tester.place_vehicle(lamps)
    last: Prompt | None = None
    try:
        while True:
            code = Prompt((await agent.next_prompt(st.index)).code)
            if code in BEAMS:
                if code != last and agent.rng.random() < SLOW_SWITCH_CHANCE:
                    await agent.pause(SLOW_SWITCH_S)
                else:
                    await agent.react()
                lamps.switch(BEAMS[code], agent.clock.now())
            elif code == Prompt.DRIVE_OUT:
                if tester is not None and tester.head_out:
                    agent.world.referee.note(
                        agent.clock.now(),
                        tester.name,
                        "drive_out_head_out",
                        "DRIVE_OUT with the head not homed (no RST after the last MEA)",
                    )
                return
            last = code
    finally:
        lamps.switch(None, agent.clock.now())
        if tester is not None:
            tester.place_vehicle(None)
