"""`linectl diag sniff`: a serial line as frames, one per line, with time, direction and checksum.

The port is opened as the daemon opens it (`SerialPort`), listen-only: it
never sends. Bytes are cut into bursts at a silence (`--gap-ms`), and each
burst into frames with the model's own framing (drivers/framing.py), so the
checksum is checked exactly as the driver checks it. Direction is told by
the frame where the protocol allows it:
- hlt-ascii: MEA/RES/RST are the host's, ACK/BUSY/ERR/RES,... the tester's;
- nha503: a command byte (81, 84..88) is the host's; 06 + 20 bytes (a
  reading), or one of 06/05/15, the analyser's;
- nht6: a 10-byte A5/A6 frame is the opacimeter's, a 2-byte A5/A6 the
  host's; A7 and A4 read the same both ways (the reply is an echo): `?`.
Checksum status: ok, BAD (with what is wrong), none (a frame without one:
the analyser's command bytes and one-byte replies), short (cut off).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from linectl.cli import CliError
from linectl.config import SerialTransport
from linectl.diag.explain import Where, explain
from linectl.diag.models import NHT_COMMAND_NAMES, reply_words
from linectl.diag.output import note, print_json
from linectl.diag.target import EXIT_FAILED, run
from linectl.drivers.errors import DeviceUnreachable
from linectl.drivers.framing import (
    ACK,
    BUSY,
    NAK,
    NHA_READ,
    NHA_READING_LEN,
    NHT_CLEAR_PEAKS,
    NHT_DATA_LEN,
    NHT_PEAKS,
    NHT_REALTIME,
    NHT_ZERO,
    STX,
    FrameError,
    decode_gas_frame,
    decode_hlt,
    decode_nha_reply,
    decode_smoke_frame,
    parse_hlt_command,
    parse_hlt_reply,
    split_hlt,
)
from linectl.drivers.health import DeviceHealth
from linectl.drivers.nha503 import COMMAND_NAMES as NHA_COMMAND_NAMES
from linectl.drivers.serial import SerialPort

HOST, DEVICE, EITHER = "host>dev", "dev>host", "?"


@dataclass
class Frame:
    t: float  # time.time() of the burst's first byte
    direction: str
    data: bytes
    checksum: str  # ok | BAD | none | short | -
    reads: str

    def json(self) -> dict[str, Any]:
        d = asdict(self)
        d["t"] = _iso(self.t)
        d["hex"] = self.data.hex(" ")
        del d["data"]
        return d

    def line(self) -> str:
        return (
            f"{_clock(self.t)}  {self.direction:<8}  {self.checksum:<5}  "
            f"{self.data.hex(' ').upper()}  {self.reads}"
        )


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t).astimezone().isoformat(timespec="milliseconds")


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t).strftime("%H:%M:%S.%f")[:-3]


def _bad(e: FrameError) -> str:
    return f"{type(e).__name__}: {e}"


# --- cutting a burst into frames, per model -------------------------------------------


def frames_hlt(t: float, buf: bytes) -> list[Frame]:
    out: list[Frame] = []
    while buf:
        start = buf.find(STX)
        if start != 0:
            junk = buf if start < 0 else buf[:start]
            out.append(Frame(t, EITHER, junk, "-", "bytes outside a frame (noise)"))
            if start < 0:
                break
            buf = buf[start:]
        try:
            n = split_hlt(buf)
        except FrameError as e:
            out.append(Frame(t, EITHER, buf[:1], "-", _bad(e)))
            buf = buf[1:]
            continue
        if n is None:
            out.append(Frame(t, EITHER, buf, "short", "a frame cut off (no ETX BCC)"))
            break
        frame, buf = buf[:n], buf[n:]
        try:
            payload = decode_hlt(frame)
        except FrameError as e:
            out.append(Frame(t, EITHER, frame, "BAD", _bad(e)))
            continue
        out.append(_hlt_direction(t, frame, payload))
    return out


def _hlt_direction(t: float, frame: bytes, payload: str) -> Frame:
    with contextlib.suppress(FrameError):
        parse_hlt_command(payload)
        return Frame(t, HOST, frame, "ok", repr(payload))
    try:
        return Frame(t, DEVICE, frame, "ok", reply_words(parse_hlt_reply(payload))[0])
    except FrameError:
        return Frame(t, EITHER, frame, "ok", f"{payload!r} (not a command or reply of devices.md)")


def frames_nha(t: float, buf: bytes) -> list[Frame]:
    out: list[Frame] = []
    while buf:
        b = buf[0]
        if b == NHA_READ or b in NHA_COMMAND_NAMES:
            name = "read" if b == NHA_READ else NHA_COMMAND_NAMES[b]
            out.append(Frame(t, HOST, buf[:1], "none", name))
            buf = buf[1:]
        elif b == ACK and len(buf) >= NHA_READING_LEN:
            frame, buf = buf[:NHA_READING_LEN], buf[NHA_READING_LEN:]
            try:
                out.append(Frame(t, DEVICE, frame, "ok", reply_words(decode_gas_frame(frame))[0]))
            except FrameError as e:
                out.append(Frame(t, DEVICE, frame, "BAD", f"reading: {_bad(e)}"))
        elif b == ACK and len(buf) > 1:
            out.append(Frame(t, DEVICE, buf, "short", f"a reading cut off at {len(buf)} bytes"))
            break
        elif b in (ACK, BUSY, NAK):
            out.append(Frame(t, DEVICE, buf[:1], "none", reply_words(decode_nha_reply(buf[:1]))[0]))
            buf = buf[1:]
        else:
            out.append(Frame(t, EITHER, buf[:1], "-", "not a byte of devices.md (noise)"))
            buf = buf[1:]
    return out


def frames_nht(t: float, buf: bytes) -> list[Frame]:
    out: list[Frame] = []
    while buf:
        b = buf[0]
        if b not in NHT_COMMAND_NAMES:
            out.append(Frame(t, EITHER, buf[:1], "-", "not a byte of devices.md (noise)"))
            buf = buf[1:]
            continue
        short_ok = len(buf) >= 2 and (buf[0] + buf[1]) % 256 == 0
        if (
            b in (NHT_REALTIME, NHT_PEAKS)
            and len(buf) >= NHT_DATA_LEN
            and not (short_ok and sum(buf[:NHT_DATA_LEN]) % 256)
        ):
            frame, buf = buf[:NHT_DATA_LEN], buf[NHT_DATA_LEN:]
            try:
                words = reply_words(decode_smoke_frame(frame, b))[0]
                out.append(Frame(t, DEVICE, frame, "ok", words))
            except FrameError as e:
                out.append(Frame(t, DEVICE, frame, "BAD", _bad(e)))
            continue
        if len(buf) < 2:
            out.append(Frame(t, EITHER, buf, "short", "a frame cut off"))
            break
        frame, buf = buf[:2], buf[2:]
        direction = HOST if b in (NHT_REALTIME, NHT_PEAKS) else EITHER
        if b in (NHT_CLEAR_PEAKS, NHT_ZERO):
            reads = f"{NHT_COMMAND_NAMES[b]} (the command, or its echo)"
        else:
            reads = NHT_COMMAND_NAMES[b]
        out.append(Frame(t, direction, frame, "ok" if short_ok else "BAD", reads))
    return out


FRAMERS = {"hlt-ascii": frames_hlt, "nha503": frames_nha, "nht6": frames_nht}


# --- listening ------------------------------------------------------------------------


class Sniffer:
    """Collects bursts from the port's tap and hands out their frames."""

    def __init__(self, model: str, gap_s: float) -> None:
        self.framer = FRAMERS[model]
        self.gap_s = gap_s
        self._buf = bytearray()
        self._t0 = 0.0
        self._last = 0.0
        self._arrived = asyncio.Event()

    def tap(self, direction: str, data: bytes) -> None:
        if direction != "rx":
            return
        now = time.time()
        if not self._buf:
            self._t0 = now
        self._buf += data
        self._last = time.monotonic()
        self._arrived.set()

    async def next_burst(self) -> list[Frame]:
        """The frames of the next burst, once the line has been quiet for the gap."""
        while True:
            await self._arrived.wait()
            quiet = time.monotonic() - self._last
            if quiet >= self.gap_s and self._buf:
                burst, self._buf = bytes(self._buf), bytearray()
                self._arrived.clear()
                return self.framer(self._t0, burst)
            await asyncio.sleep(max(0.0005, self.gap_s - quiet))


