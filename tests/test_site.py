"""The site end to end against the simulator: registration, the random draw, the
pipeline, procedures over real sockets and ptys, records in the database."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from site_fixtures import TESTER, offline_config, running_site

from linectl.clock import Clock
from linectl.config import SiteConfig
from linectl.demo import demo_config
from linectl.drivers.lineio_modbus import Prompt
from linectl.drivers.rbt_modbus import RbtState
from linectl.ops.operations import Operations
from linectl.site import Site, open_store
from sim.vehicles import Population, SimFault, SimVehicle, apply_fault

BRAKE = ("brake",)


def brake_only_items() -> list[str]:
    """A two-axle car's items on a brake-only line (parking brake on axle 2)."""
    return ["B1", "B2", "B0", "BT"]


def fleet(*faults: SimFault | None, seed: int = 21) -> list[SimVehicle]:
    """Two-axle M1 cars, one per fault (None: healthy)."""
    pop = Population(seed=seed, fault_rate=0.0)
    out = []
    for f in faults:
        sv = pop.next()
        while sv.vehicle.vehicle_class != "M1":
            sv = pop.next()
        if f is not None:
            apply_fault(sv, f)
        out.append(sv)
    return out


async def test_brake_line_judges_each_simulated_fault(tmp_path: Path) -> None:
    cars = fleet(
        None,
        SimFault("weak_axle", 2),
        SimFault("imbalanced_axle", 2, "left"),
        SimFault("dragging_wheel", 1, "right"),
        SimFault("locking_wheel", 1, "left"),
        SimFault("weak_parking_brake"),
    )
    async with running_site(tmp_path, kinds=BRAKE) as rig:
        recs = await rig.inspect_all(cars, items=brake_only_items())
        chain = await rig.store.verify_draws()
        draws = await rig.store.draws()
        raws = [await rig.store.attempt_raw(r.latest_attempts()["B1"].id) for r in recs]
        violations = rig.sim.referee.violations
    assert not violations, violations
    assert chain.ok and chain.checked == len(cars)
    for sv, rec, raw in zip(cars, recs, raws, strict=True):
        got = {c: str(v) for c, v in rec.item_verdicts().items()}
        want = {c: "pass" for c in got} | sv.expected_items()
        assert got == want, (sv.fault_labels(), got)
        assert rec.proxy_driver_id is not None
        draw = next(d for d in draws if d.inspection_id == rec.id)
        assert draw.chosen == rec.proxy_driver_id and draw.chosen in draw.candidates
        b1 = rec.latest_attempts()["B1"]
        curve = next(iter(raw.values()))
        # 100 Hz: a run lasts at least the 2 s drag phase plus the rise.
        assert curve.shape[1] == 2 and curve.shape[0] > 250
        assert b1.curve is not None and b1.curve.startswith("1@")
        assert rec.verdict == (
            "pass"
            if not sv.expected_items()
            else ("incomplete" if "not_judged" in sv.expected_items().values() else "fail")
        )


async def test_a_sensor_fault_mid_run_is_never_a_verdict(tmp_path: Path) -> None:
    (car,) = fleet(None)
    async with running_site(tmp_path, kinds=BRAKE) as rig:
        rbt = rig.sim.emulators["rbt-L1"]
        with rig.site.events.subscribe({"completed"}) as sub:
            reply = await rig.register(car, brake_only_items())
            io = rig.sim.emulators["io-L1"]
            seq = io.prompt(0).seq
            while (
                blk := await asyncio.wait_for(io.wait_prompt(0, seq), 30)
            ).code != Prompt.APPLY_BRAKE:
                seq = blk.seq
            assert rbt.state == RbtState.RUNNING  # the first brake run is under way
            rbt.inject_fault(3)  # left force sensor
            ev = await asyncio.wait_for(sub.get(), 60)
        rec = await rig.store.inspection(reply["inspection_id"])
    assert ev.data["verdict"] == "incomplete"
    verdicts = {c: str(v) for c, v in rec.item_verdicts().items()}
    assert verdicts == {c: "not_judged" for c in verdicts}
    assert rec.latest_attempts()["B1"].reason.startswith("device_fault")


async def test_pipeline_holds_several_vehicles_and_uses_both_lines(tmp_path: Path) -> None:
    cars = fleet(*([None] * 8), seed=5)
    on_line: dict[str, set[str]] = {}
    most = {"L1": 0, "L2": 0}
    async with running_site(tmp_path, lines=2, kinds=(*BRAKE, "headlamp")) as rig:

        async def watch() -> None:
            with rig.site.events.subscribe({"station_started", "completed"}) as sub:
                async for ev in sub:
                    s = on_line.setdefault(ev.line or "", set())
                    if ev.type == "station_started":
                        s.add(ev.inspection_id or "")
                    else:
                        s.discard(ev.inspection_id or "")
                    most[ev.line or ""] = max(most.get(ev.line or "", 0), len(s))

        watcher = asyncio.create_task(watch())
        recs = await rig.inspect_all(cars, items=[*brake_only_items(), "H1", "H4"])
        watcher.cancel()
        reports = [ln.report() for ln in rig.site.lines]
        violations = rig.sim.referee.violations
    assert not violations, violations
    assert {r.line for r in recs} == {"L1", "L2"}
    bad = {
        r.plate: {c: (str(a.verdict), a.reason) for c, a in r.latest_attempts().items()}
        for r in recs
        if r.verdict != "pass"
    }
    assert not bad, bad
    # One vehicle per station, several per line: the line is a pipeline.
    assert most["L1"] >= 2 and most["L2"] >= 2
    for rep in reports:
        assert rep["vehicles"] >= 3  # the last may still be driving off
        assert 0 < rep["stations"][0]["utilisation"] <= 1


