"""The brake station's procedure: roller brake tester with axle scale.

Before a vehicle is called in (`prepare`), the lift is raised and waited
for: its position at power-up is whatever it was, and a vehicle drives onto
the rollers only with the lift up. Then per axle, as devices.md section 1
and standards.md prescribe: wait for the axle on the rollers -> STOP_HERE ->
LIFT_DOWN and wait for input 4 = 0 -> WEIGH -> RELEASE_BRAKE -> BRAKE (drag
phase, brake released) -> APPLY_BRAKE 2.0 s after BRAKE -> the controller
stops on slip or its time limit -> judge the axle; on a parking axle the
same run again behind APPLY_PARKING_BRAKE; then LIFT_UP, wait for input 4 =
1, DRIVE_FORWARD to the next axle. After the last axle: B0 over the parking
runs and BT over all axles, and the lift up (waited for) before the line
shows DRIVE_OUT. When the APPLY prompt reached the display is kept with each
run's values (`apply_s`, s after BRAKE, the curve's time base), so the
report can mark it on the curve. The ring buffer is read while the run goes, so no sample
is lost; an overrun or a device fault makes the item not judged with the
reason, never pass or fail.

A lift that does not reach the commanded end within 5 s is a device fault
(devices.md): every item not yet produced is not judged (`lift_fault`), the
vehicle is released, and the next vehicle is not called in until the lift,
with nothing on it, has gone down and up again in time (`prepare` keeps
trying).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from linectl.config import StationConfig
from linectl.drivers.errors import DeviceError, RingOverrun
from linectl.drivers.lineio_modbus import Prompt
from linectl.drivers.rbt_modbus import RbtCommand, RbtModbus, RbtState, RbtStatus, StopReason
from linectl.items import ItemResult, not_judged
from linectl.stations.base import (
    Guide,
    Procedure,
    Recorder,
    SiteContext,
    Visit,
    raise_if_cancelling,
)
from linectl.stations.brake_judge import judge_axle, judge_parking, judge_total
from linectl.stations.curve import BrakeCurve
from linectl.stations.live import BrakeTrace

log = logging.getLogger(__name__)

SAMPLE_PERIOD_MS = 10  # 100 Hz
MAX_TEST_MS = 8000
APPLY_AFTER_S = 2.0  # devices.md: no earlier than 1.5 s after BRAKE, nominally 2.0 s
RELEASE_SETTLE_S = 1.0  # the driver's foot off the pedal before the drag phase starts
WEIGH_TIMEOUT_S = 5.0  # the controller promises 2 s
AXLE_ARRIVAL_TIMEOUT_S = 120.0
# The latest an APPLY prompt may reach the display after BRAKE and the run still be
# trusted: it leaves 4 s before the 8 s limit for a reaction (< 1 s) and a rise that
# settles within about 3 s. Later, the curve could end before the brake's maximum
# and read as a weak brake.
APPLY_LATE_S = 4.0
POLL_S = 0.15
LIFT_TIMEOUT_S = 5.0  # devices.md: a lift that does not arrive within 5 s is a device fault
LIFT_POLL_S = 0.1
LIFT_RETRY_S = 10.0  # between tries at a lift that failed, before the next vehicle
LIFT_FAULT = "lift_fault"


class BrakeFault(DeviceError):
    """The controller reported FAULT (sensor, motor, refused command)."""


class LiftFault(DeviceError):
    """The lift did not reach the commanded end in time."""


class RunUntrusted(DeviceError):
    """One run whose curve cannot be judged; the next run may be fine."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


def _run_reason(e: DeviceError) -> str:
    return e.reason if isinstance(e, RunUntrusted) else "overrun"


def _fault_reason(e: DeviceError) -> str:
    if isinstance(e, LiftFault):
        return LIFT_FAULT
    if isinstance(e, RingOverrun):
        return "overrun"
    return f"device_fault: {e}"


@dataclass
class Run:
    curve: BrakeCurve
    stop_reason: int
    left_locked: bool
    right_locked: bool
    apply_s: float  # when the APPLY prompt reached the display, s after BRAKE


