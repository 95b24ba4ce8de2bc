"""Operator actions over HTTP against a running simulated line: abort (queued, being
called, on the line), proxy-driver duty, pause and resume, and the event stream."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from http_fixtures import registration, serving
from site_fixtures import running_site

from linectl.drivers.lineio_modbus import Prompt
from linectl.events import Event, Subscription
from linectl.scheduler.line import SEE_THE_OPERATOR

BRAKE = ("brake",)
WITHIN_S = 60.0  # real seconds: generous, the machine is shared


async def until(pred: Callable[[], bool], within_s: float = WITHIN_S) -> None:
    """Wait for a condition of the running site (checked every few ms)."""
    async with asyncio.timeout(within_s):
        # Queue lengths and station states have no event of their own: polled.
        while not pred():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


@asynccontextmanager
async def subscribed(rig: Any, types: set[str] | None) -> AsyncIterator[Subscription]:
    with rig.site.events.subscribe(types) as sub:
        yield sub


async def next_event(sub: Subscription, type_: str, inspection_id: str) -> Event:
    async with asyncio.timeout(WITHIN_S):
        while True:
            ev = await sub.get()
            if ev.type == type_ and ev.inspection_id == inspection_id:
                return ev


async def test_abort_queued_called_and_running_inspections(tmp_path: Path) -> None:
    # Time scale 20: an axle takes most of a real second, so the abort lands mid-test.
    async with running_site(tmp_path, kinds=BRAKE, time_scale=20) as rig, serving(rig.ops) as api:
        line = rig.site.lines[0]
        shown: list[tuple[int, Prompt, str]] = []
        real_show = line.io.show

        async def show(station: int, prompt: Prompt, plate: str, text: str = "") -> None:
            shown.append((station, prompt, text))
            await real_show(station, prompt, plate, text)

        line.io.show = show  # type: ignore[method-assign]
        async with api.client("operator") as op, subscribed(rig, None) as sub:

            async def register(rid: str, plate: str) -> str:
                r = await op.post("/api/registrations", json=registration(rid, plate=plate))
                assert r.status_code == 200, r.text
                return str(r.json()["inspection_id"])

            a = await register("r-a", "鲁A00001")
            await next_event(sub, "station_started", a)
            # Both wait in the queue: a call is drawn (driver and vehicle among the
            # first queued) only once the brake station is free.
            b = await register("r-b", "鲁A00002")
            c = await register("r-c", "鲁A00003")
            await until(lambda: line.queue_length() == 2)

            r = await op.post(f"/api/inspections/{c}/abort", json={"reason": "owner left"})
            assert r.status_code == 200 and r.json()["was"] == "queued", r.text
            r = await op.post(f"/api/inspections/{b}/abort", json={"reason": "wrong vehicle"})
            assert r.status_code == 200 and r.json()["was"] == "queued", r.text
            judged = await next_event(sub, "item_judged", a)  # the first axle: B1
            r = await op.post(f"/api/inspections/{a}/abort", json={"reason": "oil leak"})
            assert r.status_code == 200 and r.json()["was"] == "on_line", r.text
            r = await op.post(f"/api/inspections/{a}/abort", json={"reason": "again"})
            assert r.status_code == 409 and r.json()["error"]["code"] == "conflict"
            r = await op.post("/api/inspections/t1-20990101-0001/abort", json={"reason": "x"})
            assert r.status_code == 404

            for iid, why in ((a, "oil leak"), (b, "wrong vehicle"), (c, "owner left")):
                doc = (await op.get(f"/api/inspections/{iid}")).json()
                assert doc["state"] == "aborted" and doc["aborted"] == why
                assert doc["verdict"] == "incomplete"
                # The result goes out like any other: committed with its outbox row.
                (row,) = await rig.store.outbox(iid)
                assert json.loads(row.payload)["aborted"] == why
            doc_a = (await op.get(f"/api/inspections/{a}")).json()
            reasons = {i["code"]: i.get("reason") for i in doc_a["items"]}
            verdicts = {i["code"]: i["verdict"] for i in doc_a["items"]}
            assert verdicts[judged.data["code"]] == judged.data["verdict"]  # kept as judged
            # The items the station was measuring: not judged, aborted.
            assert {c for c, why in reasons.items() if why == "aborted"} == {"B2", "B0", "BT"}
            assert (0, Prompt.DRIVE_OUT, SEE_THE_OPERATOR) in shown
            # B never had a driver: no draw was made for it.
            assert [d.inspection_id for d in await rig.store.draws()] == [a]

            # The station and the driver are given back: the next vehicle goes through.
            d = await register("r-d", "鲁A00004")
            done = await next_event(sub, "completed", d)
            assert done.data["verdict"] in ("pass", "fail")
            await until(lambda: all(s["state"] == "idle" for s in line.pool.snapshot()))


async def test_duty_changes_the_pool_of_the_draw(tmp_path: Path) -> None:
    async with running_site(tmp_path, kinds=BRAKE) as rig, serving(rig.ops) as api:
        line = rig.site.lines[0]
        async with (
            api.client("operator") as op,
            subscribed(rig, {"driver_assigned", "completed"}) as sub,
        ):
            for d in ("L1D1", "L1D2", "L1D3"):
                r = await op.post(f"/api/drivers/{d}/duty", json={"on_duty": False})
                assert r.status_code == 200 and r.json()["state"] == "off_duty", r.text
            status = (await op.get("/api/lines")).json()[0]
            states = {p["id"]: p["state"] for p in status["proxy_drivers"]}
            assert states == {
                "L1D1": "off_duty",
                "L1D2": "off_duty",
                "L1D3": "off_duty",
                "L1D4": "idle",
            }
            r = await op.post("/api/registrations", json=registration("r-1"))
            iid = r.json()["inspection_id"]
            ev = await next_event(sub, "driver_assigned", iid)
            assert ev.data["candidates"] == ["L1D4"] and ev.data["proxy_driver"] == "L1D4"
            # Keys are never taken back mid-line.
            r = await op.post("/api/drivers/L1D4/duty", json={"on_duty": False})
            assert r.status_code == 409, r.text
            r = await op.post("/api/drivers/L1D2/duty", json={"on_duty": True})
            assert r.status_code == 200 and r.json() == {
                "id": "L1D2",
                "line": "L1",
                "state": "idle",
                "on_duty": True,
            }
            assert "L1D2" in line.pool.idle()
            assert (
                await op.post("/api/drivers/ZZ/duty", json={"on_duty": True})
            ).status_code == 404
            await next_event(sub, "completed", iid)
        log = await rig.store.duty_log("L1D1")
        assert [str(e.state) for e in log][-1] == "off_duty"


async def test_pause_stops_calling_and_resume_goes_on(tmp_path: Path) -> None:
    async with running_site(tmp_path, kinds=BRAKE) as rig, serving(rig.ops) as api:
        line = rig.site.lines[0]
        async with api.client("operator") as op, subscribed(rig, None) as sub:
            r = await op.post("/api/registrations", json=registration("r-1", plate="鲁B00001"))
            first = r.json()["inspection_id"]
            await next_event(sub, "station_started", first)
            r = await op.post("/api/registrations", json=registration("r-2", plate="鲁B00002"))
            second = r.json()["inspection_id"]
            # It waits in the queue: its call is drawn once the station is free.
            await until(lambda: line.queue_length() == 1)
            r = await op.post("/api/lines/L1/pause", json={"reason": "shift change"})
            assert r.status_code == 200 and r.json()["paused"] is True
            await until(lambda: line.queue_length() == 1)  # held back, first in the queue
            await next_event(sub, "completed", first)  # those on the line finish
            await until(lambda: line.slots[0].state == "free")
            # A free station, idle drivers, a vehicle waiting: still nothing is called.
            called: list[Event] = []
            with rig.site.events.subscribe({"driver_assigned"}) as calls:
                await rig.clock.sleep(60)
                while (ev := calls.get_nowait()) is not None:
                    called.append(ev)
            assert called == []
            lines = (await op.get("/api/lines")).json()
            assert lines[0]["paused"] is True and lines[0]["queue"] == 1
            r = await op.post("/api/lines/L1/resume")
            assert r.status_code == 200 and r.json()["paused"] is False
            await next_event(sub, "driver_assigned", second)
            await next_event(sub, "completed", second)
        # One draw each: the call held back by the pause drew nothing.
        assert [d.inspection_id for d in await rig.store.draws()] == [first, second]


async def test_event_stream(tmp_path: Path) -> None:
    async with (
        running_site(tmp_path, kinds=BRAKE) as rig,
        serving(rig.ops, heartbeat_s=0.2) as api,
        api.client("viewer") as viewer,
        api.client("operator") as op,
    ):
        baseline = len(rig.site.events._subs)
        stalled = api.client("viewer")
        # A client that never reads its stream does not hold up the line.
        stalled_stream = stalled.stream("GET", "/api/events")
        stalled_response = await stalled_stream.__aenter__()
        assert stalled_response.status_code == 200
        frames: list[dict[str, Any]] = []
        comments = 0
        async with viewer.stream("GET", "/api/events") as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            iid = None
            event = None
            async with asyncio.timeout(WITHIN_S):
                async for text in lines:
                    if text.startswith(":"):
                        comments += 1
                    elif text.startswith("event: "):
                        event = text.removeprefix("event: ")
                    elif text.startswith("data: "):
                        frames.append({"event": event, **json.loads(text.removeprefix("data: "))})
                        if event == "line_status" and iid is None:
                            r = await op.post("/api/registrations", json=registration("r-sse"))
                            iid = r.json()["inspection_id"]
                        if event == "completed" and frames[-1]["inspection_id"] == iid:
                            break
        # A stream of one type only: quiet now, so the heartbeat comes.
        async with viewer.stream("GET", "/api/events", params={"types": "completed"}) as quiet:
            async with asyncio.timeout(WITHIN_S):
                async for text in quiet.aiter_lines():
                    assert not text.startswith("event: line_status")
                    if text.startswith(":"):
                        comments += 1
                        break
        assert frames[0]["event"] == "line_status" and frames[0]["status"]["id"] == "L1"
        kinds = [f["event"] for f in frames if f.get("inspection_id") == iid]
        for k in ("queued", "driver_assigned", "station_started", "station_finished", "completed"):
            assert k in kinds, kinds
        assert comments >= 1
        await stalled_stream.__aexit__(None, None, None)
        await stalled.aclose()
        # Both clients gone: their subscriptions are closed.
        await until(lambda: len(rig.site.events._subs) == baseline)
