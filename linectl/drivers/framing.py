"""Frames of the three RS-232 instruments, byte for byte per devices.md sections 3 to 5.

Pure functions, no I/O: encoders and decoders for the petrol gas analyser
(`nha503`), the smoke opacimeter (`nht6`) and the headlamp tester
(`hlt-ascii`), used by the daemon's drivers and the simulator's emulators
alike. Two steps per reply, because a serial line delivers bytes, not frames:
a *splitter* looks at the bytes received so far and says how long the frame
at their start is (None: not complete yet), raising `BadFrame` when they
cannot start the frame expected; a *decoder* then checks the checksum and
the fields of that one frame. Every `FrameError` means: discard, count,
never use.
"""

from __future__ import annotations

import enum
import re
import struct
from dataclasses import dataclass
from typing import Protocol


class FrameError(ValueError):
    """Bytes that are not a frame the contract allows."""


class BadChecksum(FrameError):
    """A complete frame whose checksum does not match its bytes."""


class ShortFrame(FrameError):
    """Fewer bytes than the frame needs."""


class BadFrame(FrameError):
    """Bytes that cannot be (the start of) the frame expected."""


class Splitter(Protocol):
    def __call__(self, buf: bytes | bytearray) -> int | None:
        """Length of the complete frame at the start of `buf`; None while incomplete.
        Raises `BadFrame` when `buf` cannot start the expected frame."""
        ...


def _u16(v: float) -> int:
    return max(0, min(0xFFFF, round(v)))


def _s16(v: float) -> int:
    return max(-0x8000, min(0x7FFF, round(v)))


# --------------------------------------------------------------------------- nha503

NHA_READ = 0x81
NHA_ZERO = 0x88
NHA_LEAK_CHECK = 0x87
NHA_BACK_FLUSH = 0x85
NHA_PUMP_OFF = 0x86
NHA_PUMP_ON = 0x84
NHA_COMMANDS = (NHA_ZERO, NHA_LEAK_CHECK, NHA_BACK_FLUSH, NHA_PUMP_OFF, NHA_PUMP_ON)
NHA_READING_LEN = 21
ACK = 0x06
BUSY = 0x05
NAK = 0x15


class NhaReply(enum.IntEnum):
    """The one-byte answer of the gas analyser to a command."""

    ACCEPTED = ACK
    BUSY = BUSY  # a zero, leak check or back-flush still runs
    REFUSED = NAK  # during warm-up, or an unknown command


class NhaStatus(enum.IntFlag):
    READY = 0
    WARMING_UP = 0x01
    ZEROING = 0x02
    LOW_FLOW = 0x04
    LEAK_CHECK_FAILED = 0x08
    LEAK_CHECK_OR_BACK_FLUSH = 0x10


NHA_STATUS_BITS = 0x1F  # the bits devices.md defines


@dataclass(frozen=True)
class GasFrame:
    """One 0x81 reading, in physical units (wire resolution in the comments)."""

    hc_ppm: int
    co_pct: float  # 0.01 %vol
    co2_pct: float  # 0.01 %vol
    o2_pct: float  # 0.01 %vol
    no_ppm: int
    rpm: int
    oil_temp_c: float  # 0.1 degC, signed
    flow_l_min: float  # 0.1 L/min
    status: NhaStatus
    lambda_: float  # 0.001; 0 when not computable (as in air)


def nha_checksum(data: bytes | bytearray) -> int:
    """CS of the analyser: the sum of every preceding byte, mod 256."""
    return sum(data) & 0xFF


def encode_gas_frame(f: GasFrame) -> bytes:
    body = struct.pack(
        ">BHHHHHHhHBH",
        ACK,
        _u16(f.hc_ppm),
        _u16(f.co_pct * 100),
        _u16(f.co2_pct * 100),
        _u16(f.o2_pct * 100),
        _u16(f.no_ppm),
        _u16(f.rpm),
        _s16(f.oil_temp_c * 10),
        _u16(f.flow_l_min * 10),
        int(f.status) & 0xFF,
        _u16(f.lambda_ * 1000),
    )
    return body + bytes([nha_checksum(body)])


