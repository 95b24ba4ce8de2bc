"""The console and API served for real: uvicorn on a free port, httpx as the client.

`serving(ops)` runs the daemon's HTTP server over an `Operations` (of a
running simulated site, or of an offline one that only registers) and yields
an `Api` with one account per role, each with a password and a bearer token.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from linectl.http.app import HttpSettings, create_app
from linectl.http.server import HttpServer
from linectl.ops.accounts import AccountAdmin
from linectl.ops.actor import Actor
from linectl.ops.auth import Authenticator, SessionPolicy
from linectl.ops.operations import Operations
from linectl.store.repo import Store

ROLES = ("viewer", "operator", "technician", "admin")


def password_of(role: str) -> str:
    return f"pw-{role}-secret"


@dataclass
class Api:
    base: str
    server: HttpServer
    tokens: dict[str, str] = field(default_factory=dict)  # role -> bearer token

    def client(self, role: str | None = None) -> httpx.AsyncClient:
        """A client with `role`'s bearer token (none: anonymous)."""
        headers = {} if role is None else {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.AsyncClient(base_url=self.base, headers=headers, timeout=60)

    async def signed_in(self, role: str) -> tuple[httpx.AsyncClient, str]:
        """A browser-like client signed in by the login form; and its CSRF token."""
        c = httpx.AsyncClient(base_url=self.base, timeout=60)
        page = await c.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, page.text
        r = await c.post(
            "/login",
            data={"name": role, "password": password_of(role), "csrf_token": token.group(1)},
        )
        assert r.status_code == 303, r.text
        home = await c.get("/")
        csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', home.text)
        assert home.status_code == 200 and csrf, home.text
        return c, csrf.group(1)


def make_accounts(store: Store) -> dict[str, str]:
    """One account per role, named after it; their bearer tokens."""
    admin = AccountAdmin(store, Actor.system("test"))
    tokens = {}
    for role in ROLES:
        admin.add(role, role, password_of(role))
        tokens[role] = admin.new_token(role)
    return tokens


@asynccontextmanager
async def serving(
    ops: Operations, *, policy: SessionPolicy | None = None, heartbeat_s: float = 15.0
) -> AsyncIterator[Api]:
    auth = Authenticator(ops.store, policy)
    app = create_app(ops, auth, HttpSettings(heartbeat_s=heartbeat_s))
    server = HttpServer(app, "127.0.0.1", 0)
    server.bind()
    tokens = await ops.store.run(make_accounts, ops.store.store)
    task = asyncio.create_task(server.run())
    try:
        yield Api(f"http://127.0.0.1:{server.port}", server, tokens)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def registration(request_id: str, plate: str = "鲁G12345", **over: Any) -> dict[str, Any]:
    """A good registration of mqtt.md for a two-axle petrol car, brake items only."""
    from store_fixtures import make_vin

    req: dict[str, Any] = {
        "request_id": request_id,
        "inspection_type": "periodic",
        "vehicle": {
            "vin": make_vin(183294),
            "plate": plate,
            "vehicle_class": "M1",
            "fuel": "petrol",
            "axles": 2,
            "parking_axles": [2],
            "curb_mass_kg": 1320,
            "gross_mass_kg": 1750,
            "headlamp_system": 2,
            "max_design_speed_kmh": 180,
            "registration_date": "2019-05-20",
        },
        "items": ["B1", "B2", "B0", "BT"],
    }
    req.update(over)
    return req