async def test_restart_requeues_waiting_and_aborts_interrupted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    (tmp_path / "tty").mkdir()
    cfg = offline_config(demo_config("t1", 1, url, tmp_path / "tty", BRAKE))
    cars = fleet(None, None)
    # A first daemon accepts two registrations and stops before calling any vehicle.
    store = await open_store(url)
    site = Site(cfg, Clock(100), store)
    ids = [
        (
            await Operations(site).register(
                TESTER,
                {
                    "request_id": f"r{i}",
                    "inspection_type": "new",
                    "vehicle": sv.vehicle.to_dict(),
                    "items": brake_only_items(),
                },
            )
        )["inspection_id"]
        for i, sv in enumerate(cars)
    ]
    await store.set_state(ids[0], "in_progress", site.clock.wall())  # as if it was on the line
    await store.aclose()
    # The next daemon on the same database.
    async with running_site(tmp_path, kinds=BRAKE) as rig:
        rig.sim.world.add(cars[1])
        with rig.site.events.subscribe({"completed"}) as sub:
            ev = await asyncio.wait_for(sub.get(), 60)
        first = await rig.store.inspection(ids[0])
        (aborted_result,) = await rig.store.outbox(ids[0])
        again = await rig.ops.register(
            TESTER,
            {
                "request_id": "r1",
                "inspection_type": "new",
                "vehicle": cars[1].vehicle.to_dict(),
                "items": brake_only_items(),
            },
        )
    assert ev.inspection_id == ids[1]
    assert str(first.state) == "aborted" and "restarted" in (first.abort_reason or "")
    # The registry hears of it through the outbox, as of any result.
    doc = json.loads(aborted_result.payload)
    assert doc["verdict"] == "incomplete" and "restarted" in doc["aborted"]
    assert again["inspection_id"] == ids[1]  # the same reply, no second inspection


def _no_emission_for_diesel(cfg: SiteConfig) -> SiteConfig:
    """L1's emission station keeps only the gas analyser, L2's only the opacimeter."""
    lines = []
    for ln in cfg.lines:
        keep = "nha503" if ln.id == "L1" else "nht6"
        st = [
            s.model_copy(
                update={
                    "devices": [d for d in s.devices if s.kind != "emission" or d.model == keep]
                }
            )
            for s in ln.stations
        ]
        lines.append(ln.model_copy(update={"stations": st}))
    return cfg.model_copy(update={"lines": lines})


async def test_dispatch_sends_each_vehicle_to_a_line_with_its_instruments(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    (tmp_path / "tty").mkdir()
    cfg = offline_config(_no_emission_for_diesel(demo_config("t1", 2, url, tmp_path / "tty")))
    store = await open_store(url)
    site = Site(cfg, Clock(100), store)
    pop = Population(seed=9, fault_rate=0.0)
    seen: dict[str, set[str]] = {}
    try:
        for i in range(40):
            sv = pop.next()
            reply: dict[str, Any] = await Operations(site).register(
                TESTER,
                {
                    "request_id": f"r{i}",
                    "inspection_type": "periodic",
                    "vehicle": sv.vehicle.to_dict(),
                },
            )
            assert reply["accepted"], reply
            seen.setdefault(str(sv.vehicle.fuel), set()).add(reply["line"])
    finally:
        await store.aclose()
    assert seen["diesel"] == {"L2"}
    assert seen["petrol"] == {"L1"}
    # No EX: either line will do; with petrol cars piling up on L1, the shorter is L2.
    assert seen["electric"] == {"L2"}


async def test_a_vehicle_no_line_can_measure_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'site.db'}"
    (tmp_path / "tty").mkdir()
    cfg = offline_config(demo_config("t1", 1, url, tmp_path / "tty", BRAKE))
    store = await open_store(url)
    try:
        site = Site(cfg, Clock(100), store)
        (car,) = fleet(None)
        reply = await Operations(site).register(
            TESTER, {"request_id": "r1", "inspection_type": "new", "vehicle": car.vehicle.to_dict()}
        )
    finally:
        await store.aclose()
    assert reply["accepted"] is False
    assert reply["error"]["code"] == "no_line" and "headlamp" in reply["error"]["message"]


async def test_an_apply_prompt_that_reaches_the_display_late_is_never_a_verdict(
    tmp_path: Path,
) -> None:
    # The line I/O module answers, but the first APPLY_BRAKE lands 5 s after BRAKE
    # (a congested bus): that run only saw drag and must not read as a weak brake.
    (car,) = fleet(None)
    async with running_site(tmp_path, kinds=BRAKE) as rig:
        io = rig.site.lines[0].io
        show = io.show
        delayed: list[int] = []

        async def slow_show(station: int, prompt: Prompt, plate: str = "", text: str = "") -> int:
            if prompt == Prompt.APPLY_BRAKE and not delayed:
                delayed.append(station)
                await rig.clock.sleep(3.0)
            return await show(station, prompt, plate, text)

        io.show = slow_show  # type: ignore[method-assign]
        (rec,) = await rig.inspect_all([car], items=brake_only_items())
    got = {c: (str(a.verdict), a.reason) for c, a in rec.latest_attempts().items()}
    assert got["B1"] == ("not_judged", "guide_late")
    assert got["B2"] == ("pass", None) and got["B0"] == ("pass", None)
    assert got["BT"][0] == "not_judged"
    assert rec.verdict == "incomplete"
