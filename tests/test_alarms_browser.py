"""The alarm banner and the alarm list in a real browser (Debian's Chromium, Playwright).

An operator watches the board; the simulated gas analyser goes deaf; the
banner appears on its own (no reload) with the alarm's priority as a shape
and a number besides its colour, and it sounds; the operator acknowledges it
with a comment from the banner, which goes quiet; the alarm list shows who
acknowledged it and why, and offers silence and shelve. A viewer sees the
banner but is offered no button.
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
from site_fixtures import Rig, running_site

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
WITHIN_MS = 20_000
GAS = "gas-L1"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"

pytestmark = [
    pytest.mark.asyncio(loop_scope="module"),
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="no /usr/bin/chromium"),
]
playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Rig, Api]]:
    async with running_site(tmp_path_factory.mktemp("alarms-ui")) as rig, serving(rig.ops) as api:
        yield rig, api


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def browser() -> AsyncIterator[Any]:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        await b.close()


async def signed_in(browser: Any, api: Api, role: str, locale: str = "zh-CN") -> Any:
    ctx = await browser.new_context(locale=locale, viewport={"width": 1400, "height": 900})
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


async def test_the_banner_appears_by_itself_and_is_acknowledged_from_it(
    site: tuple[Rig, Api], browser: Any
) -> None:
    rig, api = site
    page = await signed_in(browser, api, "operator")
    viewer = await signed_in(browser, api, "viewer", "en-US")
    banner = page.locator("#alarm-banner")
    await expect(banner).to_be_hidden()
    assert await page.evaluate("document.body.dataset.alarmSound || ''") == ""

    rig.sim.emulators[GAS].mute = True
    try:
        await expect(banner).to_be_visible(timeout=WITHIN_MS)
        # Priority by shape and number, not colour alone; the condition in Chinese.
        await expect(banner.locator(".prio")).to_contain_text("▲ 1")
        await expect(banner).to_contain_text("设备无应答")
        await expect(banner).to_contain_text(GAS)
        await expect(banner.locator(".alarm-count")).to_contain_text("1")
        await expect(page.locator("body")).to_have_attribute("data-alarm-sound", "high")
        await page.screenshot(path=str(SCREENSHOTS / "alarm-banner-zh.png"))
        # The viewer's banner shows it too, with nothing to press.
        vbanner = viewer.locator("#alarm-banner")
        await expect(vbanner).to_be_visible(timeout=WITHIN_MS)
        await expect(vbanner).to_contain_text("Device not answering")
        assert await vbanner.locator("button").count() == 0

        await banner.locator("input[name=comment]").fill("已通知维修")
        await banner.locator(".alarm-ack button").click()
        await expect(banner).to_be_hidden(timeout=WITHIN_MS)
        await expect(page.locator("body")).to_have_attribute("data-alarm-sound", "")
        alarm = next(a for a in rig.site.alarms.open_alarms() if a.device == GAS)
        assert alarm.state == "acked" and alarm.acked_by == "operator"
        assert alarm.comment == "已通知维修"

        await page.click("nav a[href='/alarms']")
        row = page.locator(f"#alarm-{alarm.id}")
        await expect(row).to_contain_text("已确认")
        await expect(row).to_contain_text("已通知维修")
        await expect(row.locator(".alarm-shelve button")).to_be_visible()
        await expect(row.locator(".alarm-silence button")).to_have_count(0)  # acked: quiet
        await page.screenshot(path=str(SCREENSHOTS / "alarms-zh.png"), full_page=True)
    finally:
        rig.sim.emulators[GAS].mute = False
    # It closes on return; the list filtered by state finds it with its ack.
    with rig.site.events.subscribe({"alarm_summary"}) as sub:
        async with asyncio.timeout(WITHIN_MS / 1000):
            while rig.site.alarms.open_alarms():
                await sub.get()
    await page.goto(f"{api.base}/alarms?state=closed")
    await expect(page.locator(f"#alarm-{alarm.id}")).to_contain_text(
        "已通知维修", timeout=WITHIN_MS
    )
    await page.select_option("select[name=state]", "active")
    await page.click("form.search button[type=submit]")
    await expect(page.locator(f"#alarm-{alarm.id}")).to_have_count(0)
    await expect(page.locator(".top-alarms")).to_contain_text(GAS)
    assert re.search(r"state=active", page.url)
    assert not page.js_errors and not viewer.js_errors, page.js_errors + viewer.js_errors