def split_gas_frame(buf: bytes | bytearray) -> int | None:
    if not buf:
        return None
    if buf[0] != ACK:
        raise BadFrame(f"a reading starts with 06, got {buf[0]:02X}")
    return NHA_READING_LEN if len(buf) >= NHA_READING_LEN else None


def decode_gas_frame(frame: bytes | bytearray) -> GasFrame:
    if len(frame) < NHA_READING_LEN:
        raise ShortFrame(f"a reading has {NHA_READING_LEN} bytes, got {len(frame)}")
    if len(frame) > NHA_READING_LEN:
        raise BadFrame(f"a reading has {NHA_READING_LEN} bytes, got {len(frame)}")
    if frame[0] != ACK:
        raise BadFrame(f"a reading starts with 06, got {frame[0]:02X}")
    cs = nha_checksum(frame[:-1])
    if frame[-1] != cs:
        raise BadChecksum(f"reading checksum {frame[-1]:02X}, bytes sum to {cs:02X}")
    _, hc, co, co2, o2, no, rpm, oil, flow, status, lam = struct.unpack(">BHHHHHHhHBH", frame[:-1])
    if status & ~NHA_STATUS_BITS:
        # A bit devices.md does not define: an 8-bit sum let a garbled frame through.
        raise BadFrame(f"reading status {status:02X} sets bits devices.md does not define")
    return GasFrame(
        hc_ppm=hc,
        co_pct=co / 100,
        co2_pct=co2 / 100,
        o2_pct=o2 / 100,
        no_ppm=no,
        rpm=rpm,
        oil_temp_c=oil / 10,
        flow_l_min=flow / 10,
        status=NhaStatus(status),
        lambda_=lam / 1000,
    )


def split_one_byte(buf: bytes | bytearray) -> int | None:
    return 1 if buf else None


def decode_nha_reply(frame: bytes | bytearray) -> NhaReply:
    if len(frame) != 1:
        raise BadFrame(f"a command reply is one byte, got {len(frame)}")
    try:
        return NhaReply(frame[0])
    except ValueError:
        raise BadFrame(f"a command reply is 06, 05 or 15, got {frame[0]:02X}") from None


# --------------------------------------------------------------------------- nht6

NHT_REALTIME = 0xA5
NHT_PEAKS = 0xA6
NHT_CLEAR_PEAKS = 0xA7
NHT_ZERO = 0xA4
NHT_COMMANDS = (NHT_REALTIME, NHT_PEAKS, NHT_CLEAR_PEAKS, NHT_ZERO)
NHT_DATA_LEN = 10
NHT_ECHO_LEN = 2


def nht_checksum(data: bytes | bytearray) -> int:
    """CS of the opacimeter: two's complement of the sum, so the frame sums to 0 mod 256."""
    return -sum(data) & 0xFF


def nht_command(cmd: int) -> bytes:
    """A host frame `cmd CS`; also the opacimeter's echo of A7 and A4."""
    return bytes([cmd, nht_checksum(bytes([cmd]))])


@dataclass(frozen=True)
class SmokeFrame:
    """An A5 (live) or A6 (peaks since the last clear) reply, in physical units."""

    cmd: int
    opacity_pct: float  # N, 0.1 %
    k_per_m: float  # K, 0.01 m^-1
    rpm: int
    oil_temp_c: float  # 0.1 degC, signed


def encode_smoke_frame(f: SmokeFrame) -> bytes:
    body = struct.pack(
        ">BHHHh",
        f.cmd,
        _u16(f.opacity_pct * 10),
        _u16(f.k_per_m * 100),
        _u16(f.rpm),
        _s16(f.oil_temp_c * 10),
    )
    return body + bytes([nht_checksum(body)])


def nht_splitter(cmd: int) -> Splitter:
    """The splitter of the reply to `cmd`: it starts with `cmd` echoed."""
    length = NHT_DATA_LEN if cmd in (NHT_REALTIME, NHT_PEAKS) else NHT_ECHO_LEN

    def split(buf: bytes | bytearray) -> int | None:
        if not buf:
            return None
        if buf[0] != cmd:
            raise BadFrame(f"the reply to {cmd:02X} starts with {cmd:02X}, got {buf[0]:02X}")
        return length if len(buf) >= length else None

    return split


