"""Device faults injected by the simulator (sim/faults.py) and what each emulator does.

The plan: parsed from TOML, every mistake named by fault and key, refused by
`linectl sim` before anything listens; the random mode: seeded, only kinds
that fit each device. The runner plays faults at their simulated moments,
one at a time per device. Each emulator then shows its fault on the wire as
the daemon's own drivers see it (silence, exception 04 or 06, a dropped
connection, a bad CRC, garbled or vanished serial lines, a bouncing photo
switch) and is itself again once the fault ends.
"""

from __future__ import annotations

import asyncio
import itertools
from pathlib import Path

import pytest
from modbus_fixtures import ManualClock
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ModbusIOException
from serial_fixtures import on_pty

from linectl.cli import main
from linectl.clock import Clock
from linectl.config import REPO_DIR
from linectl.drivers.errors import DeviceError
from linectl.drivers.hlt_ascii import HltAscii
from sim.faults import (
    KINDS,
    DeviceSpot,
    Fault,
    FaultPlan,
    FaultPlanError,
    FaultRunner,
    kinds_for,
    random_faults,
)
from sim.headlamp_tester import HeadlampTesterEmulator
from sim.lineio import BOUNCE_S, LineIOEmulator
from sim.modbus_server import serve_tcp
from sim.pty import NullModem

SPOTS = {
    "io-L1": DeviceSpot("io-L1", "lineio-modbus", "tcp"),
    "rbt-L1": DeviceSpot("rbt-L1", "rbt-modbus", "rtu"),
    "hlt-L1": DeviceSpot("hlt-L1", "hlt-ascii", "serial"),
    "gas-L1": DeviceSpot("gas-L1", "nha503", "serial"),
}


def test_a_plan_is_read_in_order_of_its_moments(tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        """
[[fault]]
device = "hlt-L1"
kind = "head_lost"
at_s = 90
for_s = 30

[[fault]]
device = "io-L1"
kind = "modbus_drop"
at_s = 10
""",
        encoding="utf-8",
    )
    faults = FaultPlan.load(plan, SPOTS).faults
    assert faults == [
        Fault("io-L1", "modbus_drop", 10.0, 0.0),
        Fault("hlt-L1", "head_lost", 90.0, 30.0),
    ]


@pytest.mark.parametrize(
    ("entry", "named"),
    [
        ({"device": "rbt-L9", "kind": "lift_stuck", "at_s": 0}, "fault 1.device: 'rbt-L9'"),
        ({"device": "rbt-L1", "kind": "on_fire", "at_s": 0}, "fault 1.kind: 'on_fire'"),
        ({"device": "hlt-L1", "kind": "lift_stuck", "at_s": 0}, "lift_stuck does not fit hlt-L1"),
        # A TCP drop on a device behind an RTU line: there is no connection to drop.
        ({"device": "rbt-L1", "kind": "modbus_drop", "at_s": 0}, "modbus_drop does not fit"),
        ({"device": "io-L1", "kind": "rtu_bad_crc", "at_s": 0}, "rtu_bad_crc does not fit"),
        ({"device": "io-L1", "kind": "modbus_drop", "at_s": -1}, "fault 1.at_s"),
        ({"device": "io-L1", "kind": "modbus_drop", "at_s": 1, "for_s": "1m"}, "fault 1.for_s"),
        ({"device": "io-L1", "kind": "modbus_drop", "at_s": 1, "when": 3}, "unknown key(s) when"),
    ],
)
def test_a_bad_plan_names_the_fault_and_the_key(entry: dict[str, object], named: str) -> None:
    with pytest.raises(FaultPlanError) as e:
        FaultPlan.parse({"fault": [entry]}, SPOTS)
    assert named in str(e.value)


def test_a_plan_is_fault_tables() -> None:
    with pytest.raises(FaultPlanError, match=r"use \[\[fault\]\]"):
        FaultPlan.parse({"faults": []}, SPOTS)


def test_linectl_sim_refuses_a_bad_plan_before_it_listens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[[fault]]\ndevice = "rbt-L1"\nkind = "head_lost"\nat_s = 5\n', "utf-8")
    config = str(REPO_DIR / "config" / "site.example.toml")
    assert main(["sim", "--config", config, "--faults", str(plan)]) == 2
    err = capsys.readouterr().err
    assert "fault 1.kind: head_lost does not fit rbt-L1" in err
    assert main(["sim", "--config", config, "--faults", str(tmp_path / "none.toml")]) == 2
    assert "none.toml" in capsys.readouterr().err


def test_random_faults_are_seeded_and_fit_their_device() -> None:
    a = random_faults(SPOTS, 0.2, seed=7, until_s=3600)
    assert a == random_faults(SPOTS, 0.2, seed=7, until_s=3600)
    assert a != random_faults(SPOTS, 0.2, seed=8, until_s=3600)
    assert random_faults(SPOTS, 0.0, seed=7, until_s=3600) == []
    assert {f.device for f in a} == set(SPOTS)
    for f in a:
        assert f.kind in kinds_for(SPOTS[f.device]), f
        lo, hi = KINDS[f.kind][2]
        assert lo <= f.for_s <= hi
    # One at a time per device.
    for dev in SPOTS:
        mine = [f for f in a if f.device == dev]
        assert all(x.until_s <= y.at_s for x, y in itertools.pairwise(mine))


