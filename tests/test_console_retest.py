"""The console's retest form over real HTTP (the browser's turn is in
tests/test_console_browser.py), against a running simulated brake line: a vehicle
fails, an operator finds the retest button on its page, the form offers the failed
items ticked, refusals come back in words (the operation's own message under a
headline in the reader's language), an accepted retest shows queued on the
inspection page, and once it has run the page lists both revisions. A viewer is
offered no button and is refused the form; an admin is offered it."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
from http_fixtures import registration, serving
from site_fixtures import TESTER, running_site

from linectl.events import Subscription
from linectl.vehicle import parse_vehicle
from sim.vehicles import SimFault, apply_fault, healthy_vehicle_for

WITHIN_S = 60.0  # real seconds: generous, the machine is shared
EN = {"Accept-Language": "en"}
ZH = {"Accept-Language": "zh-CN"}


def ticked(html: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="items" value="(\w+)" checked>', html)


def offered(html: str) -> list[str]:
    return re.findall(r'<input type="checkbox" name="items" value="(\w+)"', html)


def form_token(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]+)"', html)
    assert m, html
    return m.group(1)


def revision_rows(html: str) -> list[tuple[str, str]]:
    """(revision, state) of each row of the page's revision history."""
    table = re.search(r'<table class="grid revisions">(.*?)</table>', html, re.S)
    assert table, html
    return re.findall(r'<tr data-revision="(\d+)" data-state="(\w+)">', table.group(1))


async def finished(sub: Subscription, inspection_id: str) -> None:
    async with asyncio.timeout(WITHIN_S):
        while True:
            ev = await sub.get()
            if ev.inspection_id == inspection_id and ev.type in ("completed", "aborted"):
                return


async def request_id(client: httpx.AsyncClient, iid: str) -> str:
    """The request_id of a fresh retest form, as a browser holds it until posted."""
    return form_token((await client.get(f"/inspections/{iid}/retest")).text, "request_id")


async def post_retest(
    client: httpx.AsyncClient,
    csrf: str,
    iid: str,
    items: list[str],
    headers: dict[str, str],
    rid: str | None = None,
) -> httpx.Response:
    data: dict[str, Any] = {
        "csrf_token": csrf,
        "request_id": rid or await request_id(client, iid),
        "items": items,
    }
    return await client.post(f"/inspections/{iid}/retest", data=data, headers=headers)