def _check_nht(frame: bytes | bytearray, cmd: int, length: int) -> None:
    if len(frame) < length:
        raise ShortFrame(f"the reply to {cmd:02X} has {length} bytes, got {len(frame)}")
    if len(frame) > length:
        raise BadFrame(f"the reply to {cmd:02X} has {length} bytes, got {len(frame)}")
    if frame[0] != cmd:
        raise BadFrame(f"the reply to {cmd:02X} starts with {cmd:02X}, got {frame[0]:02X}")
    if sum(frame) & 0xFF:
        raise BadChecksum(f"frame {frame.hex(' ')} does not sum to 0 mod 256")


def decode_smoke_frame(frame: bytes | bytearray, cmd: int) -> SmokeFrame:
    _check_nht(frame, cmd, NHT_DATA_LEN)
    _, n, k, rpm, oil = struct.unpack(">BHHHh", frame[:-1])
    return SmokeFrame(cmd, n / 10, k / 100, rpm, oil / 10)


def decode_nht_echo(frame: bytes | bytearray, cmd: int) -> None:
    _check_nht(frame, cmd, NHT_ECHO_LEN)


def parse_nht_request(buf: bytes | bytearray) -> tuple[int | None, int]:
    """The opacimeter's side: (command of the first whole valid frame or None, bytes
    used). A bad CS or an unknown command gets no reply (None); an unknown byte
    is dropped alone so the next frame is found. (None, 0): wait for more."""
    if not buf:
        return None, 0
    if buf[0] not in NHT_COMMANDS:
        return None, 1
    if len(buf) < 2:
        return None, 0
    if (buf[0] + buf[1]) & 0xFF:
        return None, 2
    return buf[0], 2


# --------------------------------------------------------------------------- hlt-ascii

STX = 0x02
ETX = 0x03
HLT_MAX_PAYLOAD = 64  # the longest RES line is about 40 characters
LAMPS = ("L", "LI", "RI", "R")
BEAMS = ("H", "L")
# What a headlamp tester can report, with room to spare (a legal high beam stays
# far below 500,000 cd; its screen sees a few hundred mm either way at 10 m).
# A RES outside is a garbled frame that its XOR check let through, never a
# reading to judge.
HLT_MAX_INTENSITY_CD = 1_000_000
HLT_MAX_OFFSET_MM = 5_000
HLT_MAX_HEIGHT_MM = 5_000


class HltError(enum.StrEnum):
    NO_LAMP = "E1"
    NOT_IN_POSITION = "E2"
    BUSY = "E3"
    NO_MEASUREMENT = "E4"
    FRAME_ERROR = "E9"


def hlt_bcc(payload: bytes) -> int:
    """BCC: XOR of every payload byte and ETX."""
    x = ETX
    for b in payload:
        x ^= b
    return x


def encode_hlt(payload: str) -> bytes:
    data = payload.encode("ascii")
    if STX in data or ETX in data or len(data) > HLT_MAX_PAYLOAD:
        raise ValueError(f"not a headlamp-tester payload: {payload!r}")
    return bytes([STX]) + data + bytes([ETX, hlt_bcc(data)])


def split_hlt(buf: bytes | bytearray) -> int | None:
    """STX payload ETX BCC; the byte after ETX is the BCC whatever its value."""
    if not buf:
        return None
    if buf[0] != STX:
        raise BadFrame(f"a frame starts with STX (02), got {buf[0]:02X}")
    end = buf.find(ETX, 1)
    if end < 0:
        if len(buf) > HLT_MAX_PAYLOAD + 1:
            raise BadFrame(f"no ETX within {HLT_MAX_PAYLOAD} payload bytes")
        return None
    return end + 2 if len(buf) >= end + 2 else None


