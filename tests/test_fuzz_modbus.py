"""Fuzz: Modbus replies, valid ones with any values and mutated ones, reach the drivers.

A scripted device on a real TCP socket answers every request with a frame the
test builds: the valid reply made by pymodbus's own encoders (response PDU
and MBAP framer), with register and bit values drawn at random, then
mutated or not (bytes flipped, cut short, lengthened, another function code,
an exception reply, random bytes instead). The drivers decode it on their
real path: pymodbus's client, the bus, the register-map decoders of the
brake tester (status, ring reader) and of the line I/O (inputs, display
blocks). Whatever arrives, the outcome is a value that devices.md allows or
a `DeviceError`: never another exception, never a hang (each request is
bounded by the bus timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from fuzz_strategies import io_bound
from hypothesis import given
from hypothesis import strategies as st
from pymodbus.framer import FramerSocket
from pymodbus.pdu import DecodePDU, ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsResponse,
    ReadDiscreteInputsResponse,
    WriteSingleCoilResponse,
)
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
    WriteMultipleRegistersResponse,
    WriteSingleRegisterResponse,
)

from linectl.config import DeviceConfig, TcpTransport
from linectl.drivers.errors import DeviceError
from linectl.drivers.lineio_modbus import LineIO, Prompt
from linectl.drivers.modbus import BusRegistry, ModbusBus
from linectl.drivers.rbt_modbus import RbtCommand, RbtModbus, RbtState

TIMEOUT_S = 0.03  # real seconds per request: a reply cut short costs this much

Mutation = Callable[[bytes], bytes]


@dataclass
class Request:
    tid: int
    unit: int
    fc: int
    address: int
    count: int
    values: list[int] = field(default_factory=list)


def parse_request(adu: bytes) -> Request:
    tid, _pid, _length, unit, fc = struct.unpack(">HHHBB", adu[:8])
    body = adu[8:]
    address = int.from_bytes(body[0:2], "big")
    if fc in (1, 2, 3, 4):
        return Request(tid, unit, fc, address, int.from_bytes(body[2:4], "big"))
    if fc in (5, 6):
        return Request(tid, unit, fc, address, 1, [int.from_bytes(body[2:4], "big")])
    if fc == 16:
        count = int.from_bytes(body[2:4], "big")
        regs = [int.from_bytes(body[5 + 2 * i : 7 + 2 * i], "big") for i in range(count)]
        return Request(tid, unit, fc, address, count, regs)
    raise AssertionError(f"the drivers never send function code {fc}")


def valid_reply(req: Request, words: list[int]) -> bytes:
    """The reply a device that holds `words` (cycled) gives, built by pymodbus."""
    values = [words[i % len(words)] & 0xFFFF for i in range(req.count)]
    pdu: ModbusPDU
    if req.fc == 1:
        pdu = ReadCoilsResponse(bits=[bool(v & 1) for v in values])
    elif req.fc == 2:
        pdu = ReadDiscreteInputsResponse(bits=[bool(v & 1) for v in values])
    elif req.fc == 3:
        pdu = ReadHoldingRegistersResponse(registers=values)
    elif req.fc == 4:
        pdu = ReadInputRegistersResponse(registers=values)
    elif req.fc == 5:
        pdu = WriteSingleCoilResponse(address=req.address, bits=[bool(req.values[0])])
    elif req.fc == 6:
        pdu = WriteSingleRegisterResponse(address=req.address, registers=req.values)
    else:
        pdu = WriteMultipleRegistersResponse(address=req.address, count=req.count)
    pdu.dev_id, pdu.transaction_id = req.unit, req.tid
    return FramerSocket(DecodePDU(is_server=True)).buildFrame(pdu)


def exception_reply(req: Request, code: int) -> bytes:
    pdu = ExceptionResponse(req.fc, code)
    pdu.dev_id, pdu.transaction_id = req.unit, req.tid
    return FramerSocket(DecodePDU(is_server=True)).buildFrame(pdu)


class ScriptedDevice:
    """A Modbus TCP device that answers request k with `script[k](valid reply)`."""

    def __init__(self) -> None:
        self.words: list[int] = [0]
        self.script: list[Callable[[Request, bytes], bytes]] = []
        self.served = 0
        self.server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []
        self._handlers: list[asyncio.Task[None]] = []

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.append(task)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while True:
                head = await reader.readexactly(6)
                length = int.from_bytes(head[4:6], "big")
                adu = head + await reader.readexactly(length)
                req = parse_request(adu)
                answer = (
                    self.script[self.served % len(self.script)] if self.script else (lambda r, b: b)
                )
                self.served += 1
                out = answer(req, valid_reply(req, self.words))
                if out:
                    writer.write(out)
                    await writer.drain()
        writer.close()

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
            for w in self._writers:
                w.close()  # each connection's handler then reads EOF and ends
            await asyncio.gather(*self._handlers, return_exceptions=True)
            await self.server.wait_closed()


@dataclass
class Rig:
    device: ScriptedDevice
    bus: ModbusBus
    rbt: RbtModbus
    io: LineIO


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    device = ScriptedDevice()
    port = await device.start()
    transport = TcpTransport(host="127.0.0.1", port=port)
    registry = BusRegistry()
    # A tiny backoff: a unit that timed out is asked again at the next example.
    bus = ModbusBus(transport, TIMEOUT_S, backoff_min_s=0.001, backoff_max_s=0.002)
    rbt = RbtModbus(DeviceConfig(id="rbt", model="rbt-modbus", unit=1, transport=transport), bus)
    io = LineIO(
        DeviceConfig(id="io", model="lineio-modbus", unit=2, transport=transport), bus, n_stations=3
    )
    try:
        yield Rig(device, bus, rbt, io)
    finally:
        await registry.close_all()
        await bus.close()
        await device.aclose()


# --- mutations of a valid reply ---------------------------------------------------------


def _flip(at: int, value: int) -> Callable[[Request, bytes], bytes]:
    def m(req: Request, frame: bytes) -> bytes:
        b = bytearray(frame)
        b[at % len(b)] = value
        return bytes(b)

    return m


def _cut(keep: int) -> Callable[[Request, bytes], bytes]:
    return lambda req, frame: frame[: keep % len(frame)]


def _extend(extra: bytes) -> Callable[[Request, bytes], bytes]:
    return lambda req, frame: frame + extra


def _body(at: int, value: int) -> Callable[[Request, bytes], bytes]:
    """A byte of the PDU changed and the MBAP length kept consistent: the frame is
    whole, only its content is wrong (what a noisy gateway passes on)."""

    def m(req: Request, frame: bytes) -> bytes:
        b = bytearray(frame)
        b[7 + at % (len(b) - 7)] = value
        return bytes(b)

    return m


def _function(fc: int) -> Callable[[Request, bytes], bytes]:
    return lambda req, frame: frame[:7] + bytes([fc]) + frame[8:]


def _exception(code: int) -> Callable[[Request, bytes], bytes]:
    return lambda req, frame: exception_reply(req, code)


def _random(data: bytes) -> Callable[[Request, bytes], bytes]:
    return lambda req, frame: data


def _resized(n: int) -> Callable[[Request, bytes], bytes]:
    """Registers added or removed, with byte count and MBAP length that agree."""

    def m(req: Request, frame: bytes) -> bytes:
        if req.fc not in (3, 4):
            return frame
        regs = frame[9:]
        regs = (regs + b"\x00\x01" * max(0, n))[: max(0, len(regs) + 2 * n)]
        pdu = bytes([req.fc, len(regs) & 0xFF]) + regs
        return frame[:4] + (len(pdu) + 1).to_bytes(2, "big") + frame[6:7] + pdu

    return m


def _valid() -> Callable[[Request, bytes], bytes]:
    return lambda req, frame: frame


mutations = st.one_of(
    st.builds(_valid),
    st.builds(_valid),
    st.builds(_flip, st.integers(0, 300), st.integers(0, 255)),
    st.builds(_body, st.integers(0, 300), st.integers(0, 255)),
    st.builds(_cut, st.integers(0, 300)),
    st.builds(_extend, st.binary(min_size=1, max_size=12)),
    st.builds(_function, st.integers(0, 255)),
    st.builds(_exception, st.integers(0, 255)),
    st.builds(_random, st.binary(min_size=1, max_size=40)),
    st.builds(_resized, st.integers(-4, 4)),
)
words = st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=12)
scripts = st.lists(mutations, min_size=1, max_size=4)


async def outcome(call: Callable[[], object]) -> object:
    """The call's value, or the DeviceError it raised: nothing else may come out."""
    try:
        return await asyncio.wait_for(call(), 10 * TIMEOUT_S + 2.0)  # type: ignore[arg-type]
    except DeviceError as e:
        return e


