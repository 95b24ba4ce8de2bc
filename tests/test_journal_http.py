"""The journal over HTTP and on the console: actions done through the API land in it
with who, terminal, reason and changes; it is searched by inspection, vehicle, person,
action and time and exported as CSV; an inspection's page tells its story from it;
and a journal row altered in the database is named by `linectl audit verify`."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from http_fixtures import registration, serving
from site_fixtures import running_site
from sqlalchemy import MetaData, Table, create_engine, text

BRAKE = ("brake",)


def audit_verify(db_url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linectl", "audit", "verify", "--db", db_url],
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_journal_search_csv_story_and_a_tampered_entry(tmp_path: Path) -> None:
    async with running_site(tmp_path, kinds=BRAKE) as rig, serving(rig.ops) as api:
        op, viewer, anon = api.client("operator"), api.client("viewer"), api.client()
        # The line is held so the vehicle waits in the queue, then it is aborted.
        r = await op.post("/api/lines/L1/pause", json={"reason": "=cmd|' /C calc'!A0"})
        assert r.status_code == 200
        r = await op.post("/api/registrations", json=registration("j-1", plate="鲁J12345"))
        iid = r.json()["inspection_id"]
        r = await op.post(f"/api/inspections/{iid}/abort", json={"reason": "车主离开 owner left"})
        assert r.status_code == 200, r.text
        r = await op.post(f"/api/inspections/{iid}/abort", json={"reason": "again"})
        assert r.status_code == 409  # refused, and journalled as refused

        assert (await anon.get("/api/journal")).status_code == 401
        r = await viewer.get("/api/journal", params={"inspection": iid})
        assert r.status_code == 200, r.text
        entries = r.json()
        assert [(e["action"], e["outcome"]) for e in entries] == [
            ("abort", "refused"),
            ("abort", "ok"),
            ("register", "ok"),
        ]
        abort = entries[1]
        assert set(abort) >= {"seq", "at", "user", "terminal", "action", "target", "reason"}
        assert {"changes", "hash"} <= set(abort)
        assert abort["user"] == "operator" and abort["reason"] == "车主离开 owner left"
        assert abort["terminal"]["via"] == "http"
        assert abort["terminal"]["address"] == "127.0.0.1"
        assert abort["terminal"]["session"].startswith("token:")
        assert abort["changes"]["state"] == {"from": "queued", "to": "aborted"}

        by_vehicle = (await viewer.get("/api/journal", params={"vehicle": "j123"})).json()
        assert [e["seq"] for e in by_vehicle] == [e["seq"] for e in entries]
        paused = (
            await viewer.get("/api/journal", params={"user": "operator", "action": "pause"})
        ).json()
        assert len(paused) == 1 and paused[0]["target"] == "line:L1"
        later = (await viewer.get("/api/journal", params={"since": "2099-01-01"})).json()
        assert later == []
        today = rig.clock.wall().astimezone(rig.site.cfg.tz()).date().isoformat()
        upto = (
            await viewer.get("/api/journal", params={"until": today, "user": "operator"})
        ).json()
        assert len(upto) == 4  # a date alone: up to the end of that day
        r = await viewer.get("/api/journal", params={"since": "last week"})
        assert r.status_code == 422 and r.json()["error"]["field"] == "since"

        r = await viewer.get("/api/journal", params={"user": "operator", "format": "csv"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        assert r.text.startswith("\ufeff")
        rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))
        assert [row["action"] for row in rows] == ["abort", "abort", "register", "pause"]
        assert rows[1]["reason"] == "车主离开 owner left" and rows[1]["address"] == "127.0.0.1"
        # A reason a spreadsheet would run as a formula stays text.
        assert rows[3]["reason"].startswith("'=")
        assert rows[1]["hash"] == abort["hash"]

        # An alarm on the line while the vehicle waited, as the alarm system keeps
        # it: the story tells it too.
        db_url = f"sqlite:///{tmp_path / 'site.db'}"
        engine = create_engine(db_url)
        rec = await rig.store.inspection(iid)
        with engine.begin() as conn:
            conn.execute(
                Table("alarms", MetaData(), autoload_with=conn).insert(),
                {"key": "device_down:L1:rbt9", "kind": "device_down", "line": "L1",
                 "station": "brake", "device": "rbt9", "priority": "high",
                 "state": "rtn_unacked", "active": False, "silenced": False,
                 "message": "brake tester not answering",
                 "raised_at": rec.created_at + timedelta(milliseconds=1),
                 "cleared_at": rec.finished_at},
            )  # fmt: skip

        # The console: the journal page, its CSV, and the inspection's story.
        c, _csrf = await api.signed_in("viewer")
        page = await c.get("/journal", params={"inspection": iid})
        assert page.status_code == 200
        assert page.text.count("<tr data-seq=") == 3 and "车主离开 owner left" in page.text
        r = await c.get("/journal", params={"vehicle": "鲁J", "format": "csv"})
        assert r.headers["content-type"].startswith("text/csv") and r.text.count("\r\n") == 4
        page = await c.get(f"/inspections/{iid}")
        story = page.text[page.text.index('id="story"') :]
        kinds = [k for k in ("registered", "alarm", "abort") if f'data-kind="{k}"' in story]
        assert kinds == ["registered", "alarm", "abort"]
        assert story.index('data-kind="registered"') < story.index('data-kind="alarm"')
        assert story.index('data-kind="alarm"') < story.index('data-kind="abort"')
        assert "brake tester not answering" in story
        assert "车主离开 owner left" in story and "token:" in story
        await c.aclose()

        # Someone rewrites why the vehicle was aborted: the audit names that entry.
        assert audit_verify(db_url).returncode == 0
        with engine.begin() as conn:
            conn.execute(
                text("UPDATE journal SET reason = 'driver error' WHERE seq = :s"),
                {"s": abort["seq"]},
            )
        engine.dispose()
        p = audit_verify(db_url)
        assert p.returncode == 1
        assert f"journal BROKEN at entry seq {abort['seq']}" in p.stdout and "altered" in p.stdout
        for client in (op, viewer, anon):
            await client.aclose()
