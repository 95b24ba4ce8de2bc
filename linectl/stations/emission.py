"""The emission station's procedure: two-speed idle (petrol, hybrid, gas) or free
acceleration (diesel), item EX. Electric vehicles have no EX item.

One station holds both instruments, the gas analyser (nha503) and the
opacimeter (nht6); the vehicle's fuel picks the test.

Two-speed idle (standards.md, GB 18285): the analyser must be warm, pass its
leak check (once a day, and whenever it reports a failed one) and is zeroed
before every vehicle. Each of those runs for a while on the analyser (up to
30 s, devices.md) and shows in STATUS: no command is sent while STATUS says
one still runs (a back-flush after the last vehicle, typically), and after
an accepted one STATUS is read until it clears; a reading less than a
refresh (1 s) after the command is not believed, since the analyser may not
have refreshed STATUS since. An analyser still busy after 60 s leaves EX not
judged (`analyser_busy`). INSERT_PROBE, then wait until the bench sees exhaust.
Each phase (ENGINE_HIGH_IDLE, then ENGINE_IDLE) starts with the first
reading inside the phase's rpm band; readings are taken once a second of
clock time; the first `settle` are ignored, the next `measure` averaged. A
measured reading outside the band invalidates the phase at once: the prompt
is given again (a new SEQ) and the phase starts over, up to the site's
`emission.max_phase_repeats` repeats; after that EX is not judged
(`invalid_phase`), never judged from a broken phase. REMOVE_PROBE and a
back-flush close the test.

Free acceleration (GB 3847): the opacimeter is zeroed with the probe out and
its clean-air reading watched until it reads 0 (the zero applied: the echo
comes at once, the zero takes seconds), INSERT_PROBE, then
`emission.purge_accelerations` unmeasured accelerations and the measured
ones: for each, clear the peaks and read them until the old peak is gone
(no higher than the live reading), ACCELERATE_FULLY, watch the rpm rise and
fall back to idle, read the peak K. EX is the mean of the peaks. A zero or a
clear that does not show in time leaves EX not judged
(`opacimeter_not_zeroed`, `peaks_not_cleared`).

A device fault, or any garbled data on the instrument's port while the test
runs, leaves EX not judged with the reason; the probe always comes out.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from linectl.config import StationConfig
from linectl.drivers.errors import DeviceError
from linectl.drivers.framing import GasFrame, NhaReply, NhaStatus
from linectl.drivers.lineio_modbus import Prompt
from linectl.drivers.nha503 import Nha503
from linectl.drivers.nht6 import Nht6
from linectl.drivers.serial import GarbledFrame, SerialDevice
from linectl.items import ItemResult, not_judged
from linectl.stations.base import Guide, Procedure, Recorder, SiteContext, Visit
from linectl.stations.emission_judge import (
    CODE,
    FREE_ACCELERATION_FUELS,
    INVALID_PHASE,
    RPM_OUT_OF_BAND,
    TWO_SPEED_IDLE_FUELS,
    GasReading,
    evaluate_phase,
    high_idle_band,
    idle_band,
    judge_free_acceleration,
    judge_two_speed_idle,
)

log = logging.getLogger(__name__)

# All in clock seconds.
READ_PERIOD_S = 1.0  # standards.md: one reading a second
READY_TIMEOUT_S = 900.0  # a cold analyser warms up in minutes
OPERATION_TIMEOUT_S = 60.0  # zero, leak check, back-flush: up to 30 s by devices.md
# devices.md: values (STATUS too) refresh once a second; a reading taken sooner
# after an accepted command may show the analyser as it was before it.
STATUS_STALE_S = 1.2
ZERO_TIMEOUT_S = 15.0  # the opacimeter's zero takes seconds
CLEAR_TIMEOUT_S = 5.0  # the peak memory restarts at the end of a measuring cycle
ZERO_READS_K = 0.005  # m^-1: below the frame's resolution (0.01): reads 0.00
PEAK_CLEARED_K = 0.02  # m^-1: a peak no higher than live + this is a fresh one
LEAK_CHECK_EVERY_S = 24 * 3600.0
PROBE_TIMEOUT_S = 60.0
PROBE_OUT_S = 3.0  # for the probe to come out before the vehicle may move
BAND_ENTRY_TIMEOUT_S = 30.0
# Exhaust of a running engine holds 12 to 15 % CO2, air 0.04 %: above this the
# probe is in the tailpipe.
PROBE_IN_CO2_PCT = 3.0
OPACIMETER_PROBE_S = 5.0
SMOKE_POLL_S = 0.25
ACCEL_RISE_RPM = 500.0  # above the idle band: a free acceleration has begun
ACCEL_START_TIMEOUT_S = 10.0
ACCEL_END_TIMEOUT_S = 20.0
BETWEEN_ACCELERATIONS_S = 5.0

GARBLED = "garbled_data"
BUSY = NhaStatus.ZEROING | NhaStatus.LEAK_CHECK_OR_BACK_FLUSH
NOT_READY = NhaStatus.WARMING_UP | BUSY
ANALYSER_BUSY = "analyser_busy"


class EmissionAborted(Exception):
    """The test cannot give a trustworthy EX; `reason` and `values` go into the item."""

    def __init__(self, reason: str, **values: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.values = values


class EmissionProcedure(Procedure):
    kind = "emission"

    def __init__(
        self, cfg: StationConfig, ctx: SiteContext, gas: Nha503 | None, smoke: Nht6 | None
    ) -> None:
        super().__init__(cfg, ctx)
        if gas is None and smoke is None:
            raise ValueError(f"station {cfg.id}: an emission station needs an instrument")
        self.gas = gas
        self.smoke = smoke
        self._leak_checked_at: float | None = None
        self._accepted_at = float("-inf")  # clock time of the analyser's last accepted command

    def _devices(self) -> list[SerialDevice]:
        return [d for d in (self.gas, self.smoke) if d is not None]

    def device_health(self) -> dict[str, bool]:
        return {d.id: d.health.ok for d in self._devices()}

    async def close(self) -> None:
        for d in self._devices():
            await d.aclose()

    async def run(self, visit: Visit, guide: Guide, recorder: Recorder) -> list[ItemResult]:
        if CODE not in visit.items:
            return []
        started = self.clock.wall()
        self.live.begin(visit.line, visit.inspection_id, visit.plate)
        fuel = visit.vehicle.fuel
        device: SerialDevice | None = None
        try:
            if fuel in TWO_SPEED_IDLE_FUELS:
                device = self.gas
                res = await self._two_speed_idle(visit, guide)
            elif fuel in FREE_ACCELERATION_FUELS:
                device = self.smoke
                res = await self._free_acceleration(guide)
            else:
                res = not_judged(CODE, f"no_exhaust: a {fuel} vehicle has no EX item")
        except EmissionAborted as e:
            log.info("%s: %s: EX not judged: %s", self.id, visit.plate, e.reason)
            res = not_judged(CODE, e.reason, **e.values)
        except GarbledFrame as e:
            log.info("%s: %s: %s", self.id, visit.plate, e)
            res = not_judged(CODE, GARBLED)
        except DeviceError as e:
            log.warning("%s: %s: %s", self.id, visit.plate, e)
            res = not_judged(CODE, f"device_fault: {e}")
        dev_id = device.id if device is not None else None
        return [await self.record(recorder, visit, res, dev_id, started)]

    # --- petrol: two-speed idle ----------------------------------------------------

    def _analyser(self) -> Nha503:
        if self.gas is None:
            raise EmissionAborted(f"no_instrument: station {self.id} has no nha503 gas analyser")
        return self.gas

    async def _two_speed_idle(self, visit: Visit, guide: Guide) -> ItemResult:
        gas = self._analyser()
        limits = self.ctx.limits.emission
        site_idle_band = self.ctx.config.emission.idle_band_rpm
        await self._analyser_ready(gas, guide)
        probe_in = False
        try:
            await guide.show(Prompt.INSERT_PROBE, "gas analyser probe")
            probe_in = True
            await self._wait_probe(gas)
            garbled = gas.garbled
            high = await self._phase(
                gas,
                guide,
                Prompt.ENGINE_HIGH_IDLE,
                "high_idle",
                high_idle_band(visit.vehicle, limits),
                garbled,
            )
            low = await self._phase(
                gas, guide, Prompt.ENGINE_IDLE, "idle", idle_band(limits, site_idle_band), garbled
            )
        finally:
            if probe_in:
                await self._probe_out(guide, gas)
        return judge_two_speed_idle(
            high, low, visit.vehicle, limits, self.ctx.limit_set, idle_band=site_idle_band
        )

    async def _analyser_ready(self, gas: Nha503, guide: Guide) -> None:
        """Warm, leak-tight (checked daily) and zeroed, or EmissionAborted."""
        f = await self._until_ready(gas, guide)
        now = self.clock.now()
        due = self._leak_checked_at is None or now - self._leak_checked_at > LEAK_CHECK_EVERY_S
        if due or f.status & NhaStatus.LEAK_CHECK_FAILED:
            f = await self._operation(gas, guide, gas.leak_check, "leak check")
            if f.status & NhaStatus.LEAK_CHECK_FAILED:
                raise EmissionAborted("device_fault: gas analyser leak check failed")
            self._leak_checked_at = self.clock.now()
        await self._operation(gas, guide, gas.zero, "zero")

    async def _until_ready(self, gas: Nha503, guide: Guide) -> GasFrame:
        """Read once a second until STATUS shows nothing running and no warm-up.

        Warm-up may take minutes (READY_TIMEOUT_S); a zero, leak check or
        back-flush still running OPERATION_TIMEOUT_S after it was first seen is
        a stuck analyser. A reading too soon after our last accepted command
        is not believed (STATUS_STALE_S)."""
        start = self.clock.now()
        busy_since: float | None = None
        told = False
        while True:
            await self.clock.sleep_until(self._accepted_at + STATUS_STALE_S)
            now = self.clock.now()  # when asked: a late reply proves nothing
            f = await gas.read()
            if not f.status & NOT_READY:
                return f
            if f.status & BUSY:
                busy_since = now if busy_since is None else busy_since
                if now - busy_since > OPERATION_TIMEOUT_S:
                    raise EmissionAborted(ANALYSER_BUSY, status=f"{int(f.status):#04x}")
            elif now - start > READY_TIMEOUT_S:
                raise EmissionAborted(f"device_not_ready: gas analyser status {int(f.status):#04x}")
            if f.status & NhaStatus.WARMING_UP and not told:
                await guide.show(Prompt.WAIT, "gas analyser warming up")
                told = True
            await self.clock.sleep(READ_PERIOD_S)

    async def _operation(
        self, gas: Nha503, guide: Guide, send: Callable[[], Awaitable[NhaReply]], what: str
    ) -> GasFrame:
        """Run a zero or leak check, on an analyser whose STATUS said ready, to its
        end: STATUS read until the operation has cleared; the reading after it."""
        reply = await send()
        if reply is not NhaReply.ACCEPTED:
            # STATUS said ready and the analyser says otherwise: not to be trusted now.
            raise EmissionAborted(ANALYSER_BUSY, refused=what, reply=reply.name.lower())
        self._accepted_at = self.clock.now()
        return await self._until_ready(gas, guide)

    async def _wait_probe(self, gas: Nha503) -> None:
        deadline = self.clock.now() + PROBE_TIMEOUT_S
        while True:
            await self.clock.sleep(READ_PERIOD_S)
            f = await gas.read()
            if f.co2_pct >= PROBE_IN_CO2_PCT:
                return
            if self.clock.now() > deadline:
                raise EmissionAborted("probe_not_inserted", co2_pct=f.co2_pct)

    async def _read(self, gas: Nha503, garbled: int) -> GasReading:
        """One reading of a phase; any sign that it cannot be trusted aborts the test."""
        f = await gas.read()
        if gas.garbled != garbled:
            raise EmissionAborted(GARBLED, garbled_frames=gas.garbled - garbled)
        if f.status & NOT_READY:
            raise EmissionAborted(f"device_fault: gas analyser busy (status {int(f.status):#04x})")
        if f.status & NhaStatus.LOW_FLOW:
            raise EmissionAborted("device_fault: gas analyser sample flow too low")
        if f.status & NhaStatus.LEAK_CHECK_FAILED:
            raise EmissionAborted("device_fault: gas analyser leak check failed")
        return GasReading(
            rpm=f.rpm,
            co_pct=f.co_pct,
            hc_ppm=f.hc_ppm,
            lambda_=f.lambda_,
            co2_pct=f.co2_pct,
            o2_pct=f.o2_pct,
            no_ppm=f.no_ppm,
        )

    async def _phase(
        self,
        gas: Nha503,
        guide: Guide,
        prompt: Prompt,
        name: str,
        band: tuple[float, float],
        garbled: int,
    ) -> list[GasReading]:
        limits = self.ctx.limits.emission
        settle, measure = limits.settle_readings, limits.measure_readings
        lo, hi = band
        attempts = 1 + self.ctx.config.emission.max_phase_repeats
        why: dict[str, Any] = {}
        for attempt in range(1, attempts + 1):
            again = f", again ({attempt}/{attempts})" if attempt > 1 else ""
            await guide.show(prompt, f"{lo:.0f}..{hi:.0f} rpm{again}")
            readings = await self._one_phase(gas, name, band, settle + measure, settle, garbled)
            if readings is None:
                why = {f"{name}_phase": "rpm_not_reached"}
            elif len(readings) < settle + measure:
                # stopped at the first measured reading outside the band
                why = {f"{name}_phase": RPM_OUT_OF_BAND, f"{name}_out_of_band": 1}
            else:
                phase = evaluate_phase(readings, band, settle, measure)
                if phase.valid:
                    return readings
                why = {f"{name}_phase": phase.reason, f"{name}_out_of_band": phase.out_of_band}
            log.info(
                "%s: %s phase invalid (%s), attempt %d of %d", self.id, name, why, attempt, attempts
            )
        raise EmissionAborted(
            INVALID_PHASE, method="two_speed_idle", **why, **{f"{name}_attempts": attempts}
        )

    def _show_reading(self, phase: str, band: tuple[float, float], r: GasReading) -> None:
        self.live.publish(
            "gas", phase=phase, rpm=r.rpm, co_pct=r.co_pct, hc_ppm=r.hc_ppm, band=list(band)
        )

    async def _one_phase(
        self,
        gas: Nha503,
        phase: str,
        band: tuple[float, float],
        count: int,
        settle: int,
        garbled: int,
    ) -> list[GasReading] | None:
        """Readings from the first one inside the band, `count` of them, or fewer when
        a measured one falls outside it (no sense in waiting out a broken phase).
        None when the engine never reached the band."""
        lo, hi = band
        t = self.clock.now()
        deadline = t + BAND_ENTRY_TIMEOUT_S
        while True:
            r = await self._read(gas, garbled)
            self._show_reading(phase, band, r)
            if lo <= r.rpm <= hi:
                break
            if self.clock.now() > deadline:
                return None
            t += READ_PERIOD_S
            await self.clock.sleep_until(t)
        readings = [r]
        while len(readings) < count:
            await self.clock.sleep_until(t + len(readings) * READ_PERIOD_S)
            r = await self._read(gas, garbled)
            self._show_reading(phase, band, r)
            readings.append(r)
            if len(readings) > settle and not lo <= r.rpm <= hi:
                log.info(
                    "%s: reading %d at %.0f rpm, outside %s", self.id, len(readings), r.rpm, band
                )
                break
        return readings

    async def _probe_out(self, guide: Guide, gas: Nha503 | None) -> None:
        await guide.show(Prompt.REMOVE_PROBE)
        await self.clock.sleep(PROBE_OUT_S)
        if gas is not None:
            # Blow the sample line clean for the next vehicle. It runs on while the
            # vehicle leaves; the next zero waits for its STATUS to clear.
            with contextlib.suppress(DeviceError):
                f = await gas.read()
                if self.clock.now() - self._accepted_at < STATUS_STALE_S or f.status & NOT_READY:
                    log.warning("%s: gas analyser busy after the test: no back-flush", self.id)
                elif await gas.back_flush() is NhaReply.ACCEPTED:
                    self._accepted_at = self.clock.now()

    # --- diesel: free acceleration -------------------------------------------------

    async def _free_acceleration(self, guide: Guide) -> ItemResult:
        smoke = self.smoke
        if smoke is None:
            raise EmissionAborted(f"no_instrument: station {self.id} has no nht6 opacimeter")
        limits = self.ctx.limits.emission
        emission = self.ctx.config.emission
        await self._zero_opacimeter(smoke)  # in clean air, before the probe goes in
        probe_in = False
        peaks: list[float] = []
        try:
            await guide.show(Prompt.INSERT_PROBE, "opacimeter probe")
            probe_in = True
            await self.clock.sleep(OPACIMETER_PROBE_S)
            garbled = smoke.garbled
            for i in range(emission.purge_accelerations):
                await self._accelerate(
                    smoke, guide, f"purge {i + 1}/{emission.purge_accelerations}", garbled
                )
            n = limits.measured_accelerations
            for i in range(n):
                await self._clear_peaks(smoke, garbled)
                await self._accelerate(smoke, guide, f"measured {i + 1}/{n}", garbled)
                peak = await smoke.peaks()
                self._clean(smoke, garbled)
                peaks.append(peak.k_per_m)
        finally:
            if probe_in:
                await self._probe_out(guide, None)
        return judge_free_acceleration(peaks, limits, self.ctx.limit_set)

    async def _zero_opacimeter(self, smoke: Nht6) -> None:
        """A4, then the live reading until it shows the zero applied (0.00 in clean air)."""
        garbled = smoke.garbled
        await smoke.zero()
        deadline = self.clock.now() + ZERO_TIMEOUT_S
        while True:
            await self.clock.poll_sleep(SMOKE_POLL_S)
            asked_at = self.clock.now()
            live = await smoke.realtime()
            self._clean(smoke, garbled)
            if live.k_per_m < ZERO_READS_K:
                return
            if asked_at > deadline:
                raise EmissionAborted("opacimeter_not_zeroed", k_per_m=live.k_per_m)

    async def _clear_peaks(self, smoke: Nht6, garbled: int) -> None:
        """A7, then the peaks until the old one is gone (no higher than the live K)."""
        await smoke.clear_peaks()
        deadline = self.clock.now() + CLEAR_TIMEOUT_S
        while True:
            await self.clock.poll_sleep(SMOKE_POLL_S)
            asked_at = self.clock.now()
            peak = await smoke.peaks()
            live = await smoke.realtime()
            self._clean(smoke, garbled)
            if peak.k_per_m <= live.k_per_m + PEAK_CLEARED_K:
                return
            if asked_at > deadline:
                raise EmissionAborted(
                    "peaks_not_cleared", peak_k_per_m=peak.k_per_m, k_per_m=live.k_per_m
                )

    def _clean(self, dev: SerialDevice, garbled: int) -> None:
        if dev.garbled != garbled:
            raise EmissionAborted(GARBLED, garbled_frames=dev.garbled - garbled)

    async def _accelerate(self, smoke: Nht6, guide: Guide, label: str, garbled: int) -> None:
        """One free acceleration: prompt, see the rpm rise, see it come back to idle."""
        idle_top = idle_band(self.ctx.limits.emission, self.ctx.config.emission.idle_band_rpm)[1]
        attempts = 1 + self.ctx.config.emission.max_phase_repeats
        for _ in range(attempts):
            await guide.show(Prompt.ACCELERATE_FULLY, label)
            if await self._wait_rpm(
                smoke, lambda rpm: rpm >= idle_top + ACCEL_RISE_RPM, ACCEL_START_TIMEOUT_S, garbled
            ):
                break
        else:
            raise EmissionAborted("no_acceleration", acceleration=label, attempts=attempts)
        if not await self._wait_rpm(
            smoke, lambda rpm: rpm <= idle_top, ACCEL_END_TIMEOUT_S, garbled
        ):
            raise EmissionAborted("engine_not_back_to_idle", acceleration=label)
        await guide.show(Prompt.ENGINE_IDLE, label)
        await self.clock.sleep(BETWEEN_ACCELERATIONS_S)

    async def _wait_rpm(
        self, smoke: Nht6, ok: Callable[[float], bool], timeout_s: float, garbled: int
    ) -> bool:
        deadline = self.clock.now() + timeout_s
        while self.clock.now() <= deadline:
            await self.clock.poll_sleep(SMOKE_POLL_S)
            live = await smoke.realtime()
            self._clean(smoke, garbled)
            self.live.publish("smoke", rpm=live.rpm, k_per_m=live.k_per_m)
            if ok(live.rpm):
                return True
        return False


__all__ = ["EmissionAborted", "EmissionProcedure"]