@io_bound()
@given(words=words, script=scripts, op=st.sampled_from(["status", "ring", "command"]))
async def test_brake_tester_replies(rig: Rig, words: list[int], script: list, op: str) -> None:
    rig.device.words, rig.device.script, rig.device.served = words, script, 0
    if op == "status":
        status = await outcome(rig.rbt.status)
        if not isinstance(status, DeviceError):
            assert isinstance(status.state, RbtState)
            assert 0 <= status.sample_count <= 0xFFFFFFFF
    elif op == "ring":
        reader = rig.rbt.ring_reader()
        reader.count = words[0] % 2048  # anywhere in a run, wrapped or not
        n = await outcome(reader.poll)
        if not isinstance(n, DeviceError):
            assert 0 <= n <= reader.slots
            assert reader.samples().shape == (n, 2)
    else:
        await outcome(lambda: rig.rbt.command(RbtCommand.STOP))


@io_bound()
@given(
    words=words,
    script=scripts,
    station=st.integers(0, 2),
    op=st.sampled_from(["inputs", "all_inputs", "show", "light"]),
)
async def test_line_io_replies(
    rig: Rig, words: list[int], script: list, station: int, op: str
) -> None:
    rig.device.words, rig.device.script, rig.device.served = words, script, 0
    if op == "inputs":
        inputs = await outcome(lambda: rig.io.inputs(station))
        if not isinstance(inputs, DeviceError):
            assert isinstance(inputs.in_position, bool) and isinstance(inputs.exit_clear, bool)
    elif op == "all_inputs":
        every = await outcome(rig.io.all_inputs)
        if not isinstance(every, DeviceError):
            assert len(every) == 3
    elif op == "show":
        rig.io._shown[station] = None  # read the block again, from the wire
        seq = await outcome(lambda: rig.io.show(station, Prompt.WAIT, "粤B12345", "wait"))
        if not isinstance(seq, DeviceError):
            assert 0 <= seq <= 0xFFFF
    else:
        await outcome(lambda: rig.io.set_entry_light(station, True))
