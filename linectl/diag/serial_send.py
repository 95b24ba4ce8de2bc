"""`linectl diag serial send`: one frame to an RS-232 instrument, its reply in hex and in words.

The frame goes through the daemon's `SerialPort` (exclusive open, framed
request, timeout in real milliseconds), framed and checksummed by
drivers/framing.py for the model (diag/models.py picks which). The reply is
printed as the bytes that came and as the model's driver decodes them; a
reply that fails its checksum is shown with what was wrong and exits 1, as
does no reply (an opacimeter keeps silent at a frame with a bad CS).
"""

from __future__ import annotations

from typing import Any

from linectl.cli import CliError
from linectl.config import DeviceConfig
from linectl.diag.explain import explain
from linectl.diag.models import SERIAL_MODELS, SerialRequest, reply_words, serial_request
from linectl.diag.output import print_json
from linectl.diag.target import (
    EXIT_FAILED,
    EXIT_USAGE,
    adhoc_device,
    device_from_config,
    run,
    where,
    with_timeout,
)
from linectl.drivers.errors import DeviceError
from linectl.drivers.framing import FrameError
from linectl.drivers.health import DeviceHealth
from linectl.drivers.serial import SerialPort


class Exchange:
    """One request and what came back: the raw reply even when it does not decode."""

    def __init__(self, req: SerialRequest) -> None:
        self.req = req
        self.reply: bytes | None = None
        self.decoded: Any = None
        self.latency_ms: float | None = None
        self.sent = False  # the port opened, so the frame went out

    def split(self, buf: bytes | bytearray) -> int | None:
        try:
            return self.req.split(buf)
        except FrameError:
            self.reply = bytes(buf)
            raise

    def decode(self, frame: bytes) -> Any:
        self.reply = bytes(frame)
        self.decoded = self.req.decode(frame)
        return self.decoded


def target(args: Any) -> tuple[DeviceConfig, bool]:
    if args.device_id:
        _, placed = device_from_config(args.config, args.device_id)
        cfg = with_timeout(placed.cfg, args.timeout_ms)
        if cfg.model not in SERIAL_MODELS:
            raise CliError(f"{cfg.id} is a {cfg.model}: use `diag modbus` for it", EXIT_USAGE)
        return cfg, True
    if not args.device or not args.model:
        raise CliError("give --device PORT and --model MODEL (or --id DEVICE --config FILE)", 2)
    cfg = adhoc_device(
        model=args.model, device=args.device, baud=args.baud, timeout_ms=args.timeout_ms or 1000
    )
    return cfg, False


async def send(cfg: DeviceConfig, ex: Exchange) -> None:
    port = SerialPort(cfg.id, cfg.transport, DeviceHealth(cfg.id), timeout_s=cfg.timeout_s)  # type: ignore[arg-type]
    try:
        await port.start()
        ex.sent = port.is_open
        await port.request(ex.req.frame, ex.split, ex.decode, what=ex.req.reads)
        ex.latency_ms = round(port.health.stats.latency_sum_s * 1000, 2)
    finally:
        await port.aclose()


def cli(args: Any) -> int:
    cfg, from_config = target(args)
    try:
        req = serial_request(cfg.model, args.frame, args.as_hex)
    except ValueError as e:
        raise CliError(f"FRAME: {e}", EXIT_USAGE) from None
    ex = Exchange(req)
    error: str | None = None
    try:
        run(send(cfg, ex), args.verbose)
    except DeviceError as e:
        error = explain(e, where(cfg, id_known=from_config))
        if cfg.model == "nht6" and sum(req.frame) % 256:
            error += " (the opacimeter keeps silent at a frame whose CS is wrong)"
    words, value = reply_words(ex.decoded) if error is None else (None, None)
    if args.json:
        print_json(
            {
                "device": cfg.transport.device,  # type: ignore[union-attr]
                "model": cfg.model,
                "sent": req.frame.hex(" ") if ex.sent else None,
                "sent_reads": req.reads,
                "reply": ex.reply.hex(" ") if ex.reply is not None else None,
                "latency_ms": ex.latency_ms,
                "decoded": value,
                "decoded_words": words,
                "error": error,
            }
        )
    else:
        if ex.sent:
            print(f"sent:    {req.frame.hex(' ').upper()}  ({req.reads})")
        if ex.reply is not None:
            took = f"  in {ex.latency_ms:g} ms" if ex.latency_ms is not None else ""
            print(f"reply:   {ex.reply.hex(' ').upper()}{took}")
        if words is not None:
            print(f"decoded: {words}")
    if error is not None:
        raise CliError(error, EXIT_FAILED)
    return 0
