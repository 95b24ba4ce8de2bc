"""The console's levels, wall screen, control of a line and warnings, in a real browser.

One brake-only line, its console with a one-second heartbeat and four-minute
sessions (so the warning before a session ends shows at once). The overview
offers no control, a line's page does; the wall screen (`?kiosk=1`) has no
menu and no control whoever signed in; a station's page shows its limits.
Two operators: the first takes control of the line by acting on it, the
second sees who holds it, is refused, and takes it over with a reason, which
the journal keeps. Last, the server stops: the board says its data is stale,
with its age, and greys it out.

Chromium comes from Debian, as in tests/test_console_browser.py.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from http_fixtures import Api, registration, serving
from site_fixtures import TESTER, running_site
from test_console_browser import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    SCREENSHOTS,
    WITHIN_MS,
    signed_in,
)

from linectl.ops.auth import SessionPolicy

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="no /usr/bin/chromium (scripts/setup installs it)"
)
playwright_api = pytest.importorskip("playwright.async_api")
expect = playwright_api.expect
SOON_MS = 15_000


async def browser_session() -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        b = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            await b.close()


async def test_levels_kiosk_control_and_the_stale_notice(tmp_path: Path) -> None:
    policy = SessionPolicy(idle=timedelta(minutes=4))
    async with running_site(tmp_path, kinds=("brake",)) as rig:
        async for browser in browser_session():
            async with serving(rig.ops, policy=policy, heartbeat_s=1.0) as api:
                await levels_and_control(rig, api, browser)
                wall = await signed_in(browser, api, "viewer", "en-US")
                await wall.goto(f"{api.base}/?kiosk=1")
                await expect(wall.locator("#conn")).to_have_attribute("data-state", "live")
            # The server has stopped: the wall says its data is old, and how old.
            notice = wall.locator("#stale-notice")
            await expect(notice).to_be_visible(timeout=SOON_MS)
            await expect(notice).to_contain_text(re.compile(r"NOT LIVE.*\d+ s"))
            await expect(wall.locator("body")).to_have_class(re.compile(r"\bstale\b"))
            await expect(wall.locator("#conn")).to_have_attribute("data-state", "stale")
            first = await notice.text_content()
            await expect(notice).not_to_have_text(first or "", timeout=SOON_MS)  # the age grows
            await wall.screenshot(path=str(SCREENSHOTS / "wall-stale-en.png"))
            assert wall.js_errors == []


async def levels_and_control(rig: Any, api: Api, browser: Any) -> None:
    ana = await signed_in(browser, api, "operator", "en-US")
    # Level 1: exceptions only, nothing to press.
    await expect(ana.locator("#line-L1-exc")).to_contain_text("Normal")
    assert await ana.locator("#board form, #board button, #board a.danger").count() == 0
    # The session ends in under five minutes: the page says so, and when.
    warning = ana.locator("#session-warning")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text(re.compile(r"ends in [34]:\d\d"))

    # Level 2: the line with its controls. Acting on it takes control of it.
    await ana.goto(f"{api.base}/lines/L1")
    await expect(ana.locator("#conn")).to_have_attribute("data-state", "live")
    await ana.locator("#line-L1-head button", has_text="Pause line").click()
    await expect(ana.locator("#line-L1-head")).to_have_attribute("data-paused", "true")
    control = ana.locator("#line-L1-ctl")
    await expect(control).to_have_class(re.compile(r"\bmine\b"))
    await expect(control).to_contain_text("operator")
    # A paused line is an exception on the overview, live.
    bo = await signed_in(browser, api, "admin", "en-US")
    await expect(bo.locator("#line-L1-exc .exc[data-kind='paused']")).to_be_visible()
    await bo.screenshot(path=str(SCREENSHOTS / "overview-en.png"))

    # Another operator sees who holds the line, is refused, and takes it over.
    await bo.goto(f"{api.base}/lines/L1")
    theirs = bo.locator("#line-L1-ctl")
    await expect(theirs).to_contain_text("operator")
    await expect(theirs).not_to_have_class(re.compile(r"\bmine\b"))
    await bo.locator("#line-L1-head button", has_text="Resume line").click()
    await expect(bo.locator("#toast")).to_contain_text("controlled by operator")
    assert rig.site.lines[0].paused
    await theirs.locator("input[name=reason]").fill("shift change 换班")
    await theirs.locator("button", has_text="Take over").click()
    await expect(theirs).to_have_class(re.compile(r"\bmine\b"))
    await expect(control).to_contain_text("admin")  # the first operator's page follows
    await expect(control).not_to_have_class(re.compile(r"\bmine\b"))
    await ana.screenshot(path=str(SCREENSHOTS / "line-taken-over-en.png"))
    await bo.locator("#line-L1-head button", has_text="Resume line").click()
    await expect(bo.locator("#line-L1-head")).to_have_attribute("data-paused", "false")
    taken = [e for e in await rig.store.journal(20, action="control") if e.reason]
    assert taken[0].user == "admin" and taken[0].reason == "shift change 换班"
    assert taken[0].changes["holder"]["from"]["user"] == "operator"

    # Level 3: a station's live area and the limits it is judged against.
    await bo.goto(f"{api.base}/stations/L1/brake")
    await expect(bo.locator(".limits")).to_contain_text("GB 7258")
    await expect(bo.locator("#live-L1-brake")).to_have_attribute(
        "data-bands", re.compile("imbalance")
    )
    reply = await rig.ops.register(TESTER, registration("lv-41", plate="鲁L41414"))
    assert reply["accepted"], reply
    # The brake forces live, and the left-right difference against its largest allowed.
    await expect(bo.locator("#line-L1-st-brake")).to_contain_text("鲁L41414", timeout=WITHIN_MS)
    await bo.wait_for_function(
        """() => {
            const p = document.querySelector("#live-L1-brake .t-imb polyline.value");
            const lim = document.querySelector("#live-L1-brake .t-imb line.limit");
            return p !== null && lim !== null && p.getAttribute("points").split(" ").length > 5;
        }""",
        timeout=WITHIN_MS,
    )
    await bo.screenshot(path=str(SCREENSHOTS / "station-en.png"))

    # The wall screen: no menu, no control, even for an operator with control.
    await bo.goto(f"{api.base}/lines/L1?kiosk=1")
    await expect(bo.locator("#conn")).to_have_attribute("data-state", "live")
    await expect(bo.locator("#line-L1-drivers tr")).to_have_count(4)
    assert await bo.locator("header nav").count() == 0
    assert await bo.locator("#board form, #board button").count() == 0
    assert ana.js_errors == [] and bo.js_errors == []
    await ana.context.close()
    await bo.context.close()
