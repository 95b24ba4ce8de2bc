"""The brake tester emulator's lift and its referee, over Modbus TCP with a clock the
test moves by hand: the lift takes its time, input 4 changes only on arrival, a
weight taken with the lift not down is wrong, and what a line computer must not
do is counted."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from modbus_fixtures import ManualClock, ScriptedAxle, served

from linectl.config import DeviceConfig
from linectl.drivers.modbus import BusRegistry, ModbusBus
from linectl.drivers.rbt_modbus import RbtCommand, RbtModbus, RbtState
from sim.rbt import ON_LIFT_SHARE, BrakeTesterEmulator


@dataclass
class Rig:
    clock: ManualClock
    emu: BrakeTesterEmulator
    rbt: RbtModbus

    async def at(self, t: float) -> bool:
        """Input 4 as the driver reads it at clock time `t`."""
        self.clock.t = t
        return await self.rbt.lift_is_up()


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    clock = ManualClock()
    emu = BrakeTesterEmulator(clock, lift_travel_s=2.0)
    async with served([emu.sim_device()], "tcp") as (transport, _):
        registry = BusRegistry()
        cfg = DeviceConfig(id="rbt-T", model="rbt-modbus", transport=transport)
        bus = ModbusBus.for_transport(transport, 1.0, registry=registry)
        yield Rig(clock, emu, RbtModbus(cfg, bus))
        await registry.close_all()


async def test_the_lift_travels_and_input_4_changes_only_on_arrival(rig: Rig) -> None:
    assert not await rig.at(0.0)  # down at power-up
    await rig.rbt.command(RbtCommand.LIFT_UP)
    assert not await rig.at(1.9) and not rig.emu.lift_is_up
    assert await rig.at(2.0) and rig.emu.lift_is_up
    await rig.rbt.command(RbtCommand.LIFT_DOWN)
    # on its way down input 4 still says up: only arriving changes it
    assert await rig.at(3.0) and not rig.emu.lift_is_up and not rig.emu.lift_is_down
    assert not await rig.at(4.0) and rig.emu.lift_is_down
    # turned round half way: back up in the half travel it had done
    await rig.rbt.command(RbtCommand.LIFT_UP)
    rig.clock.t = 5.0
    await rig.rbt.command(RbtCommand.LIFT_DOWN)
    await rig.rbt.command(RbtCommand.LIFT_UP)
    assert not await rig.at(5.9) and await rig.at(6.0)
    assert rig.emu.referee.count == 0


async def test_a_stuck_lift_stays_where_it_is_until_freed(rig: Rig) -> None:
    await rig.rbt.command(RbtCommand.LIFT_UP)
    assert await rig.at(2.0)
    rig.emu.stick_lift()
    await rig.rbt.command(RbtCommand.LIFT_DOWN)
    assert await rig.at(30.0) and rig.emu.lift_is_up
    rig.emu.stick_lift(False)
    await rig.rbt.command(RbtCommand.LIFT_DOWN)
    assert not await rig.at(32.0)


async def test_a_weight_taken_with_the_lift_not_down_is_wrong_and_a_violation(rig: Rig) -> None:
    axle = ScriptedAxle(left_load_kg=500.0, right_load_kg=480.0)
    await rig.rbt.command(RbtCommand.LIFT_UP)
    rig.clock.t = 2.0
    rig.emu.place_axle(axle)  # driven on with the lift up: fine
    assert rig.emu.referee.count == 0
    # as the daemon of the report did: LIFT_DOWN and WEIGH 15 ms apart
    await rig.rbt.command(RbtCommand.LIFT_DOWN)
    rig.clock.t = 2.015
    await rig.rbt.command(RbtCommand.WEIGH)
    rig.clock.t = 4.0
    st = await rig.rbt.status()
    assert st.state == RbtState.WEIGHED
    share = 1 - ON_LIFT_SHARE
    assert (st.left_load_kg, st.right_load_kg) == (round(500 * share), round(480 * share))
    assert rig.emu.referee.kinds() == {"lift_not_down"}
    # waited for: the true load
    rig.emu.referee.clear()
    rig.clock.t = 5.0
    await rig.rbt.command(RbtCommand.WEIGH)
    rig.clock.t = 7.0
    st = await rig.rbt.status()
    assert (st.left_load_kg, st.right_load_kg) == (500, 480)
    assert rig.emu.referee.count == 0
    # and driving off with the lift down is the next thing it would not tolerate
    rig.emu.place_axle(None)
    assert rig.emu.referee.kinds() == {"drive_lift_not_up"}


async def test_what_a_running_controller_ignores_and_early_apply_are_violations(
    rig: Rig,
) -> None:
    rig.emu.place_axle(ScriptedAxle())  # with the lift down: a violation
    assert rig.emu.referee.kinds() == {"drive_lift_not_up"}
    rig.emu.referee.clear()
    await rig.rbt.command(RbtCommand.BRAKE)
    assert rig.emu.referee.count == 0
    rig.emu.apply_shown(rig.clock.t + 1.0, parking=False)  # too early
    rig.clock.t = 0.5
    await rig.rbt.command(RbtCommand.LIFT_UP)  # ignored while RUNNING
    rig.emu.apply_shown(2.0, parking=False)  # in time: fine
    assert rig.emu.referee.by_kind() == {"apply_too_early": 1, "command_ignored": 1}
    assert not await rig.at(5.0)  # the lift did not move
