"""What diag knows of each device model: names, meanings, and how to frame a raw request.

Nothing here is a protocol of its own: the register maps are the drivers'
(drivers/maps), the value names are the drivers' enums, and serial frames
are built, split and checked by drivers/framing.py. This module only picks,
for a request typed by a technician, the framing the model's driver uses,
and says the reply in words.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from enum import IntEnum
from functools import partial
from typing import Any

from linectl.drivers.framing import (
    NHA_READ,
    NHT_PEAKS,
    NHT_REALTIME,
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
    encode_hlt,
    nht_checksum,
    nht_splitter,
    parse_hlt_reply,
    split_gas_frame,
    split_hlt,
    split_one_byte,
)
from linectl.drivers.hlt_ascii import ERROR_MEANINGS
from linectl.drivers.lineio_modbus import Prompt
from linectl.drivers.nha503 import COMMAND_NAMES as NHA_COMMAND_NAMES
from linectl.drivers.rbt_modbus import FaultCode, RbtCommand, RbtState, StopReason
from linectl.drivers.regmap import Field, RegisterMapError, Table, load_map

SERIAL_MODELS = ("nha503", "nht6", "hlt-ascii")
MODBUS_MODELS = ("rbt-modbus", "lineio-modbus")

# Registers whose value is a code with a name (devices.md), by model.
VALUE_NAMES: dict[str, dict[str, type[IntEnum]]] = {
    "rbt-modbus": {
        "STATE": RbtState,
        "FAULT_CODE": FaultCode,
        "STOP_REASON": StopReason,
        "COMMAND": RbtCommand,
    },
    "lineio-modbus": {"PROMPT": Prompt},
}
NHT_COMMAND_NAMES = {0xA5: "real-time", 0xA6: "peaks", 0xA7: "clear peaks", 0xA4: "zero"}


# --- Modbus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Located:
    """A map field found at an address: which field, which station (station maps),
    and the address where this station's copy of the field starts."""

    field: Field
    station: int | None
    start: int


