"""`linectl diag` against a whole simulated site: `diag devices` with `linectl sim`
running and stopped (the real entry points, exit 0 and 1), devices that answer
wrongly, self-tests of every instrument, live values, and the daemon-side commands
when no daemon answers."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from diag_fixtures import diag, diag_json, example_config, free_port, linectl
from modbus_fixtures import ScriptedAxle

from linectl.clock import Clock
from linectl.config import load_site_config
from sim.serial_emulator import LineNoise
from sim.site import SimSite

DEVICES = ["io-L1", "rbt-L1", "hlt-L1", "gas-L1", "smoke-L1"]


async def test_devices_up_with_the_simulator_and_down_without(tmp_path: Path) -> None:
    cfg = example_config(tmp_path)
    sim = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "linectl", "sim", "--config", str(cfg), "--time-scale", "50",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert sim.stdout is not None
        assert b"simulating site" in await asyncio.wait_for(sim.stdout.readline(), 30)
        code, out, err = await linectl("diag", "devices", "--config", str(cfg))
        assert code == 0, out + err
        rows = out.splitlines()[1:]
        assert [r.split()[0] for r in rows] == DEVICES
        assert all(r.split()[-1] != "DOWN" and " up " in r for r in rows)
        code, out, _ = await linectl("diag", "devices", "--config", str(cfg), "--json")
        probes = json.loads(out)
        assert code == 0 and all(p["up"] and p["answer_ms"] > 0 for p in probes)
        assert probes[1]["detail"].startswith("STATE 0 IDLE")
    finally:
        sim.send_signal(signal.SIGINT)
        try:
            await asyncio.wait_for(sim.communicate(), 30)
        finally:
            if sim.returncode is None:
                sim.kill()
                await sim.wait()
    assert sim.returncode == 0
    code, out, err = await linectl("diag", "devices", "--config", str(cfg))
    assert code == 1 and err == ""
    rows = out.splitlines()[1:]
    assert all(" DOWN " in r for r in rows)
    assert "connection refused" in rows[0] and "no such serial port" in rows[2]


@pytest.fixture
async def sim_site(tmp_path: Path) -> AsyncIterator[tuple[Path, SimSite]]:
    """The example site's instruments, in this process, at 200x (warm-up in 0.6 s)."""
    cfg_path = example_config(tmp_path)
    sim = SimSite(load_site_config(cfg_path), Clock(200.0))
    await sim.start()
    try:
        yield cfg_path, sim
    finally:
        await sim.aclose()


