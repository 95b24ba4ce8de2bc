"""The console in a real browser: Debian's Chromium, headless, driven by Playwright.

One simulated line (brake, headlamp, emission) at the end-to-end time scale, its
console, and one browser for the whole module. An operator signs in, registers
a vehicle through the form, watches it go through the stations on the board
(live, without reloading) and finds its brake plots on its page; aborts another
vehicle; checks a proxy driver out and in; retests a failed vehicle from its
page (the failed items ticked) and finds the retest queued there. A viewer is
offered none of this and is refused when trying anyway. Screenshots of the board and of an inspection
page in both languages go to var/screenshots/ for a person to look at.

Chromium comes from Debian (`apt-get install chromium`, scripts/setup): Playwright
never downloads a browser here. Without /usr/bin/chromium the module is skipped
and says so.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from http_fixtures import Api, password_of, serving
from site_fixtures import TESTER, Rig, running_site
from store_fixtures import make_vin

from linectl.vehicle import parse_vehicle
from sim.vehicles import SimFault, apply_fault, healthy_vehicle_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"
WITHIN_MS = 90_000  # a vehicle through three stations: about 15 s at time scale 20, when idle

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None, reason="no /usr/bin/chromium (scripts/setup installs it)"
    ),
]
playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Rig, Api]]:
    async with running_site(tmp_path_factory.mktemp("console")) as rig, serving(rig.ops) as api:
        yield rig, api


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Any]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        await b.close()


async def signed_in(browser: Any, api: Api, role: str, locale: str) -> Any:
    """A page of a fresh browser context (its own cookies), signed in as `role`."""
    ctx = await browser.new_context(locale=locale, viewport={"width": 1600, "height": 1000})
    page = await ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.js_errors = errors
    await page.goto(f"{api.base}/login")
    await page.fill("input[name=name]", role)
    await page.fill("input[name=password]", password_of(role))
    await page.click("button[type=submit]")
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live", timeout=WITHIN_MS)
    return page


def vehicle_request(n: int, plate: str) -> dict[str, Any]:
    return {
        "request_id": f"browser-{n}",
        "inspection_type": "periodic",
        "vehicle": {
            "vin": make_vin(n),
            "plate": plate,
            "vehicle_class": "M1",
            "fuel": "petrol",
            "axles": 2,
            "parking_axles": [2],
            "curb_mass_kg": 1300,
            "gross_mass_kg": 1750,
            "headlamp_system": 2,
        },
    }


async def test_register_by_form_watch_the_line_and_find_the_curves(
    site: tuple[Rig, Api], browser: Any
) -> None:
    _, api = site
    page = await signed_in(browser, api, "operator", "zh-CN")
    await page.click("nav a[href='/register']")
    await page.fill("#f-plate", "鲁B12345")
    await page.fill("#f-vin", make_vin(777))
    await page.select_option("#f-vehicle_class", "M1")
    await page.select_option("#f-fuel", "petrol")
    await page.fill("#f-axles", "2")
    await page.fill("#f-parking_axles", "2")
    await page.fill("#f-curb_mass_kg", "1280")
    await page.fill("#f-gross_mass_kg", "1700")
    await page.click("form.grid-form button[type=submit]")
    notice = page.locator(".notice.ok")
    await expect(notice).to_contain_text("鲁B12345")
    inspection_id = await notice.get_attribute("data-inspection")

    await page.click("text=在看板上跟踪")
    plate = "鲁B12345"
    brake = page.locator("#line-L1-st-brake")
    await expect(brake).to_contain_text(plate, timeout=WITHIN_MS)
    # The brake forces draw as the run goes, on this page, without a reload.
    await page.wait_for_function(
        """() => {
            const c = document.querySelector("#live-L1-brake polyline.left");
            return c !== null && c.getAttribute("points").split(" ").length > 20;
        }""",
        timeout=WITHIN_MS,
    )
    await page.screenshot(path=str(SCREENSHOTS / "board-zh.png"))
    await expect(brake.locator(".judged")).to_contain_text("B1", timeout=WITHIN_MS)
    await expect(page.locator("#line-L1-st-headlamp")).to_contain_text(plate, timeout=WITHIN_MS)
    await expect(page.locator("#live-L1-headlamp table")).to_contain_text("cd", timeout=WITHIN_MS)
    emission = page.locator("#line-L1-st-emission")
    await expect(emission).to_contain_text(plate, timeout=WITHIN_MS)
    await expect(page.locator("#live-L1-emission .rpm .value")).to_have_text(
        re.compile(r"\d{3,4}"), timeout=WITHIN_MS
    )
    finished = page.locator(f"#recent tr[data-inspection='{inspection_id}']")
    await expect(finished).to_contain_text("合格", timeout=WITHIN_MS)
    await expect(finished.locator(".v")).to_have_attribute("data-verdict", "pass")

    # Found in the list by its plate, and on its page the brake curves per axle.
    await page.click("nav a[href='/inspections']")
    await page.fill("input[name=plate]", "B123")
    await page.click("form.search button[type=submit]")
    await page.click(f"table.list tr[data-inspection='{inspection_id}'] td a >> nth=0")
    await expect(page.locator("h1 .plate")).to_have_text(plate)
    plots = page.locator("svg.brake-plot")
    await expect(plots).to_have_count(3)  # B1, B2 and the parking brake on axle 2
    await expect(plots.first.locator("line.marker")).to_have_count(1)  # APPLY
    await expect(page.locator("svg.idle-plot")).to_have_count(2)
    await expect(page.locator(".overall .v")).to_have_attribute("data-verdict", "pass")
    report = page.locator(f"a[href^='/api/inspections/{inspection_id}/report']")
    r = await page.request.get(api.base + str(await report.get_attribute("href")))
    assert r.status == 200 and "检验报告" in await r.text()
    await page.screenshot(path=str(SCREENSHOTS / "inspection-zh.png"), full_page=True)
    assert page.js_errors == []
    await page.context.close()


async def test_abort_a_vehicle_and_check_a_driver_out(site: tuple[Rig, Api], browser: Any) -> None:
    rig, api = site
    page = await signed_in(browser, api, "operator", "en-US")
    await page.goto(f"{api.base}/lines/L1")  # level 2: the line with its controls
    reply = await rig.ops.register(TESTER, vehicle_request(2, "鲁C22222"))
    inspection_id = reply["inspection_id"]
    station = page.locator("#line-L1-st-brake")
    await expect(station).to_contain_text("鲁C22222", timeout=WITHIN_MS)
    await station.locator("a.danger").click()
    await page.fill("#reason", "owner asked to stop")
    await page.click("button.danger[type=submit]")
    await expect(page.locator("#recent")).to_contain_text("鲁C22222", timeout=WITHIN_MS)
    row = page.locator(f"#recent tr[data-inspection='{inspection_id}'] .v")
    await expect(row).to_have_attribute("data-verdict", "aborted")
    rec = await rig.store.inspection(inspection_id)
    assert str(rec.state) == "aborted" and rec.abort_reason == "owner asked to stop"

    # A proxy driver out and back in: the pool on the board follows.
    driver = page.locator("#line-L1-drivers tr[data-driver='L1D3']")
    await expect(driver).to_have_attribute(
        "data-state", re.compile("idle|walking_back"), timeout=WITHIN_MS
    )
    await driver.locator("button", has_text="Check out").click()
    await expect(driver).to_have_attribute("data-state", "off_duty")
    await expect(driver).to_contain_text("Off duty")
    assert rig.site.lines[0].pool.drivers["L1D3"].state == "off_duty"
    await driver.locator("button", has_text="Check in").click()
    await expect(driver).to_have_attribute("data-state", "idle")
    actions = [(e.action, e.outcome, e.user) for e in await rig.store.journal(30)]
    assert ("abort", "ok", "operator") in actions and ("duty", "ok", "operator") in actions
    assert page.js_errors == []
    await page.context.close()


async def test_a_viewer_can_do_none_of_it(site: tuple[Rig, Api], browser: Any) -> None:
    rig, api = site
    page = await signed_in(browser, api, "viewer", "en-US")
    await page.goto(f"{api.base}/lines/L1")
    board = page.locator("#board")
    await expect(board.locator("#line-L1-drivers tr")).to_have_count(4)
    assert await board.locator("form, a.danger, button").count() == 0
    assert await page.locator("nav a[href='/register']").count() == 0
    await page.screenshot(path=str(SCREENSHOTS / "board-en.png"))

    csrf = await page.locator("meta[name=csrf-token]").get_attribute("content")
    queued = await rig.ops.register(TESTER, vehicle_request(3, "鲁D33333"))
    for path, form in (
        ("/drivers/L1D1/duty", {"on_duty": "false"}),
        ("/lines/L1/pause", {}),
        (f"/inspections/{queued['inspection_id']}/abort", {"reason": "try"}),
        ("/register", {"plate": "鲁E44444"}),
    ):
        r = await page.request.post(f"{api.base}{path}", form={"csrf_token": csrf, **form})
        assert r.status == 403, path
        assert "forbidden" in await r.text()
    await page.goto(f"{api.base}/register")
    await expect(page.locator(".refusal")).to_have_attribute("data-code", "forbidden")
    assert rig.site.lines[0].pool.drivers["L1D1"].state != "off_duty"
    assert not rig.site.lines[0].paused
    assert str((await rig.store.inspection(queued["inspection_id"])).state) != "aborted"

    # The English inspection page of the vehicle that passed.
    await page.goto(f"{api.base}/inspections?verdict=pass")
    await page.click("table.list tbody tr >> nth=0 >> td a >> nth=0")
    await expect(page.locator("svg.brake-plot").first).to_be_visible()
    assert await page.locator("a.danger, form.act").count() == 0
    await page.screenshot(path=str(SCREENSHOTS / "inspection-en.png"), full_page=True)
    assert page.js_errors == []
    await page.context.close()
    await rig.ops.abort(TESTER, queued["inspection_id"], "end of test")


async def test_an_operator_retests_a_failed_vehicle_from_its_page(
    site: tuple[Rig, Api], browser: Any
) -> None:
    rig, api = site
    req = vehicle_request(4, "鲁F55555")
    sv = healthy_vehicle_for(req["vehicle"]["plate"], parse_vehicle(req["vehicle"]))
    apply_fault(sv, SimFault("weak_axle", 2))
    rig.sim.world.add(sv)
    with rig.site.events.subscribe({"completed", "aborted"}) as sub:
        iid = (await rig.ops.register(TESTER, req))["inspection_id"]
        async with asyncio.timeout(WITHIN_MS / 1000):
            while (await sub.get()).inspection_id != iid:
                pass
    assert str((await rig.store.inspection(iid)).verdict) == "fail"
    await rig.ops.pause(TESTER, "L1", "the retest stays queued while the test looks")
    try:
        page = await signed_in(browser, api, "operator", "zh-CN")
        await page.goto(f"{api.base}/inspections/{iid}")
        await expect(page.locator("table.revisions tr[data-revision='1']")).to_be_visible()
        await page.click("a.retest")  # 复检…
        # The failed items ticked (B1 too: BT needs every axle), the rest offered.
        items = page.locator("#f-items input[type=checkbox]")
        ticked = await items.evaluate_all("es => es.filter(e => e.checked).map(e => e.value)")
        assert ticked == ["B1", "B2", "BT"]
        assert "H1" in await items.evaluate_all("es => es.map(e => e.value)")
        await page.screenshot(path=str(SCREENSHOTS / "retest-zh.png"), full_page=True)
        await page.uncheck("#f-items input[value=B1]")
        await page.click("form.grid-form button[type=submit]")
        # Back on the inspection page: the retest queued, as revision 2.
        await expect(page).to_have_url(f"{api.base}/inspections/{iid}")
        queued = page.locator(".retest-pending")
        await expect(queued).to_have_attribute("data-state", "queued")
        await expect(queued).to_contain_text("排队中")
        await expect(queued).to_contain_text("B2, BT")
        await expect(page.locator("table.revisions tr[data-revision='2']")).to_have_attribute(
            "data-state", "queued"
        )
        assert await page.locator("a.retest").count() == 0
        pending = (await rig.store.inspection(iid)).pending_retest()
        assert pending is not None and pending.items == ["B2", "BT"]
        await page.screenshot(path=str(SCREENSHOTS / "inspection-retest-zh.png"), full_page=True)
        assert page.js_errors == []
        await page.context.close()

        # A viewer sees the queued revision and no retest button.
        viewer = await signed_in(browser, api, "viewer", "en-US")
        await viewer.goto(f"{api.base}/inspections/{iid}")
        await expect(viewer.locator(".retest-pending")).to_contain_text("Queued")
        assert await viewer.locator("a.retest, a[href$='/retest']").count() == 0
        assert viewer.js_errors == []
        await viewer.context.close()
    finally:
        await rig.ops.abort(TESTER, iid, "end of test")
        await rig.ops.resume(TESTER, "L1", "end of test")