def field_at(model: str | None, table: Table, address: int) -> Located | None:
    """The map field of `model` covering `address`, or None."""
    if model is None:
        return None
    try:
        m = load_map(model)
    except RegisterMapError:
        return None
    stride = m.stride(table)
    if not stride:
        f = m.at(table, address)
        return Located(f, None, f.address) if f is not None else None
    # Station s's copy of a field sits at its station-0 address + s * stride.
    for station in range(address // stride + 1):
        f = m.at(table, address - station * stride)
        if f is not None:
            return Located(f, station, f.address + station * stride)
    return None


def meaning(model: str | None, name: str, value: int) -> str | None:
    """The name of a coded value ("IDLE" for STATE 0), None when the register has none."""
    kind = VALUE_NAMES.get(model or "", {}).get(name)
    if kind is None:
        return None
    try:
        return kind(value).name
    except ValueError:
        return "undefined by devices.md"


# --- serial: building a request ---------------------------------------------------------

_HEX = re.compile(r"^(0x)?[0-9a-fA-F]{2}([\s:,-]*(0x)?[0-9a-fA-F]{2})*$")


def parse_hex(text: str) -> bytes:
    """`A5`, `a5 5b`, `0xA5,0x5B`, `A55B` -> bytes; ValueError when it is not hex."""
    t = text.strip()
    if not _HEX.match(t):
        raise ValueError(f"not hex bytes: {text!r}")
    return bytes.fromhex(re.sub(r"0x|[\s:,-]", "", t))


@dataclass(frozen=True)
class SerialRequest:
    """A request ready for the port: the bytes, how they read, and how the model's
    driver splits and decodes the reply."""

    frame: bytes
    reads: str
    split: Splitter
    decode: Callable[[bytes], Any]


def serial_request(model: str, text: str, as_hex: bool | None = None) -> SerialRequest:
    """The frame of `text` for `model`: hex bytes (the default for the binary
    instruments) or an ASCII payload (the default for the headlamp tester),
    framing and checksum applied unless the bytes given already hold them."""
    if model not in SERIAL_MODELS:
        raise ValueError(f"{model} is not a serial instrument; use `diag modbus` for it")
    hexed = as_hex if as_hex is not None else model != "hlt-ascii"
    if model == "hlt-ascii":
        if hexed:
            frame = parse_hex(text)
            return SerialRequest(frame, "raw bytes as given", split_hlt, _hlt_reply)
        frame = encode_hlt(text)
        return SerialRequest(frame, f"STX {text!r} ETX BCC", split_hlt, _hlt_reply)
    data = parse_hex(text)
    cmd = data[0]
    if model == "nha503":
        name = "read" if cmd == NHA_READ else NHA_COMMAND_NAMES.get(cmd, "not a command")
        if cmd == NHA_READ:
            return SerialRequest(data, f"{cmd:02X} {name}", split_gas_frame, decode_gas_frame)
        return SerialRequest(data, f"{cmd:02X} {name}", split_one_byte, decode_nha_reply)
    # nht6: every frame ends with a CS making it sum to 0; given one byte, add it.
    frame = data if len(data) > 1 else data + bytes([nht_checksum(data)])
    name = NHT_COMMAND_NAMES.get(cmd, "not a command")
    cs_ok = "CS ok" if sum(frame) % 256 == 0 else "CS BAD"
    reads = f"{cmd:02X} {name}, {cs_ok}"
    if cmd in (NHT_REALTIME, NHT_PEAKS):
        return SerialRequest(frame, reads, nht_splitter(cmd), partial(decode_smoke_frame, cmd=cmd))
    return SerialRequest(frame, reads, nht_splitter(cmd), partial(_nht_echo, cmd=cmd))


def _hlt_reply(frame: bytes) -> HltReply:
    return parse_hlt_reply(decode_hlt(frame))


def _nht_echo(frame: bytes, cmd: int) -> str:
    decode_nht_echo(frame, cmd)
    return "echo"


# --- serial: saying a reply -------------------------------------------------------------


def status_words(status: NhaStatus) -> str:
    if status == NhaStatus.READY:
        return "ready"
    names = {
        NhaStatus.WARMING_UP: "warming up",
        NhaStatus.ZEROING: "zeroing",
        NhaStatus.LOW_FLOW: "low flow",
        NhaStatus.LEAK_CHECK_FAILED: "leak check failed",
        NhaStatus.LEAK_CHECK_OR_BACK_FLUSH: "leak check or back-flush running",
    }
    return ", ".join(w for flag, w in names.items() if flag in status)


def reply_words(decoded: Any) -> tuple[str, Any]:
    """(one line, JSON-able value) for a decoded reply of any serial model."""
    if isinstance(decoded, GasFrame):
        d = asdict(decoded)
        d["status"] = int(decoded.status)
        d["status_words"] = status_words(decoded.status)
        return (
            f"HC {decoded.hc_ppm} ppm, CO {decoded.co_pct:.2f} %, CO2 {decoded.co2_pct:.2f} %, "
            f"O2 {decoded.o2_pct:.2f} %, NO {decoded.no_ppm} ppm, {decoded.rpm} rpm, "
            f"oil {decoded.oil_temp_c:.1f} °C, flow {decoded.flow_l_min:.1f} L/min, "
            f"lambda {decoded.lambda_:.3f}, status {int(decoded.status):02X} "
            f"({d['status_words']})",
            d,
        )
    if isinstance(decoded, NhaReply):
        words = {
            NhaReply.ACCEPTED: "06 accepted",
            NhaReply.BUSY: "05 busy: a zero, leak check or back-flush still runs",
            NhaReply.REFUSED: "15 refused: warming up, or not a command",
        }[decoded]
        return words, {"reply": decoded.name.lower(), "code": int(decoded)}
    if isinstance(decoded, SmokeFrame):
        d = asdict(decoded)
        which = "peaks" if decoded.cmd == NHT_PEAKS else "live"
        return (
            f"{which}: N {decoded.opacity_pct:.1f} %, K {decoded.k_per_m:.2f} m^-1, "
            f"{decoded.rpm} rpm, oil {decoded.oil_temp_c:.1f} °C",
            d,
        )
    if isinstance(decoded, HltReply):
        if decoded.kind == "ERR" and decoded.error is not None:
            text = f"ERR,{decoded.error.value}: {ERROR_MEANINGS[decoded.error]}"
            return text, {"kind": "ERR", "error": decoded.error.value}
        if decoded.kind == "RES" and decoded.result is not None:
            r = decoded.result
            return (
                f"RES lamp {r.lamp} beam {r.beam}: {r.intensity_cd} cd, h {r.h_mm} mm, "
                f"v {r.v_mm} mm at 10 m, lamp height {r.height_mm} mm",
                {"kind": "RES", **asdict(r)},
            )
        return decoded.kind, {"kind": decoded.kind}
    if decoded == "echo":
        return "echo: command taken", {"kind": "echo"}
    return str(decoded), decoded
