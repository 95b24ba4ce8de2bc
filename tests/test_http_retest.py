"""Retest through the JSON API against a running simulated site of two unlike lines:
each visit goes to a line with the instruments its items need, a station that owns
none of them lets the vehicle through, and `GET /api/inspections/{id}` shows the
revisions."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from typing import Any

from http_fixtures import registration, serving
from site_fixtures import running_site
from store_fixtures import make_vin

from linectl.config import SiteConfig
from linectl.events import Subscription
from linectl.ops.actor import Actor
from linectl.vehicle import parse_vehicle
from sim.repair import repair
from sim.vehicles import SimFault, apply_fault, healthy_vehicle_for

WITHIN_S = 60.0  # real seconds: generous, the machine is shared
ITEMS = ["B1", "B2", "B0", "BT", "H1", "H4"]


def brake_only_l1(cfg: SiteConfig) -> SiteConfig:
    """L1 keeps its brake station only; L2 has brake and headlamp."""
    l1, l2 = cfg.lines
    l1 = l1.model_copy(update={"stations": [s for s in l1.stations if s.kind == "brake"]})
    return cfg.model_copy(update={"lines": [l1, l2]})


async def visit(sub: Subscription, inspection_id: str) -> list[Any]:
    """The events of one visit of `inspection_id`, up to its completion."""
    seen = []
    async with asyncio.timeout(WITHIN_S):
        while True:
            ev = await sub.get()
            if ev.inspection_id != inspection_id:
                continue
            seen.append(ev)
            if ev.type in ("completed", "aborted"):
                return seen


async def test_retest_through_the_api_on_the_line_that_can_measure_it(tmp_path: Path) -> None:
    req = registration("r-api", items=ITEMS)
    sv = healthy_vehicle_for(req["vehicle"]["plate"], parse_vehicle(req["vehicle"]))
    apply_fault(sv, SimFault("weak_axle", 2))
    apply_fault(sv, SimFault("dim_lamp", lamp="L"))
    assert sv.expected_items() == {"B2": "fail", "BT": "fail", "H1": "fail"}
    vin = req["vehicle"]["vin"]
    async with (
        running_site(
            tmp_path,
            lines=2,
            kinds=("brake", "headlamp"),
            adjust=brake_only_l1,
        ) as rig,
        serving(rig.ops) as api,
        api.client("operator") as op,
        api.client("viewer") as viewer,
    ):
        rig.sim.world.add(sv)
        with rig.site.events.subscribe({"station_started", "completed", "aborted"}) as sub:
            r = await op.post("/api/registrations", json=req)
            assert r.status_code == 200, r.text
            iid = r.json()["inspection_id"]
            assert r.json()["line"] == "L2"  # the only line with a headlamp tester
            await visit(sub, iid)
            doc = (await viewer.get(f"/api/inspections/{iid}")).json()
            assert doc["verdict"] == "fail" and [h["revision"] for h in doc["revisions"]] == [1]

            # What the console's retest button offers.
            defaults = await rig.ops.retest_defaults(Actor.system("console"), iid)
            assert defaults["retestable"] and defaults["items"] == ["B1", "B2", "BT", "H1"]
            assert defaults["revision"] == 2 and defaults["all_items"] == ITEMS

            retest = {"request_id": "r-api-2", "retest_of": iid, "vehicle": {"vin": vin}}
            r = await viewer.post("/api/registrations", json={**retest, "items": ["H1"]})
            assert r.status_code == 403
            bad = {**retest, "request_id": "r-api-bad", "vehicle": {"vin": make_vin(7)}}
            r = await op.post("/api/registrations", json=bad)
            assert r.status_code == 422 and r.json()["error"]["code"] == "vin_mismatch"

            # The garage put both faults right; the lamp is retested first, on L2.
            rig.sim.world.add(repair(sv, random.Random(2), rate=1.0).vehicle)
            r = await op.post("/api/registrations", json={**retest, "items": ["H1"]})
            assert r.status_code == 200, r.text
            assert (r.json()["line"], r.json()["revision"], r.json()["items"]) == ("L2", 2, ["H1"])
            events = await visit(sub, iid)
            started = {
                e.data["station"]: e.data["items"] for e in events if e.type == "station_started"
            }
            assert started == {
                "brake": [],
                "headlamp": ["H1"],
            }  # through the brake station untested
            assert events[-1].data["verdict"] == "fail" and events[-1].data["revision"] == 2

            # Then the brakes (the failed items, with every axle for BT): L1 can do that.
            r = await op.post("/api/registrations", json={**retest, "request_id": "r-api-3"})
            assert r.status_code == 200, r.text
            assert (r.json()["line"], r.json()["revision"]) == ("L1", 3)
            assert r.json()["items"] == ["B1", "B2", "BT"]
            await visit(sub, iid)

        doc = (await viewer.get(f"/api/inspections/{iid}")).json()
        assert doc["revision"] == 3 and doc["verdict"] == "pass" and doc["line"] == "L1"
        assert doc["proxy_driver"]["id"].startswith("L1")
        attempts = {i["code"]: i["attempt"] for i in doc["items"]}
        assert attempts == {"B1": 2, "B2": 2, "B0": 1, "BT": 2, "H1": 2, "H4": 1}
        history = [(h["revision"], h["verdict"], h["items_tested"]) for h in doc["revisions"]]
        assert history == [
            (1, "fail", ITEMS),
            (2, "fail", ["H1"]),
            (3, "pass", ["B1", "B2", "BT"]),
        ]
        assert [h["request_id"] for h in doc["revisions"]] == ["r-api", "r-api-2", "r-api-3"]
        assert (await rig.store.verify_draws()).ok
        assert len(await rig.store.draws()) == 3
        # Called in again while still leaving: the line and its driver did it in order.
        assert not rig.sim.referee.violations, rig.sim.referee.violations
