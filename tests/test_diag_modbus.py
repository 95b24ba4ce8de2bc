"""`linectl diag modbus read|write` against the simulated brake tester and line I/O,
over a real TCP socket and over RTU through a real pty null-modem: values named by
the register map, exception replies and wrong unit ids in words, exit status."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from diag_fixtures import diag, diag_json
from modbus_fixtures import ManualClock, served

from linectl.config import RtuTransport, TcpTransport
from sim.rbt import BrakeTesterEmulator


@pytest.fixture
async def brake_tcp() -> AsyncIterator[tuple[BrakeTesterEmulator, list[str]]]:
    emu = BrakeTesterEmulator(ManualClock())
    async with served([emu.sim_device()], "tcp") as (transport, _):
        assert isinstance(transport, TcpTransport)
        yield emu, ["--host", transport.host, "--port", str(transport.port)]


async def test_read_input_registers_named_by_the_model(
    brake_tcp: tuple[BrakeTesterEmulator, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, where = brake_tcp
    code, out, _ = await diag(
        capsys, "modbus", "read", *where, "--table", "input", "--address", "0", "--count", "9",
        "--model", "rbt-modbus",
    )  # fmt: skip
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["address", "name", "value", "raw"]
    assert lines[1].split() == ["0", "STATE", "0", "IDLE", "0000"]
    assert "SAMPLE_COUNT" in lines[-1] and "0000 0000" in lines[-1]  # a u32, read whole

    code, values = await diag_json(
        capsys, "modbus", "read", *where, "--table", "input", "--count", "9",
        "--model", "rbt-modbus", "--format", "u16",
    )  # fmt: skip
    assert code == 0 and isinstance(values, list) and len(values) == 9
    assert [v["address"] for v in values] == list(range(9))
    assert values[0] == {
        "address": 0, "value": 0, "raw": [0], "name": "STATE", "meaning": "IDLE"
    }  # fmt: skip
    assert values[7]["name"] == "SAMPLE_COUNT[0]" and values[8]["name"] == "SAMPLE_COUNT[1]"

    code, plain = await diag_json(
        capsys, "modbus", "read", *where, "--table", "input", "--count", "9"
    )
    assert code == 0 and [v["value"] for v in plain] == [0] * 9 and "name" not in plain[0]


async def test_an_address_the_device_lacks_is_exception_02_in_words(
    brake_tcp: tuple[BrakeTesterEmulator, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    _, where = brake_tcp
    code, out, err = await diag(
        capsys, "modbus", "read", *where, "--table", "input", "--address", "9"
    )
    assert code == 1 and out == ""
    assert "02 illegal data address: this device has no input register 9" in err
    assert err.count("\n") == 1 and "Traceback" not in err

    code, _, err = await diag(
        capsys, "modbus", "read", *where, "--table", "input", "--address", "5", "--count", "6",
        "--model", "rbt-modbus",
    )  # fmt: skip
    assert code == 1 and "no input register 9 (rbt-modbus map)" in err
    code, _, err = await diag(capsys, "modbus", "read", *where, "--table", "coils")
    assert code == 1 and "no coil 0" in err


async def test_write_a_command_and_a_value_out_of_range(
    brake_tcp: tuple[BrakeTesterEmulator, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    emu, where = brake_tcp
    assert not emu.lift_up
    code, out, _ = await diag(
        capsys, "modbus", "write", *where, "--table", "holding", "--address", "0",
        "--value", "5", "--model", "rbt-modbus",
    )  # fmt: skip
    assert code == 0 and "COMMAND" in out and "5 LIFT_UP" in out
    assert emu.command == 5 and not emu.lift_up, "the lift travels before input 4 changes"
    emu.clock.t += emu.lift_travel_s
    assert emu.lift_up

    code, _, err = await diag(
        capsys, "modbus", "write", *where, "--table", "holding", "--address", "1",
        "--value", "15", "--model", "rbt-modbus",
    )  # fmt: skip
    assert code == 1
    assert "03 illegal data value" in err and "SAMPLE_PERIOD_MS takes 10..100 in steps of 10" in err
    assert emu.sample_period_ms == 10


async def test_wrong_unit_id_over_tcp_and_rtu(capsys: pytest.CaptureFixture[str]) -> None:
    emu = BrakeTesterEmulator(ManualClock(), unit=1)
    async with served([emu.sim_device()], "tcp") as (tcp, _):
        assert isinstance(tcp, TcpTransport)
        code, _, err = await diag(
            capsys, "modbus", "read", "--host", tcp.host, "--port", str(tcp.port),
            "--unit", "5", "--table", "input",
        )  # fmt: skip
    # a Modbus TCP server that has no unit 5 says so (0B); the words name the cause
    assert code == 1 and "0B gateway target device failed to respond" in err
    assert "unit 5" in err and "wrong unit id" in err

    async with served([emu.sim_device()], "rtu") as (rtu, _):
        assert isinstance(rtu, RtuTransport)
        serial = ["--device", rtu.device, "--baud", "19200", "--timeout-ms", "300"]
        code, out, _ = await diag(
            capsys, "modbus", "read", *serial, "--unit", "1", "--table", "input"
        )
        assert code == 0 and out.splitlines()[1].split()[:2] == ["0", "0"]
        code, _, err = await diag(
            capsys, "modbus", "read", *serial, "--unit", "5", "--table", "input"
        )
    # on RTU a missing unit keeps silent: no answer in the time limit, wrong unit id named
    assert code == 1 and "no answer in 300 ms (unit 5)" in err and "wrong unit id" in err


async def test_a_device_that_is_down(capsys: pytest.CaptureFixture[str]) -> None:
    emu = BrakeTesterEmulator(ManualClock())
    async with served([emu.sim_device()], "tcp") as (tcp, _):
        assert isinstance(tcp, TcpTransport)
        port = tcp.port
    code, _, err = await diag(
        capsys, "modbus", "read", "--host", "127.0.0.1", "--port", str(port), "--table", "input"
    )
    assert code == 1 and "connection refused: nothing listens there" in err
    code, _, err = await diag(
        capsys, "modbus", "read", "--device", "/dev/ttyUSB97", "--table", "input"
    )
    assert code == 1 and "no such serial port /dev/ttyUSB97" in err


async def test_bad_flags_are_refused_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = await diag(capsys, "modbus", "read", "--table", "input")
    assert code == 2 and "give either --host" in err
    code, _, err = await diag(
        capsys, "modbus", "read", "--host", "127.0.0.1", "--table", "input", "--count", "3",
        "--format", "u32",
    )  # fmt: skip
    assert code == 2 and "give an even --count" in err
