"""A station in maintenance (issue 14): POST /api/lines/{line}/stations/{station}/maintenance.

One simulated line (brake, emission). The technician puts the emission
station in maintenance with a reason (journaled): a vehicle that needs it
waits in the queue while one that needs only the brake is called past it and
finishes; the gas analyser going deaf meanwhile raises its alarm suppressed
(no sound). Back from maintenance, the alarm is annunciated and the waiting
vehicle is called and finishes once the analyser answers again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from http_fixtures import serving
from site_fixtures import FINISHED, running_site

from linectl.alarms.state import AlarmState
from linectl.site import Site
from sim.vehicles import Population

KINDS = ("brake", "emission")
PATH = "/api/lines/L1/stations/emission/maintenance"
REASON = "gas analyser calibration"


async def until(site: Site, ready: Callable[[], Any], within_s: float = 15) -> Any:
    with site.events.subscribe({"alarm_summary"}) as sub:
        async with asyncio.timeout(within_s):
            while not (value := ready()):
                await sub.get()
            return value


def alarm(site: Site, key: str) -> Any:
    return next((a for a in site.alarms.open_alarms() if a.key == key), None)


async def test_a_station_in_maintenance_holds_its_vehicles_and_suppresses_its_alarms(
    tmp_path: Path,
) -> None:
    async with running_site(tmp_path, kinds=KINDS) as rig, serving(rig.ops) as api:
        site, line = rig.site, rig.site.line("L1")
        tech, viewer, admin = (api.client(r) for r in ("technician", "viewer", "admin"))
        assert (await viewer.post(PATH, json={"on": True, "reason": REASON})).status_code == 403
        r = await tech.post(PATH, json={"on": True})
        assert r.status_code == 422 and r.json()["error"]["field"] == "reason", r.text
        r = await tech.post(
            "/api/lines/L1/stations/nope/maintenance", json={"on": True, "reason": "x"}
        )
        assert r.status_code == 404, r.text
        r = await tech.post(PATH, json={"on": True, "reason": REASON})
        assert r.status_code == 200, r.text
        assert r.json() == {"line": "L1", "station": "emission", "maintenance": True,
                            "changed": True}  # fmt: skip
        stations = {s["id"]: s for s in line.status()["stations"]}
        assert stations["emission"]["maintenance"] is True
        assert stations["emission"]["maintenance_reason"] == REASON
        assert stations["brake"]["maintenance"] is False

        people = Population(seed=5, fault_rate=0)
        with site.events.subscribe({"driver_assigned", *FINISHED}) as sub:
            exhaust = await rig.register(people.next(), ["B1", "EX"])
            brake = await rig.register(people.next(), ["B1"])
            assert exhaust["accepted"] and brake["accepted"], (exhaust, brake)
            called = []
            async with asyncio.timeout(60):
                while True:
                    ev = await sub.get()
                    if ev.type == "driver_assigned":
                        called.append(ev.inspection_id)
                    elif ev.inspection_id == brake["inspection_id"]:
                        assert ev.type == "completed"
                        break
        # Called past the one that needs the station in maintenance, which still waits.
        assert called == [brake["inspection_id"]]
        assert [q.inspection_id for q in line.queued()] == [exhaust["inspection_id"]]
        assert not any(a.key == "line_idle:L1" for a in site.alarms.open_alarms())

        rig.sim.emulators["gas-L1"].mute = True
        down = await until(site, lambda: alarm(site, "device_down:gas-L1"))
        assert down.state is AlarmState.SUPPRESSED and not down.sounding
        assert site.alarms.summary()["sound"] is None

        r = await tech.post(PATH, json={"on": False})
        assert r.status_code == 200 and r.json()["changed"] is True, r.text
        back = await until(
            site,
            lambda: (
                (a := alarm(site, "device_down:gas-L1")) and a.state is AlarmState.UNACKED and a
            ),
        )
        assert back.sounding
        rig.sim.emulators["gas-L1"].mute = False
        with site.events.subscribe(FINISHED) as sub:
            async with asyncio.timeout(60):
                while (ev := await sub.get()).inspection_id != exhaust["inspection_id"]:
                    pass
        assert ev.type == "completed"

        journal = (await admin.get("/api/audit", params={"limit": 50})).json()
        done = [e for e in journal if e["action"] == "maintenance" and e["outcome"] == "ok"]
        assert [(e["user"], e["target"], e["reason"]) for e in reversed(done)] == [
            ("technician", "station:L1/emission", REASON),
            ("technician", "station:L1/emission", None),
        ]
        refused = [e for e in journal if e["action"] == "maintenance" and e["outcome"] == "refused"]
        assert len(refused) == 1


async def test_the_line_page_marks_a_station_in_maintenance_and_offers_the_button(
    tmp_path: Path,
) -> None:
    async with running_site(tmp_path, kinds=("brake",)) as rig, serving(rig.ops) as api:
        action = 'action="/lines/L1/stations/brake/maintenance"'
        viewer, _ = await api.signed_in("viewer")
        assert action not in (await viewer.get("/lines/L1")).text
        tech, csrf = await api.signed_in("technician")
        page = (await tech.get("/lines/L1")).text
        assert action in page and 'data-maintenance="false"' in page
        form = {"csrf_token": csrf, "on": "true", "next": "/lines/L1"}
        r = await tech.post("/lines/L1/stations/brake/maintenance", data=form)
        assert r.status_code != 303 and not rig.site.line("L1").maintenance  # no reason
        r = await tech.post(
            "/lines/L1/stations/brake/maintenance", data={**form, "reason": "rollers"}
        )
        assert r.status_code == 303, r.text
        assert rig.site.line("L1").maintenance == {"brake": "rollers"}
        page = (await tech.get("/lines/L1")).text
        assert 'data-maintenance="true"' in page and "(rollers)" in page
        assert 'name="on" value="false"' in page and "维护中" in page  # zh-CN, the default
        en = (await tech.get("/lines/L1", headers={"Accept-Language": "en"})).text
        assert "Maintenance: calls no vehicle that needs this station" in en
        r = await tech.post("/lines/L1/stations/brake/maintenance", data={**form, "on": "false"})
        assert r.status_code == 303 and not rig.site.line("L1").maintenance
