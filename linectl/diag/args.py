"""The arguments of `linectl diag ...`: every subcommand with its help and an example.

Only argparse here (the command modules are imported when they run), so
`linectl --help` does not load pymodbus or numpy.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

DIAG_HELP = """\
Find out why a device does not answer, from the station PC, with the same
drivers the daemon uses. Works the same against `linectl sim` as against
hardware. Exit status: 0 all good, 1 a device down or a step failed,
2 bad arguments or config.

  linectl diag ports --config site.toml          serial ports, who uses them, can they open
  linectl diag devices --config site.toml        probe every configured device once
  linectl diag modbus read --host 10.0.0.5 --table input --address 0 --count 9 --model rbt-modbus
  linectl diag serial send --device /dev/ttyUSB1 --model hlt-ascii RST
  linectl diag watch rbt-L1 --config site.toml   live values until Ctrl-C
  linectl diag selftest rbt-L1 --config site.toml
  linectl diag stats                             counters of the running daemon (HTTP API)
  linectl diag sniff --device /dev/ttyUSB2 --model nha503
"""

TABLES = {
    "coils": "coils",
    "discrete": "discrete_inputs",
    "holding": "holding_registers",
    "input": "input_registers",
}
FORMATS = ("auto", "u16", "i16", "u32", "f32", "text")


def _ms(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of milliseconds: {s!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
    return v


def _address(s: str) -> int:
    try:
        v = int(s, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address: {s!r}") from None
    if not 0 <= v <= 0xFFFF:
        raise argparse.ArgumentTypeError(f"a Modbus address is 0..65535, got {s}")
    return v


def add_diag_commands(
    diag: argparse.ArgumentParser,
    common: Callable[[argparse.ArgumentParser], None],
) -> None:
    """Add the diag subcommands to `diag`; `common` adds the logging options."""
    sub = diag.add_subparsers(dest="diag_command", metavar="ACTION", required=True)

    def cmd(name: str, target: str, help: str, epilog: str) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help,
            description=help,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(target=target)
        common(p)
        return p

    def json_flag(p: argparse.ArgumentParser, what: str = "machine-readable output") -> None:
        p.add_argument("--json", action="store_true", help=what)

    p = cmd(
        "ports",
        "linectl.diag.ports:cli",
        "list the serial ports, the configured device on each, and whether each opens",
        "Example:\n  linectl diag ports --config /etc/linectl/site.toml\n\n"
        "A port that does not open says why: busy (another program, such as the\n"
        "daemon, holds it), permission denied (the dialout group), or missing.",
    )
    p.add_argument("--config", help="site config: name the device configured on each port")
    json_flag(p)

    p = cmd(
        "devices",
        "linectl.diag.devices:cli",
        "probe every configured device once: reachable, answer time, answers as its model should",
        "Example:\n  linectl diag devices --config /etc/linectl/site.toml\n\n"
        "Exit 0 when every device is up, 1 when any is down or answers wrongly.\n"
        "While the daemon runs, its serial ports show as busy: use `linectl diag stats`.",
    )
    p.add_argument("--config", required=True, help="site config (TOML)")
    p.add_argument(
        "--timeout-ms", type=_ms, help="answer time limit (default: each device's timeout_s)"
    )
    json_flag(p)

    mb = sub.add_parser(
        "modbus",
        help="read or write Modbus registers and bits of one device",
        description="Read or write Modbus registers and bits of one device.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common(mb)
    mbs = mb.add_subparsers(dest="modbus_command", metavar="ACTION", required=True)
    for action in ("read", "write"):
        example = (
            "Examples:\n"
            "  linectl diag modbus read --host 127.0.0.1 --port 15020 --table input "
            "--address 0 --count 9 --model rbt-modbus\n"
            "  linectl diag modbus read --device /dev/ttyUSB0 --baud 19200 --unit 3 "
            "--table holding --address 1 --count 2\n"
            "  linectl diag modbus read rbt-L1 --config site.toml --table discrete --count 5\n\n"
            "An exception reply is explained, e.g. `02 illegal data address: this device\n"
            "has no input register 9`, and the exit status is 1."
            if action == "read"
            else "Examples:\n"
            "  linectl diag modbus write --host 127.0.0.1 --port 15020 --table holding "
            "--address 0 --value 5      (rbt: LIFT_UP)\n"
            "  linectl diag modbus write io-L1 --config site.toml --table coils "
            "--address 0 --value 1\n\n"
            "Writing changes the device: never on a station the daemon is using."
        )
        p = mbs.add_parser(
            action,
            help=f"{action} registers or bits",
            description=f"{action.capitalize()} Modbus registers or bits of one device.",
            epilog=example,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(target=f"linectl.diag.modbus:{action}_cli")
        common(p)
        p.add_argument("device_id", nargs="?", metavar="DEVICE", help="device id of --config")
        p.add_argument("--config", help="site config, with DEVICE")
        p.add_argument("--host", help="Modbus TCP host")
        p.add_argument("--port", type=int, help="Modbus TCP port (default 502)")
        p.add_argument("--device", help="serial port for Modbus RTU, e.g. /dev/ttyUSB0")
        p.add_argument("--baud", type=int, help="RTU baud rate (default 19200)")
        p.add_argument("--parity", choices=("N", "E", "O"), default="N", help="RTU parity")
        p.add_argument("--stopbits", type=int, choices=(1, 2), default=1, help="RTU stop bits")
        p.add_argument("--unit", type=int, help="unit id (default 1, or the config's)")
        p.add_argument("--table", choices=tuple(TABLES), required=True, help="which table")
        p.add_argument("--address", type=_address, default=0, help="first address (0-based)")
        p.add_argument(
            "--format",
            choices=FORMATS,
            default=None,
            help="how registers read: auto (by --model's map) when --model is known, else u16",
        )
        p.add_argument(
            "--model", help="device model (rbt-modbus, lineio-modbus) to name the registers"
        )
        p.add_argument("--timeout-ms", type=_ms, help="answer time limit (default 1000)")
        if action == "read":
            p.add_argument("--count", type=int, default=1, help="how many (default 1)")
            json_flag(p, "the values as a JSON list")
        else:
            p.add_argument(
                "--value",
                nargs="+",
                required=True,
                help="value(s) to write; text for --format text; 0/1 for coils",
            )

    p = cmd(
        "serial",
        "linectl.diag.serial_send:cli",
        "send one frame to an RS-232 instrument and decode its reply",
        "Example:\n  linectl diag serial send --device /dev/ttyUSB1 --model hlt-ascii RST\n"
        "  linectl diag serial send --device /dev/ttyUSB2 --model nha503 81\n"
        "  linectl diag serial send --device /dev/ttyUSB3 --model nht6 A5\n\n"
        "FRAME is hex for nha503 and nht6 (their checksum is added to a bare\n"
        "command byte) and the ASCII payload for hlt-ascii (STX, ETX and BCC added).",
    )
    p.add_argument("action", choices=("send",), help="send")
    p.add_argument("frame", metavar="FRAME", help="the frame: hex bytes or an ASCII payload")
    p.add_argument("--device", help="serial port, e.g. /dev/ttyUSB1")
    p.add_argument("--model", choices=("nha503", "nht6", "hlt-ascii"), help="instrument model")
    p.add_argument("--id", dest="device_id", help="take port and model from --config")
    p.add_argument("--config", help="site config, with --id")
    p.add_argument("--baud", type=int, help="baud rate (default 9600)")
    enc = p.add_mutually_exclusive_group()
    enc.add_argument("--hex", dest="as_hex", action="store_true", default=None, help="FRAME is hex")
    enc.add_argument("--ascii", dest="as_hex", action="store_false", help="FRAME is ASCII")
    p.add_argument("--timeout-ms", type=_ms, help="answer time limit (default 1000)")
    json_flag(p)

    p = cmd(
        "watch",
        "linectl.diag.watch:cli",
        "show the live values of one device, refreshing in place, until Ctrl-C",
        "Example:\n  linectl diag watch rbt-L1 --config /etc/linectl/site.toml\n\n"
        "Reads only. A serial instrument the daemon holds shows as busy.",
    )
    p.add_argument("device_id", metavar="DEVICE", help="device id in the config")
    p.add_argument("--config", required=True, help="site config (TOML)")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between reads (0.5)")
    p.add_argument("--count", type=int, help="stop after N reads (default: until Ctrl-C)")
    json_flag(p, "one JSON object per read, one per line")

    p = cmd(
        "selftest",
        "linectl.diag.selftest:cli",
        "run a device's own routines, each step pass or fail with its reading",
        "Example:\n  linectl diag selftest rbt-L1 --config /etc/linectl/site.toml\n\n"
        "Brake tester: lift up and down, tare, weigh with nothing on the rollers.\n"
        "Gas analyser: zero and leak check. Opacimeter: zero. Headlamp tester: reset.\n"
        "Refused while the running daemon uses the station: pause its line first and\n"
        "wait until the station is free. The daemon is asked over its HTTP API\n"
        "(GET /api/lines) with --token or LINECTL_TOKEN.",
    )
    p.add_argument("device_id", metavar="DEVICE", help="device id in the config")
    p.add_argument("--config", required=True, help="site config (TOML)")
    p.add_argument("--url", help="the daemon's HTTP API (default: the config's [http] listen)")
    p.add_argument("--token", help="bearer token (default: $LINECTL_TOKEN)")
    json_flag(p)

    p = cmd(
        "stats",
        "linectl.diag.stats:cli",
        "the running daemon's statistics of each device (GET /api/devices)",
        "Example:\n  LINECTL_TOKEN=... linectl diag stats --config /etc/linectl/site.toml\n"
        "  linectl diag stats --url http://127.0.0.1:8080 --token TOKEN --json\n\n"
        "Needs a technician's token: `linectl user token NAME` prints one.",
    )
    p.add_argument("--config", help="site config: the daemon's address from its [http] listen")
    p.add_argument("--url", help="the daemon's HTTP API (default http://127.0.0.1:8080)")
    p.add_argument("--token", help="bearer token (default: $LINECTL_TOKEN)")
    json_flag(p)

    p = cmd(
        "sniff",
        "linectl.diag.sniff:cli",
        "hex dump of a serial line, one frame per line, with time, direction and checksum",
        "Example:\n  linectl diag sniff --device /dev/ttyUSB4 --model nha503\n\n"
        "Listens only (a tap cable on the instrument's line). Direction shows as\n"
        "host>dev or dev>host where the frame tells, ? where it cannot.",
    )
    p.add_argument("--device", required=True, help="serial port to listen on")
    p.add_argument("--model", choices=("nha503", "nht6", "hlt-ascii"), required=True)
    p.add_argument("--baud", type=int, default=9600, help="baud rate (9600)")
    p.add_argument("--gap-ms", type=_ms, default=5.0, help="silence that ends a frame (5 ms)")
    p.add_argument("--count", type=int, help="stop after N frames")
    p.add_argument("--duration", type=float, help="stop after S seconds")
    json_flag(p, "one JSON object per frame, one per line")