def decode_hlt(frame: bytes | bytearray) -> str:
    """The payload of one whole frame, BCC checked."""
    if len(frame) < 3:
        raise ShortFrame(f"a frame has at least STX ETX BCC, got {len(frame)} byte(s)")
    if frame[0] != STX:
        raise BadFrame(f"a frame starts with STX (02), got {frame[0]:02X}")
    if frame[-2] != ETX:
        raise BadFrame("ETX is not the second-last byte")
    payload = bytes(frame[1:-2])
    if STX in payload or ETX in payload:
        raise BadFrame("STX or ETX inside the payload")
    if frame[-1] != hlt_bcc(payload):
        raise BadChecksum(f"BCC {frame[-1]:02X}, payload gives {hlt_bcc(payload):02X}")
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError:
        raise BadFrame("payload is not ASCII") from None
    if not text.isprintable():
        raise BadFrame("payload has control characters")
    return text


def hlt_measure(lamp: str, beam: str) -> str:
    if lamp not in LAMPS or beam not in BEAMS:
        raise ValueError(f"no lamp {lamp!r} / beam {beam!r}")
    return f"MEA,{lamp},{beam}"


@dataclass(frozen=True)
class HltResult:
    """A `RES,<lamp>,<beam>,<intensity_cd>,<h_mm>,<v_mm>,<height_mm>` line."""

    lamp: str
    beam: str
    intensity_cd: int
    h_mm: int
    v_mm: int
    height_mm: int

    def payload(self) -> str:
        return (
            f"RES,{self.lamp},{self.beam},{self.intensity_cd},{self.h_mm},"
            f"{self.v_mm},{self.height_mm}"
        )


@dataclass(frozen=True)
class HltReply:
    """A tester reply: `kind` is ACK, BUSY, ERR (with `error`) or RES (with `result`)."""

    kind: str
    error: HltError | None = None
    result: HltResult | None = None


# Plain decimal integers: int() alone would also take "+5", " 5" and "1_0".
_INTEGER = re.compile(r"-?[0-9]{1,9}")


def parse_hlt_reply(text: str) -> HltReply:
    if text in ("ACK", "BUSY"):
        return HltReply(text)
    parts = text.split(",")
    if parts[0] == "ERR" and len(parts) == 2:
        try:
            return HltReply("ERR", error=HltError(parts[1]))
        except ValueError:
            raise BadFrame(f"unknown error code {parts[1]!r}") from None
    if parts[0] == "RES" and len(parts) == 7:
        lamp, beam = parts[1], parts[2]
        if lamp not in LAMPS or beam not in BEAMS:
            raise BadFrame(f"RES for lamp {lamp!r} beam {beam!r}")
        if not all(_INTEGER.fullmatch(p) for p in parts[3:]):
            raise BadFrame(f"RES fields are not integers: {text!r}")
        intensity, h, v, height = (int(p) for p in parts[3:])
        if (
            not 0 <= intensity <= HLT_MAX_INTENSITY_CD
            or not 0 < height <= HLT_MAX_HEIGHT_MM
            or max(abs(h), abs(v)) > HLT_MAX_OFFSET_MM
        ):
            raise BadFrame(f"RES out of range: {text!r}")
        return HltReply("RES", result=HltResult(lamp, beam, intensity, h, v, height))
    raise BadFrame(f"not a headlamp-tester reply: {text!r}")


@dataclass(frozen=True)
class HltCommand:
    """A host command as the tester reads it: MEA (with lamp and beam), RES or RST."""

    name: str
    lamp: str | None = None
    beam: str | None = None


def parse_hlt_command(text: str) -> HltCommand:
    if text in ("RES", "RST"):
        return HltCommand(text)
    parts = text.split(",")
    if parts[0] == "MEA" and len(parts) == 3 and parts[1] in LAMPS and parts[2] in BEAMS:
        return HltCommand("MEA", parts[1], parts[2])
    raise BadFrame(f"not a headlamp-tester command: {text!r}")


def parse_hlt_request(buf: bytes | bytearray) -> tuple[str | None, int, bool]:
    """The tester's side: (payload of the first whole frame or None, bytes used,
    whether a frame was received but broken, to be answered ERR,E9).
    Bytes before an STX are line noise and dropped."""
    start = buf.find(STX)
    if start < 0:
        return None, len(buf), False
    if start > 0:
        return None, start, False
    try:
        n = split_hlt(buf)
    except BadFrame:
        return None, 1, True
    if n is None:
        return None, 0, False
    try:
        return decode_hlt(buf[:n]), n, False
    except FrameError:
        return None, n, True