async def test_an_operator_retests_a_failed_inspection_from_its_page(tmp_path: Path) -> None:
    req = registration("r-form")
    sv = healthy_vehicle_for(req["vehicle"]["plate"], parse_vehicle(req["vehicle"]))
    apply_fault(sv, SimFault("weak_axle", 2))
    async with running_site(tmp_path, kinds=("brake",)) as rig, serving(rig.ops) as api:
        operator, csrf = await api.signed_in("operator")
        viewer, vcsrf = await api.signed_in("viewer")
        rig.sim.world.add(sv)
        with rig.site.events.subscribe({"completed", "aborted"}) as sub:
            reply = await rig.ops.register(TESTER, req)
            iid = reply["inspection_id"]
            await finished(sub, iid)
            assert str((await rig.store.inspection(iid)).verdict) == "fail"
            # The retest stays queued while the test looks at it.
            await rig.ops.pause(TESTER, "L1", "test")

            # The button for the operator; none for the viewer, who is refused the form.
            page = (await operator.get(f"/inspections/{iid}", headers=EN)).text
            assert f'href="/inspections/{iid}/retest"' in page and "Retest…" in page
            admin, _ = await api.signed_in("admin")  # an admin may do what an operator does
            page = (await admin.get(f"/inspections/{iid}", headers=EN)).text
            assert f'href="/inspections/{iid}/retest"' in page
            await admin.aclose()
            page = (await viewer.get(f"/inspections/{iid}", headers=EN)).text
            assert "/retest" not in page and 'class="grid revisions"' in page
            r = await viewer.get(f"/inspections/{iid}/retest")
            assert r.status_code == 403 and 'data-code="forbidden"' in r.text
            r = await viewer.post(
                f"/inspections/{iid}/retest",
                data={"csrf_token": vcsrf, "request_id": "viewer-try", "items": ["B2"]},
            )
            assert r.status_code == 403 and 'data-code="forbidden"' in r.text

            # The form: every item of the inspection, the failed ones ticked (B1 with BT).
            form = await operator.get(f"/inspections/{iid}/retest", headers=ZH)
            assert form.status_code == 200 and "复检" in form.text
            assert offered(form.text) == ["B1", "B2", "B0", "BT"]
            assert ticked(form.text) == ["B1", "B2", "BT"]
            assert req["vehicle"]["vin"] in form.text and 'name="vin"' not in form.text

            # Refused, in words: nothing ticked, and an item the inspection does not have.
            r = await post_retest(operator, csrf, iid, [], EN)
            assert r.status_code == 422 and 'data-code="invalid_items"' in r.text
            assert "Not items of this vehicle" in r.text
            assert "items must be a non-empty list of the inspection&#39;s items" in r.text
            r = await post_retest(operator, csrf, iid, ["B2", "H1"], ZH)
            assert r.status_code == 422 and 'data-code="invalid_items"' in r.text
            assert "未受理：" in r.text and "检验项目不适用于此车" in r.text
            assert f"item(s) H1 are not items of inspection {iid}" in r.text
            assert ticked(r.text) == ["B2"]  # what was ticked stays ticked
            assert (await rig.store.inspection(iid)).pending_retest() is None

            # Accepted: back to the inspection page, which shows the retest queued.
            other_form = await request_id(operator, iid)  # a second operator's, open meanwhile
            first = await request_id(operator, iid)
            r = await post_retest(operator, csrf, iid, ["B2", "BT"], EN, rid=first)
            assert r.status_code == 303 and r.headers["location"] == f"/inspections/{iid}"
            rec = await rig.store.inspection(iid)
            pending = rec.pending_retest()
            assert pending is not None and pending.items == ["B2", "BT"]
            assert pending.revision == 2 and str(rec.state) == "queued"
            page = (await operator.get(r.headers["location"], headers=EN)).text
            assert 'class="notice ok retest-pending" role="status" data-revision="2"' in page
            assert revision_rows(page) == [("1", "completed"), ("2", "queued")]
            assert "Retest…" not in page  # one retest at a time
            journal = [(e.action, e.outcome, e.user) for e in await rig.store.journal(50)]
            assert ("retest", "ok", "operator") in journal
            assert ("retest", "refused", "operator") in journal
            assert ("retest", "denied", "viewer") in journal

            # The same form posted again (a double click) is the same retest, once.
            r = await post_retest(operator, csrf, iid, ["B2", "BT"], EN, rid=first)
            assert r.status_code == 303 and len((await rig.store.inspection(iid)).retests) == 1
            # A second one, asked before the first has run, is refused with the reason.
            r = await post_retest(operator, csrf, iid, ["B2"], EN, rid=other_form)
            assert r.status_code == 422 and 'data-code="not_retestable"' in r.text
            assert "Cannot be retested now" in r.text and "is already queued" in r.text
            assert '<form method="post" action="/inspections/' not in r.text

            # It runs: the page lists both revisions as published, each with its code.
            await rig.ops.resume(TESTER, "L1", "test")
            await finished(sub, iid)
        page = (await viewer.get(f"/inspections/{iid}", headers=EN)).text
        assert revision_rows(page) == [("1", "completed"), ("2", "completed")]
        assert "retest-pending" not in page
        published = await rig.store.published_results(iid)
        assert [p.revision for p in published] == [1, 2]
        for p in published:
            assert p.sha256()[:12] in page
        assert re.search(r'data-revision="2".*?data-item="B2".*?data-item="BT"', page, re.S)
        # The list says which revision its verdict is.
        listed = (await viewer.get("/inspections", headers=ZH)).text
        assert '<small class="rev" data-revision="2">第2版</small>' in listed
        await operator.aclose()
        await viewer.aclose()


async def test_no_retest_offered_once_the_site_takes_none(tmp_path: Path) -> None:
    """With `retest_within_days`, the button goes when the time is up, and the page
    says why; a form opened before then is refused with the reason."""
    window_s = 30.0  # clock seconds: about 1.5 s real at the end-to-end time scale
    async with (
        running_site(
            tmp_path,
            kinds=("brake",),
            adjust=lambda cfg: cfg.model_copy(update={"retest_within_days": window_s / 86400}),
        ) as rig,
        serving(rig.ops) as api,
    ):
        operator, csrf = await api.signed_in("operator")
        await rig.ops.pause(TESTER, "L1", "test")
        iid = (await rig.ops.register(TESTER, registration("r-late")))["inspection_id"]
        await rig.ops.abort(TESTER, iid, "owner left")  # aborted counts as incomplete
        page = (await operator.get(f"/inspections/{iid}", headers=EN)).text
        assert f'href="/inspections/{iid}/retest"' in page and "retest-refusal" not in page
        form = (await operator.get(f"/inspections/{iid}/retest", headers=EN)).text
        assert "Retest until" in form and ticked(form) == ["B1", "B2", "B0", "BT"]
        rid = form_token(form, "request_id")

        await rig.clock.sleep(window_s + 1)
        page = (await operator.get(f"/inspections/{iid}", headers=ZH)).text
        assert "/retest" not in page
        assert 'data-code="retest_expired"' in page and "已超过复检期限" in page
        r = await operator.get(f"/inspections/{iid}/retest", headers=EN)
        assert r.status_code == 409 and 'data-code="retest_expired"' in r.text
        assert "Too late for a retest" in r.text and 'name="items"' not in r.text
        r = await post_retest(operator, csrf, iid, ["B1"], EN, rid=rid)
        assert r.status_code == 422 and 'data-code="retest_expired"' in r.text
        assert f"retests of inspection {iid} were taken until" in r.text
        assert (await rig.store.inspection(iid)).pending_retest() is None
        await operator.aclose()
