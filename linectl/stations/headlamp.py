"""The headlamp station's procedure: each lamp's high beam, then its low beam.

For every lamp the visit asks for (H1..H4 are L, LI, RI, R): HIGH_BEAM_ON,
time for the driver to switch, MEA, poll RES while the head searches (2 to
4 s), then the same with LOW_BEAM_ON. The inner lamps of a four-lamp system
(LI, RI) have a high beam only (devices.md section 5, standards.md): only
their high beam is measured. "No lamp found" usually means the driver has
not switched yet: the prompt is given again (a new SEQ) and the lamp
measured again, a few times, before the lamp is given up as not judged.
Judgement waits for every lamp, since the four-lamp pair rule needs them all
(headlamp_judge.py); a lamp that could not be measured is not judged, with
the reason, and never counts towards the pair rule.

A head still searching 10 s after MEA (devices.md promises 2 to 4 s) has
failed: that lamp and every lamp not yet measured are not judged
(`head_timeout`), the head is sent home (RST) and the vehicle released; the
next vehicle finds the tester answering or not on its own.

A measurement needs every beam of the lamp read cleanly: if the port saw
garbled data (a broken reply, stray bytes, or the tester telling us it got a
broken frame) while a lamp was measured, that lamp is not judged ("garbled_data"),
even when its own replies were whole. A device that stops answering leaves
every lamp not yet measured not judged ("device_fault: ...").
"""

from __future__ import annotations

import contextlib
import logging

from linectl.config import StationConfig
from linectl.drivers.errors import DeviceError
from linectl.drivers.framing import HltError, HltResult
from linectl.drivers.hlt_ascii import HeadlampError, HltAscii
from linectl.drivers.lineio_modbus import Prompt
from linectl.drivers.serial import GarbledFrame
from linectl.items import ITEM_LAMPS, LAMP_ITEMS, ItemResult, Verdict, not_judged
from linectl.stations.base import Guide, Procedure, Recorder, SiteContext, Visit
from linectl.stations.headlamp_judge import LampReading, judge_headlamps

log = logging.getLogger(__name__)

BEAM_SWITCH_S = 2.0  # after the prompt, before the head starts: the driver's switch
POLL_S = 0.5
SEARCH_TIMEOUT_S = 10.0  # the head promises 2 to 4 s
LAMP_ATTEMPTS = 3  # the first try and two more prompts
BEAMS = (("H", Prompt.HIGH_BEAM_ON, "high"), ("L", Prompt.LOW_BEAM_ON, "low"))
INNER_LAMPS = ("LI", "RI")  # four-lamp systems: high beam only
HEAD_TIMEOUT = "head_timeout"
# A four-lamp system's lamp too weak alone, while a lamp of the system was not
# measured: the pair rule might have passed it, so it is not failed on that.
PAIR_NOT_MEASURED = "pair_not_measured"

GARBLED = "garbled_data"
REASONS = {
    HltError.NO_LAMP: "no_lamp_found",
    HltError.NOT_IN_POSITION: "vehicle_not_in_position",
    HltError.BUSY: "device_busy",
    HltError.NO_MEASUREMENT: "no_measurement",
}


