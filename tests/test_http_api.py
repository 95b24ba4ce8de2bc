"""The JSON API over real HTTP: who may call what (200, 401, 403), what is refused
(each bad field named, oversized bodies, wrong content types, nothing created),
the console's sign-in with its session cookie, CSRF and login rate limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_fixtures import make_accounts, registration, serving
from site_fixtures import offline_config, running_site

from linectl.clock import Clock
from linectl.config import HttpConfig
from linectl.daemon import http_server
from linectl.demo import demo_config
from linectl.ops.actor import Actor
from linectl.ops.auth import SessionPolicy
from linectl.ops.operations import Operations
from linectl.registry_sim import MALFORMATIONS, build_requests
from linectl.site import Site, open_store

BRAKE = ("brake",)


async def test_every_path_answers_200_401_and_403_by_role(tmp_path: Path) -> None:
    async with running_site(tmp_path, kinds=BRAKE) as rig, serving(rig.ops) as api:
        anon, viewer, tech, op, admin = (
            api.client(r) for r in (None, "viewer", "technician", "operator", "admin")
        )
        health = await anon.get("/healthz")
        assert health.status_code == 200
        assert health.json() == {"ok": True, "site": "t1", "lines": 1}

        # A vehicle to read about, kept in the queue (the line is paused first).
        r = await op.post("/api/lines/L1/pause", json={"reason": "hold the queue"})
        assert r.status_code == 200 and r.json()["paused"] is True
        assert (
            await viewer.post("/api/registrations", json=registration("r-v"))
        ).status_code == 403
        r = await op.post("/api/registrations", json=registration("r-1"))
        assert r.status_code == 200, r.text
        reply = r.json()
        assert reply == {
            "request_id": "r-1",
            "accepted": True,
            "inspection_id": reply["inspection_id"],
            "line": "L1",
        }
        iid = reply["inspection_id"]

        report = f"/api/inspections/{iid}/report"
        reads = ["/api/lines", "/api/inspections", f"/api/inspections/{iid}", report]
        for path in [*reads, "/api/audit"]:
            r = await anon.get(path)
            assert r.status_code == 401, path
            assert r.json()["error"]["code"] == "unauthenticated"
        for client in (viewer, tech, op, admin):
            for path in reads:
                assert (await client.get(path)).status_code == 200, path
        for client in (viewer, tech, op):
            r = await client.get("/api/audit")
            assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
        assert (await admin.get("/api/audit")).status_code == 200
        async with anon.stream("GET", "/api/events") as r:
            assert r.status_code == 401
        async with viewer.stream("GET", "/api/events") as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")

        lines = (await viewer.get("/api/lines")).json()
        assert [ln["id"] for ln in lines] == ["L1"]
        assert {"online", "ts", "stations", "queue", "proxy_drivers", "paused"} <= set(lines[0])
        doc = (await viewer.get(f"/api/inspections/{iid}")).json()
        assert doc["schema"] == "linectl.result/1" and doc["inspection_id"] == iid
        assert doc["state"] == "queued" and doc["attempts"] == []
        assert (await viewer.get("/api/inspections/nope")).status_code == 404
        r = await viewer.get(report, params={"lang": "en"})
        assert r.headers["content-type"].startswith("text/html") and "PROVISIONAL" in r.text
        r = await viewer.get(report, params={"format": "pdf"})
        assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF")
        assert (await viewer.get("/api/inspections/nope/report")).status_code == 404
        r = await viewer.get(report, params={"format": "docx"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid"

        # Every operator action: refused to a viewer and a technician, done for an operator.
        actions: list[tuple[str, dict[str, Any] | None]] = [
            ("/api/lines/L1/pause", {"reason": "lunch"}),
            ("/api/lines/L1/resume", None),
            ("/api/drivers/L1D2/duty", {"on_duty": False}),
            ("/api/drivers/L1D2/duty", {"on_duty": True}),
            (f"/api/inspections/{iid}/abort", {"reason": "owner left"}),
        ]
        for path, body in actions:
            assert (await anon.post(path, json=body or {})).status_code == 401, path
            for client in (viewer, tech):
                r = await client.post(path, json=body) if body else await client.post(path)
                assert r.status_code == 403, (path, r.text)
        assert (await viewer.get(f"/api/inspections/{iid}")).json()["state"] == "queued"
        for path, body in actions[2:] + actions[1:2]:  # paused already: the rest, then resume
            r = await op.post(path, json=body) if body else await op.post(path)
            assert r.status_code == 200, (path, r.text)
        aborted = (await viewer.get(f"/api/inspections/{iid}")).json()
        assert aborted["state"] == "aborted" and aborted["aborted"] == "owner left"

        journal = (await admin.get("/api/audit", params={"limit": 100})).json()
        denied = [e for e in journal if e["outcome"] == "denied"]
        assert {e["user"] for e in denied} == {"viewer", "technician"}
        assert {e["action"] for e in denied} == {"register", "pause", "resume", "duty", "abort"}
        done = {e["action"] for e in journal if e["outcome"] == "ok" and e["user"] == "operator"}
        assert done == {"register", "pause", "resume", "duty", "abort"}
        entry = next(e for e in journal if e["action"] == "abort" and e["outcome"] == "ok")
        assert entry["target"] == f"inspection:{iid}" and entry["reason"] == "owner left"
        assert entry["terminal"]["via"] == "http" and entry["terminal"]["address"] == "127.0.0.1"
        assert entry["terminal"]["session"].startswith("token:")
        for c in (anon, viewer, tech, op, admin):
            await c.aclose()


async def offline(tmp_path: Path) -> tuple[Operations, Any]:
    """A site that registers but never runs its lines (no devices needed)."""
    url = f"sqlite:///{tmp_path / 'site.db'}"
    (tmp_path / "tty").mkdir()
    cfg = offline_config(demo_config("t1", 1, url, tmp_path / "tty", BRAKE))
    store = await open_store(url)
    return Operations(Site(cfg, Clock(100), store)), store


async def test_refused_registrations_name_the_field_and_create_nothing(tmp_path: Path) -> None:
    ops, store = await offline(tmp_path)
    try:
        async with serving(ops) as api, api.client("operator") as op:
            # Not started yet: the health check says so.
            assert (await op.get("/healthz")).status_code == 503

            planted = build_requests(len(MALFORMATIONS), len(MALFORMATIONS), seed=5, tag="bad")
            codes = {}
            for q in planted:
                r = await op.post(
                    "/api/registrations",
                    content=q.payload,
                    headers={"Content-Type": "application/json"},
                )
                reply = r.json()
                assert r.status_code == (413 if q.malformation == "oversized" else 422), q
                assert reply["accepted"] is False and reply["request_id"] == q.request_id
                assert reply["error"]["field"] == q.expect_field, q.malformation
                codes[q.malformation] = reply["error"]["code"]
            # The codes of MQTT (tests/test_mqtt_site.py), through the same operation.
            assert codes["vin check digit"] == "invalid_vin"
            assert codes["plate"] == "invalid_plate"
            assert codes["no vehicle"] == "missing_field"
            assert codes["oversized"] == "payload_too_large"

            # Nobody chooses a proxy driver, at the top or inside the vehicle.
            for bad in (
                registration("r-pd1", proxy_driver="L1D1"),
                registration(
                    "r-pd2", vehicle={**registration("x")["vehicle"], "driver_id": "L1D1"}
                ),
            ):
                r = await op.post("/api/registrations", json=bad)
                assert r.status_code == 422 and r.json()["error"]["code"] == "not_allowed"
            assert "driver" in r.json()["error"]["field"]
            # ... nor over MQTT: the registry's actor goes through the same operation.
            mqtt = await ops.register(Actor.registry(), registration("r-pd3", proxy_driver="L1D1"))
            assert mqtt["error"] == {
                **mqtt["error"],
                "code": "not_allowed",
                "field": "proxy_driver",
            }

            # No request_id: refused naming it (and not kept); not JSON; JSON of the wrong shape.
            r = await op.post("/api/registrations", json={**registration("x"), "request_id": None})
            assert r.status_code == 422 and r.json()["error"]["field"] == "request_id"
            r = await op.post(
                "/api/registrations", content=b"{nope", headers={"Content-Type": "application/json"}
            )
            assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_json"
            r = await op.post("/api/registrations", json=[1, 2])
            assert r.status_code == 422 and r.json()["error"]["field"] == "(payload)"
            # Wrong content types.
            for headers, content in (
                ({"Content-Type": "text/plain"}, json.dumps(registration("r-t")).encode()),
                ({"Content-Type": "application/x-www-form-urlencoded"}, b"request_id=r-f"),
                ({}, json.dumps(registration("r-n")).encode()),
            ):
                r = await op.post("/api/registrations", content=content, headers=headers)
                assert r.status_code == 415, headers
                assert r.json()["error"]["code"] == "unsupported_media_type"
            # Oversized small bodies; unknown fields of an action.
            r = await op.post("/api/lines/L1/pause", json={"reason": "x" * 5000})
            assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
            r = await op.post("/api/drivers/L1D1/duty", json={"on_duty": False, "line": "L2"})
            assert r.status_code == 422 and r.json()["error"]["field"] == "line"
            r = await op.post("/api/drivers/L1D1/duty", json={"on_duty": "yes"})
            assert r.status_code == 422 and r.json()["error"]["field"] == "on_duty"
            r = await op.post("/api/inspections/zz/abort", json={})
            assert r.status_code == 422 and r.json()["error"]["field"] == "reason"
            r = await op.get("/api/inspections", params={"verdict": "great"})
            assert r.status_code == 422 and r.json()["error"]["field"] == "verdict"
            r = await op.get("/api/inspections", params={"limit": "many"})
            assert r.status_code == 422 and r.json()["error"]["field"] == "limit"

            assert await store.list_inspections() == []  # nothing created by any of it

            # Accepted once; the same request_id again gets the same reply, nothing new.
            first = await op.post("/api/registrations", json=registration("r-ok"))
            again = await op.post("/api/registrations", json=registration("r-ok", plate="鲁G99999"))
            assert first.status_code == again.status_code == 200
            assert first.json() == again.json()
            refused = await op.post("/api/registrations", json=registration("r-bad", items=["Z9"]))
            refused_again = await op.post("/api/registrations", json=registration("r-bad"))
            assert refused.status_code == refused_again.status_code == 422
            assert refused.json() == refused_again.json()
            assert len(await store.list_inspections()) == 1
            found = (await op.get("/api/inspections", params={"plate": "G123"})).json()
            assert [i["inspection_id"] for i in found] == [first.json()["inspection_id"]]
            assert (await op.get("/api/inspections", params={"plate": "XX"})).json() == []
    finally:
        await store.aclose()


async def test_console_sign_in_session_csrf_and_login_rate_limit(tmp_path: Path) -> None:
    ops, store = await offline(tmp_path)
    policy = SessionPolicy(attempts_per_account=3, attempts_per_address=5)
    try:
        async with serving(ops, policy=policy) as api:
            # A page without a session goes to the sign-in page and back.
            async with httpx.AsyncClient(base_url=api.base) as c:
                r = await c.get("/")
                assert r.status_code == 303 and r.headers["location"] == "/login?next=/"
            browser, csrf = await api.signed_in("operator")
            cookie = next(h for h in browser.cookies.jar if h.name == "linectl_session")
            raw = [v for k, v in (await _login_headers(api, "viewer")) if k == "set-cookie"]
            session_cookie = next(v for v in raw if v.startswith("linectl_session="))
            assert "HttpOnly" in session_cookie and "SameSite=strict" in session_cookie
            assert cookie.value
            # Signed in by cookie: a state change needs the CSRF header.
            r = await browser.post("/api/lines/L1/pause", json={"reason": "test"})
            assert r.status_code == 403 and r.json()["error"]["code"] == "csrf"
            r = await browser.post(
                "/api/lines/L1/pause", json={"reason": "test"}, headers={"X-CSRF-Token": "0" * 64}
            )
            assert r.status_code == 403
            r = await browser.post(
                "/api/lines/L1/pause", json={"reason": "test"}, headers={"X-CSRF-Token": csrf}
            )
            assert r.status_code == 200 and r.json()["paused"] is True
            assert (await browser.get("/api/lines")).json()[0]["paused"] is True  # reads need none
            # A bearer token is never sent by a browser on its own: no CSRF needed.
            async with api.client("operator") as script:
                assert (await script.post("/api/lines/L1/resume")).status_code == 200
            # Sign out: the form needs its token; then the cookie is worth nothing.
            assert (await browser.post("/logout", data={})).status_code == 403
            r = await browser.post("/logout", data={"csrf_token": csrf})
            assert r.status_code == 303
            await browser.aclose()
            async with httpx.AsyncClient(base_url=api.base) as stolen:
                r = await stolen.get(
                    "/api/lines", headers={"Cookie": f"linectl_session={cookie.value}"}
                )
                assert r.status_code == 401

            # Sign-in form posted without its own token (as from another site): refused.
            async with httpx.AsyncClient(base_url=api.base) as c:
                r = await c.post("/login", data={"name": "admin", "password": "pw-admin-secret"})
                assert r.status_code == 403 and "linectl_session" not in c.cookies

            # Three wrong passwords for one account, then even the right one waits.
            assert [await _try_login(api, "admin", "wrong") for _ in range(3)] == [401] * 3
            assert await _try_login(api, "admin", "pw-admin-secret") == 429
            # The address has two failures left (5 per address): any account.
            assert [await _try_login(api, f"ghost{i}", "wrong") for i in range(2)] == [401] * 2
            assert await _try_login(api, "viewer", "pw-viewer-secret") == 429
        journal = await store.journal(200, action="login")
        outcomes = [e.outcome for e in reversed(journal)]
        assert outcomes.count("ok") >= 2 and outcomes.count("refused") >= 7
        assert (await store.verify_journal()).ok
    finally:
        await store.aclose()


async def _try_login(api: Any, name: str, password: str) -> int:
    async with httpx.AsyncClient(base_url=api.base) as c:
        page = await c.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        r = await c.post("/login", data={"name": name, "password": password, "csrf_token": token})
        return 303 if r.status_code == 303 else r.status_code


async def _login_headers(api: Any, role: str) -> list[tuple[str, str]]:
    async with httpx.AsyncClient(base_url=api.base) as c:
        page = await c.get("/login")
        token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
        r = await c.post(
            "/login", data={"name": role, "password": f"pw-{role}-secret", "csrf_token": token}
        )
        assert r.status_code == 303
        return list(r.headers.multi_items())


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make a certificate")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_tls_serves_https_and_marks_the_session_cookie_secure(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    ops, store = await offline(tmp_path)
    try:
        cfg = HttpConfig(listen="127.0.0.1:0", cert_file=str(cert), key_file=str(key))
        server = http_server(ops, store, cfg)
        server.bind()
        await store.run(make_accounts, store.store)
        task = asyncio.create_task(server.run())
        try:
            assert server.url.startswith("https://127.0.0.1:")
            ctx = ssl.create_default_context(cafile=str(cert))
            async with httpx.AsyncClient(base_url=server.url, verify=ctx) as c:
                page = await c.get("/login")
                token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
                r = await c.post(
                    "/login",
                    data={"name": "viewer", "password": "pw-viewer-secret", "csrf_token": token},
                )
                assert r.status_code == 303
                cookie = next(
                    v for k, v in r.headers.multi_items() if k == "set-cookie" and "session" in v
                )
                assert "Secure" in cookie and "HttpOnly" in cookie
                assert (await c.get("/api/lines")).status_code == 200
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        await store.aclose()