class BrakeProcedure(Procedure):
    kind = "brake"

    def __init__(self, cfg: StationConfig, ctx: SiteContext, rbt: RbtModbus) -> None:
        super().__init__(cfg, ctx)
        self.rbt = rbt
        self._lift_failed = False  # since the last lift fault the lift has not shown it works

    def device_health(self) -> dict[str, bool]:
        return {self.rbt.id: self.rbt.health.ok}

    async def prepare(self) -> None:
        """The lift up before the vehicle is called in. After a lift fault the lift
        must first show it works again, down and up with nothing on it, however
        long that takes (logged once, and once when it works)."""
        failing = False
        while True:
            try:
                if self._lift_failed:
                    await self._lift(up=False)
                await self._lift(up=True)
            except DeviceError as e:
                raise_if_cancelling()
                if not failing:
                    log.warning("%s: %s; the next vehicle waits for the lift", self.id, e)
                    failing = True
                await self.clock.sleep(LIFT_RETRY_S)
                continue
            if failing or self._lift_failed:
                log.warning("%s: the lift works again", self.id)
            self._lift_failed = False
            return

    async def run(self, visit: Visit, guide: Guide, recorder: Recorder) -> list[ItemResult]:
        started = self.clock.wall()
        self.live.begin(visit.line, visit.inspection_id, visit.plate)
        done: list[ItemResult] = []
        try:
            await self._inspect(visit, guide, recorder, done)
        except DeviceError as e:
            log.warning("%s: %s: %s", self.id, visit.plate, e)
            with contextlib.suppress(DeviceError):
                # A run cut short on our side still turns the rollers, and a running
                # controller ignores every command but STOP (the lift's included).
                if (await self.rbt.status()).state == RbtState.RUNNING:
                    await self.rbt.command(RbtCommand.STOP)
            done = await self.not_judged_rest(
                recorder, visit, done, _fault_reason(e), self.rbt.id, started
            )
        finally:
            # The vehicle drives off only with the lift up, whatever happened.
            try:
                await self._lift(up=True)
            except DeviceError as e:
                log.warning("%s: %s: %s", self.id, visit.plate, e)
        return done

    async def _inspect(
        self, visit: Visit, guide: Guide, recorder: Recorder, out: list[ItemResult]
    ) -> None:
        """Every item into `out` as it is recorded (so a fault leaves only the rest)."""
        v = visit.vehicle
        limits = self.ctx.limits.brake
        items = set(visit.items)
        need_all_axles = "BT" in items
        axle_results: list[ItemResult] = []
        parking_runs: list[tuple[int, BrakeCurve, bool]] = []
        parking_apply: dict[str, float] = {}
        total_load = 0.0
        started = self.clock.wall()

        await self.rbt.configure(SAMPLE_PERIOD_MS, MAX_TEST_MS)
        await self.rbt.set_vehicle_tag(visit.plate)
        for n in range(1, v.axles + 1):
            await self._wait_axle(arrive=True)
            await guide.show(Prompt.STOP_HERE, f"axle {n}")
            await self._lift(up=False)
            left_kg, right_kg = await self._weigh()
            total_load += left_kg + right_kg
            code = f"B{n}"
            if code in items or need_all_axles:
                t0 = self.clock.wall()
                try:
                    run = await self._brake_run(guide, n, parking=False)
                    res = judge_axle(
                        n,
                        left_kg,
                        right_kg,
                        run.curve,
                        v,
                        visit.inspection_type,
                        limits,
                        left_locked=run.left_locked,
                        right_locked=run.right_locked,
                    )
                    res.values["apply_s"] = run.apply_s
                except (RingOverrun, RunUntrusted) as e:
                    log.warning("%s: %s axle %d: %s", self.id, visit.plate, n, e)
                    res = not_judged(
                        code, _run_reason(e), left_load_kg=left_kg, right_load_kg=right_kg
                    )
                axle_results.append(res)
                if code in items:
                    out.append(await self.record(recorder, visit, res, self.rbt.id, t0))
            if n in v.parking_axles and "B0" in items:
                try:
                    run = await self._brake_run(guide, n, parking=True)
                    parking_runs.append((n, run.curve, run.left_locked or run.right_locked))
                    parking_apply[f"axle{n}_apply_s"] = run.apply_s
                except (RingOverrun, RunUntrusted) as e:
                    log.warning("%s: %s parking axle %d: %s", self.id, visit.plate, n, e)
                    parking_runs.append((n, BrakeCurve(SAMPLE_PERIOD_MS, [], []), False))
                    res = not_judged("B0", _run_reason(e))
                    out.append(await self.record(recorder, visit, res, self.rbt.id, started))
                    items.discard("B0")
            if n < v.axles:
                await self._lift(up=True)
                await guide.show(Prompt.DRIVE_FORWARD, f"axle {n + 1}")
                await self._wait_axle(arrive=False)

        # The lift goes up in run()'s finally, after the judgement: the data is complete.
        if "B0" in items:
            res = judge_parking(parking_runs, total_load, v, limits)
            res.values |= parking_apply
            out.append(await self.record(recorder, visit, res, self.rbt.id, started))
        if "BT" in items:
            res = judge_total(axle_results, limits)
            out.append(await self.record(recorder, visit, res, self.rbt.id, started))

    async def _lift(self, up: bool) -> None:
        """Move the lift and wait until input 4 says it has arrived, or LiftFault."""
        cmd = RbtCommand.LIFT_UP if up else RbtCommand.LIFT_DOWN
        await self.rbt.command(cmd)
        deadline = self.clock.now() + LIFT_TIMEOUT_S
        while True:
            # Judged by when it was asked: a reply delayed past the deadline (a busy
            # bus) that says "not yet" is no proof the lift was late.
            asked_at = self.clock.now()
            if await self.rbt.lift_is_up() == up:
                return
            if asked_at > deadline:
                self._lift_failed = True
                raise LiftFault(
                    f"the lift was not {'up' if up else 'down'} {LIFT_TIMEOUT_S:.0f} s after {cmd.name}"
                )
            await self.clock.poll_sleep(LIFT_POLL_S)

    async def _status(self) -> RbtStatus:
        st = await self.rbt.status()
        if st.state == RbtState.FAULT:
            raise BrakeFault(f"brake tester fault code {st.fault_code}")
        return st

    async def _wait_axle(self, arrive: bool) -> None:
        """Wait for an axle to stand on the rollers (arrive) or to leave them."""
        deadline = self.clock.now() + AXLE_ARRIVAL_TIMEOUT_S
        while True:
            st = await self.rbt.status()
            if st.in_position == arrive:
                return
            if self.clock.now() > deadline:
                raise BrakeFault(
                    f"no axle {'arrived on' if arrive else 'left'} the rollers in {AXLE_ARRIVAL_TIMEOUT_S:.0f} s"
                )
            await self.clock.poll_sleep(POLL_S)

    async def _weigh(self) -> tuple[float, float]:
        await self.rbt.command(RbtCommand.WEIGH)
        deadline = self.clock.now() + WEIGH_TIMEOUT_S
        while True:
            await self.clock.poll_sleep(POLL_S)
            asked_at = self.clock.now()
            st = await self._status()
            if st.state == RbtState.WEIGHED:
                return float(st.left_load_kg), float(st.right_load_kg)
            if asked_at > deadline:
                raise BrakeFault(
                    f"scale did not settle in {WEIGH_TIMEOUT_S:.0f} s (state {st.state})"
                )

    async def _brake_run(self, guide: Guide, axle: int, parking: bool) -> Run:
        await self.rbt.set_test_kind(parking)
        await guide.show(Prompt.RELEASE_BRAKE)
        await self.clock.sleep(RELEASE_SETTLE_S)
        reader = self.rbt.ring_reader()
        await self.rbt.command(RbtCommand.BRAKE)
        reader.reset()
        t0 = self.clock.now()
        trace = BrakeTrace(self.live, SAMPLE_PERIOD_MS, axle, parking)
        apply = Prompt.APPLY_PARKING_BRAKE if parking else Prompt.APPLY_BRAKE
        prompt_task = asyncio.create_task(self._prompt_at(guide, apply, t0 + APPLY_AFTER_S))
        try:
            deadline = t0 + MAX_TEST_MS / 1000 + 5.0
            while True:
                await reader.poll()
                trace.update(reader.samples)
                st = await self._status()
                if st.state == RbtState.DONE:
                    break
                if self.clock.now() > deadline:
                    await self.rbt.command(RbtCommand.STOP)
                    raise BrakeFault("brake run did not end within its time limit")
                await self.clock.poll_sleep(POLL_S)
            await reader.poll()  # whatever came in between the last poll and DONE
            trace.update(reader.samples, done=True)
        finally:
            if not prompt_task.done():
                prompt_task.cancel()
            await asyncio.gather(prompt_task, return_exceptions=True)
        shown = (
            prompt_task.result()
            if prompt_task.done() and not prompt_task.cancelled() and not prompt_task.exception()
            else None
        )
        if shown is None or shown - t0 > APPLY_LATE_S:
            when = "never" if shown is None else f"{shown - t0:.1f} s after BRAKE"
            raise RunUntrusted("guide_late", f"{apply.name} reached the guide display {when}")
        samples = reader.samples()
        stop = int(st.stop_reason)
        return Run(
            curve=BrakeCurve(SAMPLE_PERIOD_MS, samples[:, 0], samples[:, 1]),
            stop_reason=stop,
            left_locked=st.slip_left or stop in (StopReason.LEFT_SLIP, StopReason.BOTH_SLIP),
            right_locked=st.slip_right or stop in (StopReason.RIGHT_SLIP, StopReason.BOTH_SLIP),
            apply_s=round(shown - t0, 2),
        )

    async def _prompt_at(self, guide: Guide, prompt: Prompt, t: float) -> float:
        """Show `prompt` at clock time `t`; the clock time it reached the display."""
        await self.clock.sleep_until(t)
        await guide.show(prompt)
        return self.clock.now()