async def test_the_runner_plays_faults_one_at_a_time_per_device() -> None:
    clock = Clock(1000.0)
    seen: list[tuple[str, bool, float]] = []

    def switch(f: Fault, on: bool) -> None:
        seen.append((f.kind, on, round(clock.now() - t0)))

    runner = FaultRunner(clock, {"gas-L1": switch})
    t0 = clock.now()
    await runner.play(
        [
            Fault("gas-L1", "analyser_busy", 10, 40),
            Fault("gas-L1", "serial_silent", 20, 10),  # waits for the busy one to end
        ]
    )
    assert [(k, on) for k, on, _ in seen] == [
        ("analyser_busy", True),
        ("analyser_busy", False),
        ("serial_silent", True),
        ("serial_silent", False),
    ]
    assert seen[1][2] == pytest.approx(50, abs=3) and seen[2][2] >= seen[1][2]
    assert runner.injected == {"analyser_busy": 1, "serial_silent": 1}
    assert not runner.active


async def test_a_modbus_slave_goes_silent_answers_04_or_06_and_comes_back() -> None:
    emu = LineIOEmulator(ManualClock(), 3)
    trouble: dict[int, str | None] = {1: None}
    server = await serve_tcp([emu.sim_device()], gate=lambda unit: trouble.get(unit))
    client = AsyncModbusTcpClient("127.0.0.1", port=server.port, timeout=0.3, retries=0)
    try:
        await client.connect()
        assert not (await client.read_discrete_inputs(0, count=2, device_id=1)).isError()
        for code, exc in (("04", 4), ("06", 6)):
            trouble[1] = code
            rsp = await client.read_discrete_inputs(0, count=2, device_id=1)
            assert rsp.isError() and rsp.exception_code == exc
        trouble[1] = "silent"
        with pytest.raises(ModbusIOException):  # no answer in time
            await client.read_discrete_inputs(0, count=2, device_id=1)
        trouble[1] = None
        client.close()
        await client.connect()
        assert not (await client.read_discrete_inputs(0, count=2, device_id=1)).isError()
        # A unit nobody emulates behind this gateway is still 0B, faults or not.
        rsp = await client.read_discrete_inputs(0, count=2, device_id=9)
        assert rsp.isError() and rsp.exception_code == 0x0B
        assert server.drop_connections() == 1
        await asyncio.sleep(0.1)
        assert not client.connected
    finally:
        client.close()
        await server.close()


async def test_an_rtu_cable_bends_what_the_instrument_sends() -> None:
    async with NullModem() as modem:
        host = open(modem.ends[1], "rb", buffering=0)  # noqa: SIM115, ASYNC230
        inst = open(modem.ends[0], "wb", buffering=0)  # noqa: SIM115, ASYNC230
        try:
            frame = bytes([1, 3, 2, 0, 7, 0xF9, 0x86])
            for tamper, expect in (
                (lambda b: b[:-1] + bytes([b[-1] ^ 0x5A]), frame[:-1] + bytes([0x86 ^ 0x5A])),
                (lambda b: b[: max(1, len(b) - 3)], frame[:-3]),
                (None, frame),
            ):
                modem.tamper = tamper
                inst.write(frame)
                got = b""
                while len(got) < len(expect):
                    got += await asyncio.to_thread(host.read, 64)
                assert got == expect
        finally:
            host.close()
            inst.close()


async def test_a_serial_instrument_garbles_goes_away_and_comes_back(tmp_path: Path) -> None:
    emu = HeadlampTesterEmulator(ManualClock())
    async with on_pty(emu, HltAscii, link=tmp_path / "hlt") as hlt:
        await hlt.reset()
        emu.garbled = True
        with pytest.raises(DeviceError):
            await hlt.reset()
        emu.garbled = False
        await emu.unplug()
        assert not (tmp_path / "hlt").exists()
        with pytest.raises(DeviceError):
            await hlt.reset()
        await emu.replug()
        assert (tmp_path / "hlt").is_symlink()
        # The driver reopens its port by itself: the instrument answers again.
        for _ in range(50):
            try:
                await hlt.reset()
                break
            except DeviceError:
                await asyncio.sleep(0.1)
        else:
            pytest.fail("the headlamp tester did not come back after its port returned")


def test_a_chattering_photo_switch_bounces_only_after_it_changed() -> None:
    clock = ManualClock()
    emu = LineIOEmulator(clock, 2)
    emu.chatter = True
    a = emu.map.station_address("IN_POSITION", 0)
    bits = list(emu._inputs)
    # Nothing changed yet: no bounce, the vehicle is not seen before it is there.
    assert all(emu._chattering(bits)[a] is False for _ in range(200))
    clock.t = 10.0
    emu.set_inputs(0, in_position=True)
    bits = list(emu._inputs)
    clock.t = 10.0 + BOUNCE_S / 2
    reads = [emu._chattering(bits)[a] for _ in range(200)]
    assert True in reads and False in reads
    clock.t = 10.0 + BOUNCE_S + 0.1
    assert all(emu._chattering(bits)[a] is True for _ in range(200))
    assert emu.inputs(0) == (True, True)  # the model itself never bounced
