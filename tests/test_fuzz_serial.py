"""Fuzz: every serial framing parser, fed valid frames with any values, mutated frames
and random bytes.

The encoders of linectl.drivers.framing build a valid frame from fields drawn
at random; a mutation (fuzz_strategies) turns it into what a noisy line could
deliver. Two levels:
- the parsers alone, as the port applies them (splitter, then decoder), and
  the instrument-side request parsers the simulator uses: a frame, or a
  `FrameError`; nothing else, never a length past the bytes, always progress;
- the three drivers over a real pty, the test playing the instrument: the
  reply to each request is mutated, and the driver's call gives a value the
  contract allows or a `DeviceError`, within its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from fuzz_strategies import Mutation, io_bound, mutations
from hypothesis import given
from hypothesis import strategies as st

from linectl.config import DeviceConfig
from linectl.drivers.errors import DeviceError
from linectl.drivers.framing import (
    HLT_MAX_HEIGHT_MM,
    HLT_MAX_INTENSITY_CD,
    HLT_MAX_OFFSET_MM,
    NHA_READ,
    NHA_STATUS_BITS,
    NHT_CLEAR_PEAKS,
    NHT_COMMANDS,
    NHT_PEAKS,
    NHT_REALTIME,
    NHT_ZERO,
    FrameError,
    GasFrame,
    HltReply,
    NhaReply,
    NhaStatus,
    SmokeFrame,
    Splitter,
    decode_gas_frame,
    decode_hlt,
    decode_nha_reply,
    decode_nht_echo,
    decode_smoke_frame,
    encode_gas_frame,
    encode_hlt,
    encode_smoke_frame,
    nht_command,
    nht_splitter,
    parse_hlt_command,
    parse_hlt_reply,
    parse_hlt_request,
    parse_nht_request,
    split_gas_frame,
    split_hlt,
    split_one_byte,
)
from linectl.drivers.hlt_ascii import HltAscii
from linectl.drivers.nha503 import Nha503
from linectl.drivers.nht6 import Nht6
from linectl.drivers.serial import SerialDevice
from sim.pty import PtyPort

# --- valid frames from the encoders --------------------------------------------------

gas_frames = st.builds(
    GasFrame,
    hc_ppm=st.integers(0, 0xFFFF),
    co_pct=st.integers(0, 0xFFFF).map(lambda v: v / 100),
    co2_pct=st.integers(0, 0xFFFF).map(lambda v: v / 100),
    o2_pct=st.integers(0, 0xFFFF).map(lambda v: v / 100),
    no_ppm=st.integers(0, 0xFFFF),
    rpm=st.integers(0, 0xFFFF),
    oil_temp_c=st.integers(-0x8000, 0x7FFF).map(lambda v: v / 10),
    flow_l_min=st.integers(0, 0xFFFF).map(lambda v: v / 10),
    status=st.integers(0, NHA_STATUS_BITS).map(NhaStatus),
    lambda_=st.integers(0, 0xFFFF).map(lambda v: v / 1000),
)
smoke_frames = st.builds(
    SmokeFrame,
    cmd=st.sampled_from([NHT_REALTIME, NHT_PEAKS]),
    opacity_pct=st.integers(0, 0xFFFF).map(lambda v: v / 10),
    k_per_m=st.integers(0, 0xFFFF).map(lambda v: v / 100),
    rpm=st.integers(0, 0xFFFF),
    oil_temp_c=st.integers(-0x8000, 0x7FFF).map(lambda v: v / 10),
)
printable = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
hlt_payloads = st.one_of(
    st.sampled_from(["ACK", "BUSY", "ERR,E1", "ERR,E2", "ERR,E3", "ERR,E4", "ERR,E9"]),
    st.builds(
        lambda lamp, beam, i, h, v, height: f"RES,{lamp},{beam},{i},{h},{v},{height}",
        st.sampled_from(["L", "LI", "RI", "R", "X", ""]),
        st.sampled_from(["H", "L", "Q"]),
        st.integers(-10, 2 * HLT_MAX_INTENSITY_CD),
        st.integers(-2 * HLT_MAX_OFFSET_MM, 2 * HLT_MAX_OFFSET_MM),
        st.integers(-2 * HLT_MAX_OFFSET_MM, 2 * HLT_MAX_OFFSET_MM),
        st.integers(-10, 2 * HLT_MAX_HEIGHT_MM),
    ),
    printable.filter(lambda p: "\x02" not in p and "\x03" not in p),
)


def take(buf: bytes, split: Splitter, decode: Callable[[bytes], Any]) -> Any:
    """What the port does with the bytes of one reply: split, then decode."""
    n = split(buf)
    if n is None:
        return None  # incomplete: the port waits, then times out
    assert 0 < n <= len(buf), (n, buf)
    return decode(bytes(buf[:n]))


def frame_or_refusal(buf: bytes, split: Splitter, decode: Callable[[bytes], Any]) -> Any:
    try:
        return take(buf, split, decode)
    except FrameError as e:
        return e


# --- the parsers alone ------------------------------------------------------------------


@given(frame=gas_frames, mutate=mutations())
def test_gas_reading(frame: GasFrame, mutate: Mutation) -> None:
    wire = encode_gas_frame(frame)
    got = frame_or_refusal(mutate(wire), split_gas_frame, decode_gas_frame)
    if isinstance(got, GasFrame):
        assert not got.status & ~NHA_STATUS_BITS
        assert encode_gas_frame(got) == mutate(wire)[:21]  # a frame, as the wire said
    if mutate(wire) == wire:
        assert got == frame


@given(data=st.binary(max_size=40))
def test_gas_command_reply(data: bytes) -> None:
    got = frame_or_refusal(data, split_one_byte, decode_nha_reply)
    assert got is None or isinstance(got, NhaReply | FrameError)


@given(frame=smoke_frames, mutate=mutations())
def test_smoke_frame(frame: SmokeFrame, mutate: Mutation) -> None:
    wire = encode_smoke_frame(frame)
    got = frame_or_refusal(
        mutate(wire), nht_splitter(frame.cmd), partial(decode_smoke_frame, cmd=frame.cmd)
    )
    assert got is None or isinstance(got, SmokeFrame | FrameError)
    if mutate(wire) == wire:
        assert got == frame


@given(cmd=st.sampled_from([NHT_CLEAR_PEAKS, NHT_ZERO]), mutate=mutations())
def test_smoke_echo(cmd: int, mutate: Mutation) -> None:
    got = frame_or_refusal(
        mutate(nht_command(cmd)), nht_splitter(cmd), partial(decode_nht_echo, cmd=cmd)
    )
    assert got is None or isinstance(got, FrameError)


@given(payload=hlt_payloads, mutate=mutations())
def test_headlamp_reply(payload: str, mutate: Mutation) -> None:
    wire = encode_hlt(payload)
    got = frame_or_refusal(mutate(wire), split_hlt, lambda f: parse_hlt_reply(decode_hlt(f)))
    assert got is None or isinstance(got, HltReply | FrameError)
    if isinstance(got, HltReply) and got.result is not None:
        r = got.result
        assert 0 <= r.intensity_cd <= HLT_MAX_INTENSITY_CD
        assert 0 < r.height_mm <= HLT_MAX_HEIGHT_MM
        assert max(abs(r.h_mm), abs(r.v_mm)) <= HLT_MAX_OFFSET_MM


@given(data=st.binary(max_size=200), requests=st.lists(st.sampled_from(NHT_COMMANDS), max_size=4))
def test_opacimeter_side_request_parser_always_progresses(data: bytes, requests: list[int]) -> None:
    buf = b"".join(nht_command(c) for c in requests) + data
    steps = 0
    while buf:
        cmd, used = parse_nht_request(buf)
        assert cmd is None or cmd in NHT_COMMANDS
        if used == 0:
            assert len(buf) < 2  # waiting for the second byte of a frame, nothing else
            break
        assert 0 < used <= len(buf)
        buf = buf[used:]
        steps += 1
        assert steps <= 200


@given(payloads=st.lists(hlt_payloads, max_size=3), mutate=mutations(), tail=st.binary(max_size=80))
def test_tester_side_request_parser_always_progresses(
    payloads: list[str], mutate: Mutation, tail: bytes
) -> None:
    buf = mutate(b"".join(encode_hlt(p) for p in payloads)) + tail
    steps = 0
    while buf:
        text, used, _broken = parse_hlt_request(buf)
        if text is not None:
            with contextlib.suppress(FrameError):
                parse_hlt_command(text)
        if used == 0:
            break  # an incomplete frame: the tester waits for more
        assert 0 < used <= len(buf)
        buf = buf[used:]
        steps += 1
        assert steps <= 400


# --- the drivers over a pty -------------------------------------------------------------


TIMEOUT_S = 0.03  # real seconds for each reply; a cut reply costs this much


@dataclass
class Instrument:
    """The far end of the cable: answers each request with `mutate(reply(request))`."""

    pty: PtyPort
    reply: Callable[[bytes], bytes] = lambda req: b""
    mutate: Mutation = lambda b: b

    async def run(self) -> None:
        while True:
            req = await self.pty.read()
            out = self.mutate(self.reply(req))
            if out:
                self.pty.write(out)


@dataclass
class Rig:
    instrument: Instrument
    gas: Nha503
    smoke: Nht6
    tester: HltAscii


def config(model: str, path: str) -> DeviceConfig:
    return DeviceConfig.model_validate(
        {
            "id": model,
            "model": model,
            "transport": {"kind": "serial", "device": path},
            "timeout_s": TIMEOUT_S,
        }
    )


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    """One pty and one instrument; each driver opens the same slave path in turn."""
    async with PtyPort() as pty:
        inst = Instrument(pty)
        task = asyncio.create_task(inst.run())
        drivers: list[SerialDevice] = []
        try:
            gas, smoke, tester = (
                Nha503(config("nha503", pty.path)),
                Nht6(config("nht6", pty.path)),
                HltAscii(config("hlt-ascii", pty.path)),
            )
            drivers = [gas, smoke, tester]
            yield Rig(inst, gas, smoke, tester)
        finally:
            for d in drivers:
                await d.aclose()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def one_driver(rig: Rig, dev: SerialDevice, call: Callable[[], Any]) -> Any:
    """Run `call` with only `dev` holding the port (RS-232: one owner at a time)."""
    for other in (rig.gas, rig.smoke, rig.tester):
        if other is not dev and other.port._owner is not None:
            await other.aclose()
            other.port = type(other.port)(other.id, other.port.transport, timeout_s=TIMEOUT_S)
            other.health = other.port.health
    await dev.port.wait_open()
    try:
        return await asyncio.wait_for(call(), 20 * TIMEOUT_S + 2.0)
    except DeviceError as e:
        return e


@io_bound()
@given(frame=gas_frames, mutate=mutations(), command=st.booleans())
async def test_gas_analyser_driver(
    rig: Rig, frame: GasFrame, mutate: Mutation, command: bool
) -> None:
    rig.instrument.mutate = mutate
    rig.instrument.reply = lambda req: (
        encode_gas_frame(frame) if req[:1] == bytes([NHA_READ]) else bytes([NhaReply.BUSY])
    )
    got = await one_driver(rig, rig.gas, rig.gas.zero if command else rig.gas.read)
    assert isinstance(got, DeviceError | GasFrame | NhaReply), got


@io_bound()
@given(frame=smoke_frames, mutate=mutations(), echo=st.booleans())
async def test_opacimeter_driver(rig: Rig, frame: SmokeFrame, mutate: Mutation, echo: bool) -> None:
    rig.instrument.mutate = mutate
    rig.instrument.reply = lambda req: (
        req[:2]
        if req[:1] in (bytes([NHT_CLEAR_PEAKS]), bytes([NHT_ZERO]))
        else encode_smoke_frame(frame)
    )
    call = (
        rig.smoke.clear_peaks
        if echo
        else (rig.smoke.realtime if frame.cmd == NHT_REALTIME else rig.smoke.peaks)
    )
    got = await one_driver(rig, rig.smoke, call)
    assert got is None or isinstance(got, DeviceError | SmokeFrame), got


@io_bound()
@given(payload=hlt_payloads, mutate=mutations(), measure=st.booleans())
async def test_headlamp_tester_driver(
    rig: Rig, payload: str, mutate: Mutation, measure: bool
) -> None:
    rig.instrument.mutate = mutate
    rig.instrument.reply = lambda req: encode_hlt(payload)
    call = (lambda: rig.tester.measure("L", "H")) if measure else rig.tester.result
    got = await one_driver(rig, rig.tester, call)
    assert got is None or isinstance(got, DeviceError) or hasattr(got, "intensity_cd"), got