async def test_devices_that_answer_wrongly(
    sim_site: tuple[Path, SimSite], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_path, sim = sim_site
    text = cfg_path.read_text(encoding="utf-8").replace(
        'id = "rbt-L1", model = "rbt-modbus", unit = 1',
        'id = "rbt-L1", model = "rbt-modbus", unit = 7',
    )
    wrong = tmp_path / "wrong-unit.toml"
    wrong.write_text(text, encoding="utf-8")
    sim.emulators["gas-L1"].noise = LineNoise(corrupt=1.0)  # every reply with a byte flipped
    sim.emulators["smoke-L1"].mute = True
    code, probes = await diag_json(capsys, "devices", "--config", str(wrong), "--timeout-ms", "300")
    state = {p["id"]: (p["state"], p["detail"]) for p in probes}
    assert code == 1
    assert state["rbt-L1"][0] == "wrong" and "nothing answers as unit 7" in state["rbt-L1"][1]
    assert state["gas-L1"][0] == "wrong" and "discarded" in state["gas-L1"][1]
    assert state["smoke-L1"] == (
        "down",
        "no answer in 300 ms: instrument off, wrong baud rate, wrong model, or a loose cable",
    )
    assert state["io-L1"][0] == state["hlt-L1"][0] == "up"


async def test_selftest_of_every_instrument(
    sim_site: tuple[Path, SimSite], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_path, sim = sim_site
    nobody = ["--url", f"http://127.0.0.1:{free_port()}"]  # no daemon there
    await asyncio.sleep(Clock(200.0).to_real(120.0) + 0.1)  # the analyser's warm-up
    expected = {
        "rbt-L1": [
            "nothing on the rollers", "lift up", "lift down", "tare", "weigh with no vehicle",
            "lift up (rest)",
        ],
        "gas-L1": ["ready (not warming up)", "zero", "leak check"],
        "smoke-L1": ["zero", "opacity near zero"],
        "hlt-L1": ["reset", "no result after reset"],
    }  # fmt: skip
    for device, steps in expected.items():
        code, out, err = await diag(
            capsys, "selftest", device, "--config", str(cfg_path), *nobody, "--json"
        )
        doc = json.loads(out)
        assert code == 0 and doc["ok"], doc
        assert [s["name"] for s in doc["steps"]] == steps
        assert "no daemon answers at" in err and "going ahead" in err
    rbt = sim.emulators["rbt-L1"]
    assert rbt.lift_up and rbt.state == 0  # left ready for the next vehicle: lift up, IDLE
    weigh = json.loads(
        (await diag(capsys, "selftest", "rbt-L1", "--config", str(cfg_path), *nobody, "--json"))[1]
    )["steps"][4]
    assert "FAULT 6" in weigh["reading"] and "L 0 kg R 0 kg" in weigh["reading"]


async def test_selftest_steps_fail_in_words(
    sim_site: tuple[Path, SimSite], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_path, sim = sim_site
    nobody = ["--url", f"http://127.0.0.1:{free_port()}"]
    sim.emulators["rbt-L1"].place_axle(ScriptedAxle())
    code, out, _ = await diag(capsys, "selftest", "rbt-L1", "--config", str(cfg_path), *nobody)
    assert code == 1
    assert out.splitlines()[1].split()[:5] == ["nothing", "on", "the", "rollers", "FAIL"]
    assert "drive it off first" in out and len(out.splitlines()) == 2  # stops there

    sim.emulators["gas-L1"].warmup_s = 1e9  # still warming up
    code, out, _ = await diag(capsys, "selftest", "gas-L1", "--config", str(cfg_path), *nobody)
    assert code == 1 and "warming up: wait until STATUS reads ready" in out

    code, _, err = await diag(capsys, "selftest", "io-L1", "--config", str(cfg_path), *nobody)
    assert code == 1 and "line I/O module: no self-test" in err


async def test_watch_prints_live_values(
    sim_site: tuple[Path, SimSite], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_path, sim = sim_site
    code, out, _ = await diag(
        capsys, "watch", "rbt-L1", "--config", str(cfg_path), "--count", "3", "--interval", "0.05",
        "--json",
    )  # fmt: skip
    reads = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(reads) == 3
    assert reads[0]["values"]["state"] == "0 IDLE" and reads[0]["error"] is None

    sim.emulators["io-L1"].set_inputs(1, in_position=True)
    code, out, _ = await diag(capsys, "watch", "io-L1", "--config", str(cfg_path), "--count", "1")
    assert code == 0
    assert "station 1: in_position=1 exit_clear=1 light=red prompt=0 BLANK" in out

    sim.emulators["hlt-L1"].mute = True  # a device that stops answering: shown, watch goes on
    code, out, _ = await diag(
        capsys, "watch", "hlt-L1", "--config", str(cfg_path), "--count", "2", "--interval", "0.05"
    )
    assert code == 0 and out.count("error: hlt-L1") == 2 and "no answer in 1000 ms" in out


async def test_daemon_side_commands_without_a_daemon(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    cfg = example_config(tmp_path)
    with_http = tmp_path / "with-http.toml"
    text = cfg.read_text(encoding="utf-8")
    start = text.index('listen = "') + len('listen = "')
    end = text.index('"', start)
    with_http.write_text(text[:start] + f"0.0.0.0:{port}" + text[end:], encoding="utf-8")
    code, out, err = await diag(capsys, "stats", "--config", str(with_http))
    assert code == 1 and out == ""
    assert err.strip() == (
        f"linectl diag: no daemon answers at http://127.0.0.1:{port}: connection refused "
        "(is `linectl run` running, with [http] enabled, on that address?)"
    )


async def test_devices_named_from_the_config(
    sim_site: tuple[Path, SimSite], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_path, _ = sim_site
    code, values = await diag_json(
        capsys, "modbus", "read", "io-L1", "--config", str(cfg_path), "--table", "holding",
        "--address", "1100", "--count", "42",
    )  # fmt: skip
    # station 1's guide display block, each field read by its type in the map
    assert code == 0
    assert [v["name"] for v in values] == [
        "PROMPT (station 1)", "PLATE (station 1)", "TEXT (station 1)", "SEQ (station 1)"
    ]  # fmt: skip
    assert values[0]["meaning"] == "BLANK" and values[1]["value"] == ""
    code, doc = await diag_json(
        capsys, "serial", "send", "--id", "hlt-L1", "--config", str(cfg_path), "RST"
    )
    assert code == 0 and doc["decoded_words"] == "ACK"
    code, _, err = await diag(
        capsys, "modbus", "read", "hlt-L1", "--config", str(cfg_path), "--table", "input"
    )
    assert code == 2 and "hlt-L1 is a hlt-ascii, not a Modbus device" in err
