"""The console's pages and forms over real HTTP, against a running simulated line (no
browser here: tests/test_console_browser.py drives Chromium): what each role is
offered and refused, the registration form's refusals field by field, HTML errors
from forms, the language, and the board's stream rendering each fragment once per
kind of browser."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_fixtures import Api, serving
from site_fixtures import running_site
from store_fixtures import make_vin

from linectl.http.board import BoardHub
from linectl.ops.actor import Actor

BRAKE = ("brake",)
WITHIN_S = 60.0


def good_form(csrf: str, plate: str = "鲁G12345", **over: str) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf_token": csrf,
        "request_id": f"form-{plate}",
        "inspection_type": "periodic",
        "plate": plate,
        "vin": make_vin(183294),
        "vehicle_class": "M1",
        "fuel": "petrol",
        "axles": "2",
        "parking_axles": "2",
        "curb_mass_kg": "1320",
        "gross_mass_kg": "1750",
        "headlamp_system": "2",
        "max_design_speed_kmh": "180",
        "items": ["B1", "B2"],
    }
    form.update(over)
    return form


def errors_of(html: str) -> dict[str, str]:
    """Field name -> the refusal shown at it."""
    found = {}
    for m in re.finditer(
        r'<div class="field has-error" data-field="([^"]+)">.*?<p class="field-error"[^>]*>(.*?)</p>',
        html,
        re.S,
    ):
        found[m.group(1)] = re.sub(r"<[^>]+>", " ", m.group(2))
    return found


async def frames(stream: httpx.Response) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    event = None
    async for line in stream.aiter_lines():
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: ") and event:
            yield event, json.loads(line[6:])
            event = None


@asynccontextmanager
async def closing(*clients: httpx.AsyncClient) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for c in clients:
            await c.aclose()


@pytest.fixture
async def console(tmp_path: Path) -> AsyncIterator[tuple[Any, Api]]:
    async with running_site(tmp_path, kinds=BRAKE) as rig, serving(rig.ops) as api:
        yield rig, api


async def test_what_each_role_is_offered_and_refused(console: tuple[Any, Api]) -> None:
    rig, api = console
    viewer, vcsrf = await api.signed_in("viewer")
    operator, ocsrf = await api.signed_in("operator")
    async with closing(viewer, operator):
        page = (await viewer.get("/lines/L1", headers={"Accept-Language": "en"})).text
        assert 'id="line-L1-queue"' in page and 'id="line-L1-drivers"' in page
        assert "/duty" not in page and "/pause" not in page and "Register a vehicle" not in page
        page = (await operator.get("/lines/L1", headers={"Accept-Language": "en"})).text
        assert page.count("/duty") == 4 and "/lines/L1/pause" in page and "/register" in page
        assert "/lines/L1/control" in page  # nobody holds the line yet: take it
        # The overview (level 1) offers no control at all, whoever looks.
        page = (await operator.get("/", headers={"Accept-Language": "en"})).text
        assert 'id="line-L1-exc"' in page and 'id="line-L1-head"' in page
        assert '<form class="act"' not in page and "/abort" not in page
        assert "choose" not in (await operator.get("/register")).text.lower().replace(
            "nobody chooses", ""
        )

        # A viewer's form posts are refused by the operations, as HTML pages.
        for path, data in (
            ("/drivers/L1D1/duty", {"on_duty": "false"}),
            ("/lines/L1/pause", {}),
            ("/register", good_form(vcsrf)),
        ):
            r = await viewer.post(path, data={"csrf_token": vcsrf, **data})
            assert r.status_code == 403, (path, r.text)
            assert r.headers["content-type"].startswith("text/html")
            assert 'data-code="forbidden"' in r.text
        assert (await viewer.get("/register")).status_code == 403
        assert rig.site.lines[0].pool.drivers["L1D1"].state == "idle"
        assert not rig.site.lines[0].paused

        # Without the session's CSRF token a form is refused, as a page too.
        r = await operator.post("/drivers/L1D1/duty", data={"on_duty": "false"})
        assert r.status_code == 403 and 'data-code="csrf"' in r.text

        r = await operator.post(
            "/drivers/L1D1/duty", data={"csrf_token": ocsrf, "on_duty": "false", "next": "/"}
        )
        assert r.status_code == 303 and r.headers["location"] == "/"
        assert rig.site.lines[0].pool.drivers["L1D1"].state == "off_duty"
        r = await operator.post("/drivers/L1D9/duty", data={"csrf_token": ocsrf, "on_duty": "true"})
        assert r.status_code == 404 and "L1D9" in r.text
        r = await operator.post("/lines/L1/pause", data={"csrf_token": ocsrf})
        assert r.status_code == 303 and rig.site.lines[0].paused
        r = await operator.post("/lines/L1/resume", data={"csrf_token": ocsrf})
        assert r.status_code == 303 and not rig.site.lines[0].paused

        journal = await rig.store.journal(20)
        done = [(e.action, e.outcome, e.user) for e in journal]
        assert ("duty", "ok", "operator") in done and ("pause", "ok", "operator") in done
        assert ("duty", "denied", "viewer") in done and ("register", "denied", "viewer") in done


async def test_registration_form_names_every_bad_field(console: tuple[Any, Api]) -> None:
    rig, api = console
    operator, csrf = await api.signed_in("operator")
    async with closing(operator):
        bad = good_form(
            csrf,
            request_id="form-bad",
            plate="鲁G1234",
            vin="LSVAU2180N2183294",
            axles="two",
            parking_axles="3",
            curb_mass_kg="1800",
            gross_mass_kg="1700",
            fuel="",
        )
        r = await operator.post("/register", data=bad, headers={"Accept-Language": "en"})
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
        errors = errors_of(r.text)
        assert set(errors) == {
            "vehicle.plate",
            "vehicle.vin",
            "vehicle.fuel",
            "vehicle.axles",
            "vehicle.gross_mass_kg",
        }, errors
        # The words of the one validation, the same as over MQTT.
        assert "check digit (position 9) is 0, should be X" in errors["vehicle.vin"]
        assert "Not a valid VIN" in errors["vehicle.vin"]
        assert "fuel is required" in errors["vehicle.fuel"]
        assert (
            "gross mass 1700 kg is below the curb mass 1800 kg" in errors["vehicle.gross_mass_kg"]
        )
        assert 'value="鲁G1234"' in r.text  # what was typed stays
        # The refusal is the operation's, journalled once, and nothing was created.
        assert await rig.store.list_inspections() == []
        refusals = [e for e in await rig.store.journal(50) if e.action == "register"]
        assert [e.outcome for e in refusals] == ["refused"]
        assert refusals[0].changes["error"]["field"] == "vehicle.vin"

        r = await operator.post("/register", data=bad, headers={"Accept-Language": "zh-CN"})
        assert "车辆识别代号无效" in errors_of(r.text)["vehicle.vin"]

        r = await operator.post("/register", data=good_form(csrf))
        assert r.status_code == 303, r.text
        inspection_id = r.headers["location"].split("done=")[1]
        page = await operator.get(r.headers["location"], headers={"Accept-Language": "en"})
        assert f'data-inspection="{inspection_id}"' in page.text and "鲁G12345" in page.text
        rec = await rig.store.inspection(inspection_id)
        assert rec.plate == "鲁G12345" and rec.items == ["B1", "B2"]
        # The same form posted twice (a double click) registers once.
        r = await operator.post("/register", data=good_form(csrf))
        assert r.headers["location"].endswith(inspection_id)
        assert len(await rig.store.list_inspections()) == 1


async def test_language_from_browser_then_account(console: tuple[Any, Api]) -> None:
    rig, api = console
    viewer, csrf = await api.signed_in("viewer")
    async with closing(viewer):
        en = (await viewer.get("/inspections", headers={"Accept-Language": "en-GB,en;q=0.9"})).text
        zh = (await viewer.get("/inspections", headers={"Accept-Language": "zh-CN,zh;q=0.9"})).text
        assert '<html lang="en">' in en and ">Inspections<" in en
        assert '<html lang="zh-CN">' in zh and ">检验记录<" in zh
        assert '<html lang="zh-CN">' in (await viewer.get("/inspections")).text  # the default
        r = await viewer.post("/language", data={"csrf_token": csrf, "lang": "zh", "next": "/"})
        assert r.status_code == 303
        # The account's choice wins over the browser's, in every later session too.
        page = (await viewer.get("/", headers={"Accept-Language": "en"})).text
        assert ">监控看板<" in page
        assert (await rig.store.account("viewer")).locale == "zh"


async def test_board_stream_renders_each_fragment_once_per_kind_of_browser(
    console: tuple[Any, Api],
) -> None:
    rig, api = console
    hub: BoardHub = api.server.app.state.board
    clients = [await api.signed_in(r) for r in ("operator", "operator", "operator", "viewer")]
    streams = []
    try:
        for c, _ in clients:
            cm = c.stream("GET", "/board/events", headers={"Accept-Language": "en"})
            streams.append((cm, await cm.__aenter__()))
        iters = [frames(s) for _, s in streams]

        async def fragment(it: AsyncIterator[tuple[str, dict[str, Any]]], fid: str) -> str:
            async for event, data in it:
                if event == "frag" and data["id"] == fid and "鲁A00001" in data["html"]:
                    return str(data["html"])
            raise AssertionError("stream ended")

        await asyncio.sleep(0.5)  # every stream has its first frames
        before = hub.renders
        reply = await rig.ops.register(
            Actor.system("test"),
            {
                "request_id": "r1",
                "inspection_type": "periodic",
                "vehicle": {
                    "vin": make_vin(1),
                    "plate": "鲁A00001",
                    "vehicle_class": "M1",
                    "fuel": "petrol",
                    "axles": 2,
                    "parking_axles": [2],
                    "curb_mass_kg": 1300,
                    "gross_mass_kg": 1700,
                    "headlamp_system": 2,
                },
                "items": ["B1"],
            },
        )
        assert reply["accepted"]
        async with asyncio.timeout(WITHIN_S):
            htmls = await asyncio.gather(*(fragment(it, "line-L1-st-brake") for it in iters))
        assert "/abort" in htmls[0] and htmls[0] == htmls[1] == htmls[2]
        assert "/abort" not in htmls[3]  # the viewer's kind has no buttons
        # Four browsers, two kinds: every fragment rendered twice per change, not four times.
        assert hub.clients == 4
        rendered = hub.renders - before
        assert rendered > 0 and rendered % 2 == 0
        live = None
        async with asyncio.timeout(WITHIN_S):
            async for event, data in iters[3]:
                if event == "live" and data["kind"] == "brake" and data["left_n"]:
                    live = data
                    break
        assert live is not None and live["station"] == "brake" and live["plate"] == "鲁A00001"
        assert live["axle"] == 1 and len(live["left_n"]) <= 25
    finally:
        for cm, _ in streams:
            await cm.__aexit__(None, None, None)
        for c, _ in clients:
            await c.aclose()
    async with asyncio.timeout(WITHIN_S):
        while hub.clients:  # noqa: ASYNC110 - streams end as their clients go
            await asyncio.sleep(0.05)
