"""The daemon's own figures over its HTTP listener: `GET /metrics` and `GET /api/devices`
(who may read them), `linectl diag stats` as their client (401, 403 in words), and
`diag selftest` refusing a station the running daemon uses, until its line is paused."""

from __future__ import annotations

from pathlib import Path

import pytest
from diag_fixtures import diag, diag_json
from http_fixtures import serving
from prometheus_client.parser import text_string_to_metric_families
from site_fixtures import running_site

from linectl.config import TcpTransport

BRAKE = ("brake",)


def brake_config(folder: Path, site_cfg: object) -> Path:
    """A config file naming the running site's line L1 and its brake tester where the
    simulator serves it (the site's own config has the ports it learned at start)."""
    line = site_cfg.lines[0]  # type: ignore[attr-defined]
    io, rbt = line.io.transport, line.stations[0].devices[0].transport
    assert isinstance(io, TcpTransport) and isinstance(rbt, TcpTransport)
    path = folder / "site.toml"
    path.write_text(
        f"""site_id = "t1"
[[lines]]
id = "L1"
proxy_drivers = ["D1"]
io = {{ id = "io-L1", model = "lineio-modbus", transport = {{ kind = "tcp", port = {io.port} }} }}
[[lines.stations]]
id = "brake"
kind = "brake"
devices = [{{ id = "rbt-L1", model = "rbt-modbus", transport = {{ kind = "tcp", port = {rbt.port} }} }}]
""",
        encoding="utf-8",
    )
    return path


async def test_metrics_and_devices_over_http(tmp_path: Path) -> None:
    async with running_site(tmp_path, kinds=BRAKE) as rig, serving(rig.ops) as api:
        anon, viewer, tech = (api.client(r) for r in (None, "viewer", "technician"))
        r = await anon.get("/metrics")  # http.md: no sign-in
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        names = {f.name for f in text_string_to_metric_families(r.text)}
        assert {"linectl_device_up", "linectl_device_latency_seconds"} <= names
        assert 'linectl_device_up{device="rbt-L1"' in r.text
        assert (await anon.get("/api/devices")).status_code == 401
        assert (await viewer.get("/api/devices")).status_code == 403
        r = await tech.get("/api/devices")
        assert r.status_code == 200
        assert [d["id"] for d in r.json()] == ["io-L1", "rbt-L1"]
        assert r.json()[0]["requests"] > 0  # the line polls its photo switches


async def test_diag_stats_asks_the_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_site(tmp_path, kinds=BRAKE) as rig, serving(rig.ops) as api:
        url = ["--url", api.base]
        code, devices = await diag_json(capsys, "stats", *url, "--token", api.tokens["technician"])
        assert code == 0 and [d["id"] for d in devices] == ["io-L1", "rbt-L1"]
        code, out, _ = await diag(capsys, "stats", *url, "--token", api.tokens["technician"])
        header, io_row, rbt_row = out.splitlines()
        assert header.split()[:4] == ["device", "state", "requests", "errors"]
        assert io_row.split()[:2] == ["io-L1", "up"] and int(io_row.split()[2]) > 0
        assert rbt_row.split()[0] == "rbt-L1"

        code, _, err = await diag(capsys, "stats", *url, "--token", api.tokens["viewer"])
        assert code == 1 and "answered 403" in err and "technician role" in err
        code, _, err = await diag(capsys, "stats", *url)
        assert code == 1 and "answered 401: no token given: use --token or set LINECTL_TOKEN" in err
        code, _, err = await diag(capsys, "stats", *url, "--token", "not-a-token")
        assert code == 1 and "answered 401: the token was refused" in err


async def test_selftest_refuses_a_station_in_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_site(tmp_path, kinds=BRAKE) as rig, serving(rig.ops) as api:
        cfg = brake_config(tmp_path, rig.site.cfg)
        ask = ["selftest", "rbt-L1", "--config", str(cfg), "--url", api.base]
        token = ["--token", api.tokens["technician"]]

        code, out, err = await diag(capsys, *ask, *token)
        assert code == 1 and out == ""
        assert (
            "station brake of line L1 is in use by the running daemon "
            "(station brake is free, line running): pause line L1" in err
        )
        code, _, err = await diag(capsys, *ask)  # no token: it cannot tell, so it refuses
        assert code == 1 and "cannot tell whether the running daemon uses station brake" in err

        op = api.client("operator")
        assert (
            await op.post("/api/lines/L1/pause", json={"reason": "self-test"})
        ).status_code == 200
        code, out, err = await diag(capsys, *ask, *token)
        assert code == 0, out + err
        steps = out.splitlines()[1:]
        assert len(steps) == 6 and all(" pass " in line for line in steps)
        assert rig.sim.emulators["rbt-L1"].lift_up  # left where the line expects it
