"""`linectl diag serial send`, `sniff` and `ports` over real ptys: frames framed and
checked by the model's own code, a reply with a bad checksum, a port that is busy,
missing or not permitted, and a tapped line cut into frames with their direction."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from diag_fixtures import diag, diag_json
from modbus_fixtures import eventually
from serial_fixtures import ManualClock

from linectl.config import SerialTransport
from linectl.drivers.framing import encode_hlt, nht_command
from linectl.drivers.serial import SerialPort
from sim.gas_analyser import GasAnalyserEmulator
from sim.headlamp_tester import HeadlampTesterEmulator
from sim.opacimeter import OpacimeterEmulator
from sim.pty import PtyPort


@contextlib.asynccontextmanager
async def answering(pty: PtyPort, reply: Callable[[bytes], bytes]) -> AsyncIterator[list[bytes]]:
    """The far end of the cable, played by the test: `reply(request)` to each request."""
    seen: list[bytes] = []

    async def run() -> None:
        while True:
            data = await pty.read()
            seen.append(data)
            if out := reply(data):
                pty.write(out)

    task = asyncio.create_task(run())
    try:
        yield seen
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_rst_to_the_headlamp_tester_is_ack(capsys: pytest.CaptureFixture[str]) -> None:
    emu = HeadlampTesterEmulator(ManualClock())
    path = await emu.start()
    try:
        code, out, _ = await diag(
            capsys, "serial", "send", "--device", path, "--model", "hlt-ascii", "RST"
        )
        assert code == 0
        sent, reply, decoded = out.splitlines()
        assert sent.split()[1:7] == ["02", "52", "53", "54", "03", "56"]  # STX RST ETX BCC
        assert reply.split()[1:7] == ["02", "41", "43", "4B", "03", "4A"]
        assert decoded == "decoded: ACK"
        code, doc = await diag_json(
            capsys, "serial", "send", "--device", path, "--model", "hlt-ascii", "RES"
        )
        assert code == 0 and doc["decoded"] == {"kind": "ERR", "error": "E4"}
        assert doc["decoded_words"] == "ERR,E4: no measurement" and doc["latency_ms"] > 0
    finally:
        await emu.aclose()


async def test_binary_instruments_get_their_framing(capsys: pytest.CaptureFixture[str]) -> None:
    gas = GasAnalyserEmulator(ManualClock(), warmup_s=0)
    smoke = OpacimeterEmulator(ManualClock())
    gas_path, smoke_path = await gas.start(), await smoke.start()
    try:
        code, doc = await diag_json(
            capsys, "serial", "send", "--device", gas_path, "--model", "nha503", "81"
        )
        assert code == 0 and len(bytes.fromhex(doc["reply"])) == 21
        assert doc["decoded"]["status_words"] == "ready" and doc["decoded"]["o2_pct"] > 20
        code, doc = await diag_json(
            capsys, "serial", "send", "--device", gas_path, "--model", "nha503", "0x88"
        )
        assert code == 0 and doc["decoded"] == {"reply": "accepted", "code": 6}
        # A4 zeroes in the opacimeter's own time; then one byte A5 (its CS added
        # by diag) reads the zeroed chamber, the reply decoded with its CS checked
        code, doc = await diag_json(
            capsys, "serial", "send", "--device", smoke_path, "--model", "nht6", "A4"
        )
        assert code == 0 and doc["sent"] == nht_command(0xA4).hex(" ")
        smoke.clock.t += smoke.zero_s  # the zero lands; the optics drift on after it
        code, doc = await diag_json(
            capsys, "serial", "send", "--device", smoke_path, "--model", "nht6", "A5"
        )
        assert code == 0 and doc["sent"] == nht_command(0xA5).hex(" ")
        assert doc["decoded"]["opacity_pct"] == 0.0
        # a frame with a bad CS is sent as given: the opacimeter keeps silent, and says so
        code, out, err = await diag(
            capsys, "serial", "send", "--device", smoke_path, "--model", "nht6", "A5 00",
            "--timeout-ms", "200",
        )  # fmt: skip
        assert code == 1 and "CS BAD" in out
        assert "no answer in 200 ms" in err and "keeps silent at a frame whose CS is wrong" in err
    finally:
        await gas.aclose()
        await smoke.aclose()


async def test_a_reply_with_a_bad_checksum(capsys: pytest.CaptureFixture[str]) -> None:
    bad = bytearray(encode_hlt("ACK"))
    bad[-1] ^= 0x01
    async with PtyPort() as pty, answering(pty, lambda _: bytes(bad)):
        code, out, err = await diag(
            capsys, "serial", "send", "--device", pty.path, "--model", "hlt-ascii", "RST"
        )
    assert code == 1
    assert f"reply:   {bytes(bad).hex(' ').upper()}" in out  # shown, not used
    assert "decoded" not in out
    assert "reply with a bad checksum, discarded (BCC 4B, payload gives 4A)" in err


async def test_busy_missing_and_not_permitted_ports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with PtyPort() as pty:
        holder = SerialPort("daemon", SerialTransport(device=pty.path))
        await holder.start()
        try:
            assert holder.is_open
            code, out, err = await diag(
                capsys, "serial", "send", "--device", pty.path, "--model", "nha503", "81"
            )
        finally:
            await holder.aclose()
    assert code == 1 and out == ""
    assert f"port {pty.path} is busy: another program holds it" in err

    code, _, err = await diag(
        capsys, "serial", "send", "--device", str(tmp_path / "ttyUSB0"), "--model", "nht6", "A5"
    )
    assert code == 1 and f"no such serial port {tmp_path / 'ttyUSB0'}" in err


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv to take away the permission override",
)
async def test_permission_denied_names_the_dialout_fix() -> None:
    async with PtyPort() as pty:
        os.chmod(pty.path, 0o660)
        os.chown(pty.path, 0, 20)  # root:dialout, as udev leaves /dev/ttyUSB0
        os.chmod(pty.path, 0o060)  # ... and a user who is not in dialout
        # root without CAP_DAC_OVERRIDE is an ordinary user as far as the mode bits go
        proc = await asyncio.create_subprocess_exec(
            "setpriv", "--clear-groups", "--bounding-set=-dac_override,-dac_read_search",
            sys.executable, "-m", "linectl", "diag", "serial", "send",
            "--device", pty.path, "--model", "hlt-ascii", "RST",
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1 and out == b""
    assert err.decode().strip() == (
        f"linectl diag: permission denied on {pty.path}: add the user to the dialout group: "
        "sudo usermod -aG dialout $USER, then log out and in again"
    )


async def test_sniff_cuts_a_line_into_frames(capsys: pytest.CaptureFixture[str]) -> None:
    bad = bytearray(encode_hlt("ACK"))
    bad[-1] ^= 0x10
    frames = [
        encode_hlt("MEA,L,H"),
        encode_hlt("ACK"),
        encode_hlt("RES"),
        encode_hlt("RES,L,H,18000,12,-30,700"),
        bytes(bad),
    ]
    async with PtyPort() as pty:
        task = asyncio.create_task(
            diag(
                capsys, "sniff", "--device", pty.path, "--model", "hlt-ascii", "--count", "5",
                "--json", "--duration", "20",
            )
        )  # fmt: skip
        # the sniffer listens once its port is open: until then the line drops bytes
        early = await listening(capsys)
        for f in frames:
            pty.write(f)
            await asyncio.sleep(0.05)  # longer than the 5 ms gap between frames
        code, out, _ = await task
    assert code == 0
    got = [json.loads(line) for line in (early + out).splitlines()]
    assert [(g["direction"], g["checksum"]) for g in got] == [
        ("host>dev", "ok"),
        ("dev>host", "ok"),
        ("host>dev", "ok"),
        ("dev>host", "ok"),
        ("?", "BAD"),
    ]
    assert [g["hex"] for g in got] == [f.hex(" ") for f in frames]
    assert got[3]["reads"].startswith("RES lamp L beam H: 18000 cd")
    assert "BadChecksum" in got[4]["reads"]


async def test_sniff_tells_the_analyser_s_side_by_its_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    gas = GasAnalyserEmulator(ManualClock(), warmup_s=0)
    async with PtyPort() as pty:
        task = asyncio.create_task(
            diag(
                capsys, "sniff", "--device", pty.path, "--model", "nha503", "--count", "3", "--json"
            )
        )
        early = await listening(capsys)
        reading = gas.on_bytes(b"\x81")[0]
        broken = bytearray(reading)
        broken[5] ^= 0x04
        for chunk in (b"\x81", reading, bytes(broken)):
            pty.write(chunk)
            await asyncio.sleep(0.05)
        code, out, _ = await task
    got = [json.loads(line) for line in (early + out).splitlines()]
    assert code == 0
    assert [(g["direction"], g["checksum"]) for g in got] == [
        ("host>dev", "none"),
        ("dev>host", "ok"),
        ("dev>host", "BAD"),
    ]
    assert got[0]["reads"] == "read" and "status 00 (ready)" in got[1]["reads"]


async def listening(capsys: pytest.CaptureFixture[str]) -> str:
    """Wait until the sniffer says it listens (its port open and flushed, so what is
    written now reaches it); what it printed on stdout meanwhile."""
    out, err = [], []

    async def said() -> str:
        o, e = capsys.readouterr()
        out.append(o)
        err.append(e)
        return "".join(err)

    await eventually(said, lambda e: "listening on" in e, timeout_s=20, pause_s=0.01)
    return "".join(out)


async def test_ports_lists_configured_ports_and_whether_they_open(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with PtyPort() as free, PtyPort() as held:
        free.link(tmp_path / "tty-free")
        held.link(tmp_path / "tty-held")
        cfg = tmp_path / "site.toml"
        cfg.write_text(_config(["tty-free", "tty-held", "tty-gone"]), encoding="utf-8")
        holder = SerialPort("daemon", SerialTransport(device=held.path))
        await holder.start()
        try:
            code, rows = await diag_json(capsys, "ports", "--config", str(cfg))
        finally:
            await holder.aclose()
    assert code == 0
    by_port = {Path(r["port"]).name: r for r in rows}
    assert by_port["tty-free"]["opens"] and by_port["tty-free"]["used_by"] == ["hlt-1"]
    assert not by_port["tty-held"]["opens"] and by_port["tty-held"]["why"] == "busy"
    assert by_port["tty-gone"]["why"] == "no_port" and by_port["tty-gone"]["used_by"] == ["smoke-1"]


def _config(ttys: list[str]) -> str:
    models = ["hlt-ascii", "nha503", "nht6"]
    ids = ["hlt-1", "gas-1", "smoke-1"]
    kinds = ["headlamp", "emission", "emission"]
    stations = "\n".join(
        f"""[[lines.stations]]
id = "s{i}"
kind = "{kind}"
devices = [{{ id = "{dev}", model = "{model}", transport = {{ kind = "serial", device = "{tty}" }} }}]
"""
        for i, (tty, model, dev, kind) in enumerate(zip(ttys, models, ids, kinds, strict=True))
    )
    return f"""site_id = "t"
[[lines]]
id = "L1"
proxy_drivers = ["D1"]
io = {{ id = "io-1", model = "lineio-modbus", transport = {{ kind = "tcp", port = 1502 }} }}
{stations}"""