async def sniff(
    path: str,
    model: str,
    baud: int,
    gap_ms: float,
    count: int | None,
    duration: float | None,
    as_json: bool,
) -> int:
    port = SerialPort("sniff", SerialTransport(device=path, baudrate=baud), DeviceHealth("sniff"))
    sniffer = Sniffer(model, gap_ms / 1000)
    port.tap, port.listening = sniffer.tap, True
    seen = 0
    try:
        await port.start()
        if not port.is_open:
            e = DeviceUnreachable(port.open_error or "does not open", why=port.open_why)
            raise CliError(explain(e, Where(path, path=path)), EXIT_FAILED)
        stop = f"{count} frame(s)" if count else "Ctrl-C"
        note(f"listening on {path} ({model}, {baud} Bd), until {stop}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(duration):
                while count is None or seen < count:
                    for frame in await sniffer.next_burst():
                        if as_json:
                            print_json(frame.json(), lines=True)
                        else:
                            print(frame.line(), flush=True)
                        seen += 1
                        if count is not None and seen >= count:
                            break
    finally:
        await port.aclose()
    return seen


def cli(args: Any) -> int:
    try:
        run(
            sniff(
                args.device,
                args.model,
                args.baud,
                args.gap_ms,
                args.count,
                args.duration,
                args.json,
            ),
            args.verbose,
        )
    except KeyboardInterrupt:
        return 0
    return 0
