"""Control of a line: one console session at a time acts on it; another is refused
(naming the holder) until it takes control with a reason; scripts' tokens are not
held back; control ends with the session; each change is journalled. And the pages
and calls around it: who holds a line, device diagnostics by role, renewing a session."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from http_fixtures import serving
from site_fixtures import running_site

from linectl.ops.actor import Actor, Role, Terminal
from linectl.ops.control import ControlDesk
from linectl.ops.errors import Conflict, Invalid

BRAKE = ("brake",)


def console(name: str, session: str, role: Role = Role.OPERATOR) -> Actor:
    expires = datetime.now(UTC) + timedelta(hours=1)
    return Actor(name, role, Terminal("http", "10.0.0.9", session), expires_at=expires)


async def test_one_session_controls_a_line(tmp_path: Path) -> None:
    async with running_site(tmp_path, kinds=BRAKE) as rig:
        ops = rig.ops
        ana, bo = console("ana", "s-ana"), console("bo", "s-bo")
        script = Actor("bot", Role.OPERATOR, Terminal("http", "10.0.0.2", "token:t1"))
        assert ops.control_of(ana, "L1") is None
        await ops.pause(ana, "L1", "lunch")  # acting on a free line takes it
        holder = ops.control_of(bo, "L1")
        assert holder is not None and (holder.user, holder.session) == ("ana", "s-ana")
        with pytest.raises(Conflict) as e:
            await ops.resume(bo, "L1")
        assert e.value.code == "controlled" and "ana" in e.value.message
        assert rig.site.lines[0].paused
        with pytest.raises(Invalid):  # taking over needs a reason
            await ops.take_control(bo, "L1", "  ")
        await ops.resume(script, "L1")  # a script's token is not a console session
        await ops.pause(ana, "L1")  # the holder acts as before
        taken = await ops.take_control(bo, "L1", "ana went home")
        assert taken["holder"]["user"] == "bo"
        with pytest.raises(Conflict):
            await ops.resume(ana, "L1")
        await ops.resume(bo, "L1")
        await ops.signed_out(bo)
        assert ops.control_of(ana, "L1") is None

        entries = list(reversed(await rig.store.journal(50)))
        ctl = [(e.user, e.outcome, e.reason, e.changes.get("holder")) for e in entries
               if e.action == "control"]  # fmt: skip
        assert ctl == [
            ("ana", "ok", None, {"from": None, "to": {"user": "ana", "session": "s-ana"}}),
            ("bo", "refused", None, None),
            ("bo", "ok", "ana went home", {
                "from": {"user": "ana", "session": "s-ana"},
                "to": {"user": "bo", "session": "s-bo"},
            }),
            ("bo", "ok", "signed out", {"from": {"user": "bo", "session": "s-bo"}, "to": None}),
        ]  # fmt: skip
        refused = [e for e in entries if e.action == "resume" and e.outcome == "refused"]
        assert len(refused) == 2 and refused[0].changes["error"]["code"] == "controlled"
        assert all(e.session for e in refused)  # the terminal of each refusal is kept


def test_an_expired_session_holds_nothing() -> None:
    now = [datetime(2026, 12, 1, 9, 0, tzinfo=UTC)]
    desk = ControlDesk(lambda: now[0])
    ana = Actor(
        "ana", Role.OPERATOR, Terminal("http", None, "s1"), expires_at=now[0] + timedelta(minutes=5)
    )
    desk.take(ana, "L1")
    assert desk.holder("L1") is not None
    now[0] += timedelta(minutes=4)
    desk.seen(replace(ana, expires_at=now[0] + timedelta(minutes=5)))  # renewed
    now[0] += timedelta(minutes=4)
    assert desk.holder("L1") is not None
    now[0] += timedelta(minutes=1)
    assert desk.holder("L1") is None


async def test_control_devices_and_renewal_over_http(tmp_path: Path) -> None:
    async with running_site(tmp_path, kinds=BRAKE) as rig, serving(rig.ops) as api:
        op, csrf = await api.signed_in("operator")
        tech, _ = await api.signed_in("technician")
        viewer = api.client("viewer")
        try:
            r = await op.post("/lines/L1/control", data={"csrf_token": csrf})
            assert r.status_code == 303
            held = (await viewer.get("/api/lines/L1/control")).json()["holder"]
            assert held["user"] == "operator" and held["address"] == "127.0.0.1"
            assert (await viewer.get("/api/lines/L9/control")).status_code == 404

            page = await tech.get("/devices")
            assert page.status_code == 200 and page.text.count("<tr data-device=") >= 2
            one = re.search(r'<tr data-device="([^"]+)"', page.text)
            assert one is not None
            assert (await tech.get(f"/devices/{one[1]}")).status_code == 200
            assert (await tech.get("/devices/nothing")).status_code == 404
            assert (await op.get("/devices")).status_code == 403  # operators do not diagnose

            home = (await op.get("/")).text
            before = int(re.search(r'data-expires="(\d+)"', home)[1])  # type: ignore[index]
            r = await op.post("/session/renew", data={"csrf_token": csrf})
            assert r.status_code == 200 and r.json()["expires_ms"] > before
            assert (await op.post("/session/renew", data={})).status_code == 403  # no CSRF

            await op.post("/logout", data={"csrf_token": csrf})
            assert (await viewer.get("/api/lines/L1/control")).json()["holder"] is None
        finally:
            for c in (op, tech, viewer):
                await c.aclose()