class LampNotMeasured(Exception):
    """One lamp could not be measured; `reason` becomes the item's reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class HeadTimeout(Exception):
    """The head did not find the lamp in time: the tester is not to be trusted now."""


def beams_of(lamp: str) -> tuple[tuple[str, Prompt, str], ...]:
    """The beams to measure on `lamp`: the inner lamps have no low beam."""
    return BEAMS[:1] if lamp in INNER_LAMPS else BEAMS


def unjudged_without_pair(res: ItemResult) -> ItemResult:
    """On a four-lamp system some of whose lamps a fault left unmeasured: a lamp
    failed for its intensity alone is not judged (PAIR_NOT_MEASURED), since the
    pair rule over the missing lamps might have passed it. A fail of its beam
    position stands; so does every pass."""
    limit = res.limits.get("intensity_cd")
    weak = isinstance(limit, int | float) and res.values.get("intensity_cd", limit) < limit
    v = res.values
    misaimed = v.get("beam_position") == "judge" and not (
        v.get("high_position_ok", True) and v.get("low_position_ok", True)
    )
    if res.verdict is not Verdict.FAIL or not weak or misaimed:
        return res
    return ItemResult(
        res.code, Verdict.NOT_JUDGED, res.values, res.limits, reason=PAIR_NOT_MEASURED
    )


class HeadlampProcedure(Procedure):
    kind = "headlamp"

    def __init__(self, cfg: StationConfig, ctx: SiteContext, tester: HltAscii) -> None:
        super().__init__(cfg, ctx)
        self.tester = tester

    def device_health(self) -> dict[str, bool]:
        return {self.tester.id: self.tester.health.ok}

    async def close(self) -> None:
        await self.tester.aclose()

    async def run(self, visit: Visit, guide: Guide, recorder: Recorder) -> list[ItemResult]:
        started = self.clock.wall()
        self.live.begin(visit.line, visit.inspection_id, visit.plate)
        lamps = [ITEM_LAMPS[c] for c in sorted(visit.items) if c in ITEM_LAMPS]
        readings: list[LampReading] = []
        failed: dict[str, ItemResult] = {}
        try:
            await self.tester.reset()
            for i, lamp in enumerate(lamps):
                try:
                    readings += await self._lamp(guide, lamp)
                except LampNotMeasured as e:
                    log.info(
                        "%s: %s lamp %s not measured: %s", self.id, visit.plate, lamp, e.reason
                    )
                    failed[lamp] = not_judged(LAMP_ITEMS[lamp], e.reason, lamp=lamp)
                except HeadTimeout as e:
                    log.warning("%s: %s lamp %s: %s", self.id, visit.plate, lamp, e)
                    for rest in lamps[i:]:
                        failed[rest] = not_judged(LAMP_ITEMS[rest], HEAD_TIMEOUT, lamp=rest)
                    break
        except DeviceError as e:
            log.warning("%s: %s: %s", self.id, visit.plate, e)
            done = {r.lamp for r in readings} | set(failed)
            for lamp in lamps:
                if lamp not in done:
                    failed[lamp] = not_judged(LAMP_ITEMS[lamp], f"device_fault: {e}", lamp=lamp)
        finally:
            # Home the head so the vehicle can drive off past it.
            with contextlib.suppress(DeviceError):
                await self.tester.reset()

        judged = {
            r.code: r
            for r in judge_headlamps(
                readings,
                visit.vehicle,
                visit.inspection_type,
                self.ctx.limits.headlamp,
                self.ctx.config.limits.beam_position,
            )
        }
        if failed and visit.vehicle.headlamp_system == 4:
            judged = {c: unjudged_without_pair(r) for c, r in judged.items()}
        out = []
        for lamp in lamps:
            code = LAMP_ITEMS[lamp]
            res = judged.get(code) or failed.get(lamp) or not_judged(code, "not_measured")
            out.append(await self.record(recorder, visit, res, self.tester.id, started))
        return out

    async def _lamp(self, guide: Guide, lamp: str) -> list[LampReading]:
        """Both beams of one lamp, or LampNotMeasured."""
        before = self.tester.garbled
        try:
            out = [
                await self._beam(guide, lamp, beam, prompt, name)
                for beam, prompt, name in beams_of(lamp)
            ]
        except GarbledFrame as e:
            log.info("%s: lamp %s: %s", self.id, lamp, e)
            raise LampNotMeasured(GARBLED) from e
        if self.tester.garbled != before:
            raise LampNotMeasured(GARBLED)
        return out

    async def _beam(
        self, guide: Guide, lamp: str, beam: str, prompt: Prompt, name: str
    ) -> LampReading:
        error: HltError | None = None
        for _ in range(LAMP_ATTEMPTS):
            await guide.show(prompt, f"lamp {lamp}: {name} beam")
            await self.clock.sleep(BEAM_SWITCH_S)
            try:
                await self.tester.measure(lamp, beam)
                r = await self._result(lamp, beam)
            except HeadlampError as e:
                if e.code is HltError.FRAME_ERROR:
                    # Our frame reached the tester broken: the line is noisy.
                    raise LampNotMeasured(GARBLED) from e
                error = e.code
                if e.code is HltError.BUSY:
                    await self.tester.reset()
                continue
            self.live.publish(
                "lamp",
                force=True,  # a few a vehicle: every one is shown
                lamp=r.lamp,
                beam=r.beam,
                intensity_cd=r.intensity_cd,
                h_mm=r.h_mm,
                v_mm=r.v_mm,
            )
            return LampReading(r.lamp, r.beam, r.intensity_cd, r.h_mm, r.v_mm, r.height_mm)
        assert error is not None
        raise LampNotMeasured(REASONS[error])

    async def _result(self, lamp: str, beam: str) -> HltResult:
        deadline = self.clock.now() + SEARCH_TIMEOUT_S
        while True:
            await self.clock.poll_sleep(POLL_S)
            asked_at = self.clock.now()  # a late reply proves nothing about the head
            r = await self.tester.result()
            if r is not None:
                if (r.lamp, r.beam) != (lamp, beam):
                    raise LampNotMeasured(
                        f"device_fault: asked for {lamp} {beam}, tester gave {r.lamp} {r.beam}"
                    )
                return r
            if asked_at > deadline:
                raise HeadTimeout(
                    f"the head still searched {SEARCH_TIMEOUT_S:.0f} s after MEA,{lamp},{beam}"
                )
