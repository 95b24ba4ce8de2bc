"""The `linectl` command: argument parsing and dispatch, nothing else.

Each subcommand lives with the code it drives (`linectl.judge`, `linectl.demo`,
...) as a function `cli(args) -> int`, imported only when that subcommand
runs, so `linectl judge` starts fast and does not need a database or numpy
for parsing. Expected failures (bad config, bad input, unreachable database)
end in one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from linectl import __version__

EPILOG = """\
Typical use:
  linectl demo --vehicles 10 --time-scale 20     the whole site against the simulator
  linectl sim --config config/site.example.toml  only the simulated instruments
  linectl run --config config/site.example.toml  the daemon, against sim or hardware
  linectl results                                 the latest inspections
  linectl user add ana --role operator            an account for the console and API
  linectl report ID --pdf report.pdf              the inspection report, to print
  linectl judge measurement.json                  re-judge a disputed measurement
  linectl diag devices --config site.toml         probe every device (technicians)

Logging: -v (info), -vv (debug); --log-format json for log shippers. Under
systemd the lines carry their level for journald; on a terminal, in colour.
"""
LOG_FORMATS = ("text", "json")


DEFAULT_DEMO_HTTP = "127.0.0.1:8080"


class CliError(Exception):
    """An expected failure: printed as one line, exit status `code`."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _positive_float(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {s}")
    return v


def _share(s: str) -> float:
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {s!r}") from None
    if not 0 <= v <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {s}")
    return v


def _positive_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {s}")
    return v


def _non_negative_int(s: str) -> int:
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {s!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {s}")
    return v


def _station_kinds(s: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in s.split(",") if k.strip())
    known = ("brake", "headlamp", "emission")
    bad = [k for k in kinds if k not in known]
    if bad or not kinds or len(set(kinds)) != len(kinds):
        raise argparse.ArgumentTypeError(
            f"{s!r}: give each of {', '.join(known)} at most once, comma-separated"
        )
    return kinds


def _log_options(p: argparse.ArgumentParser, top: bool = False) -> None:
    """-v and --log-format, before the command or after it. On subcommands they
    default to SUPPRESS, so one given before the command is not reset."""
    p.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0 if top else argparse.SUPPRESS,
        help="more log output (-vv: debug)",
    )
    p.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text" if top else argparse.SUPPRESS,
        help="log lines as text (default) or one JSON object per line",
    )


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="linectl",
        description="Control and data acquisition for vehicle safety-inspection lines.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"linectl {__version__}")
    _log_options(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(
        name: str, target: str, help: str, description: str | None = None
    ) -> argparse.ArgumentParser:
        sp = sub.add_parser(
            name,
            help=help,
            description=description or help,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        sp.set_defaults(target=target)
        _log_options(sp)
        return sp

    d = cmd(
        "demo",
        "linectl.demo:cli",
        "run the whole site against the simulator, in one process",
        "Start simulated instruments, vehicles and proxy drivers, and the daemon against\n"
        "them over real sockets and pseudo-terminals, on the embedded defaults (SQLite\n"
        "file, no broker). Serves the console (prints its URL and a one-time operator\n"
        "login). Shows progress, then a table of every inspection.\n\n"
        "  linectl demo --vehicles 10 --time-scale 20   ten vehicles, then the table\n"
        "  linectl demo --vehicles 0                     register by hand in the console\n"
        "  linectl demo --vehicles 20 --retest-rate 1    every failed vehicle comes back\n"
        "                                                repaired (or not) for its retest",
    )
    d.add_argument(
        "--vehicles",
        type=_non_negative_int,
        help="stop after N inspections; 0: register none, take them from the console or "
        "MQTT, until Ctrl-C (default: a steady stream until Ctrl-C)",
    )
    d.add_argument(
        "--time-scale", type=_positive_float, default=10.0, help="clock speed-up (default 10)"
    )
    d.add_argument("--lines", type=_positive_int, default=1, help="inspection lines (default 1)")
    d.add_argument("--db", help="database URL (default: a fresh SQLite file under ./var/)")
    d.add_argument("--summary-json", metavar="FILE", help="also write the summary as JSON to FILE")
    d.add_argument(
        "--seed", type=int, help="vehicle population seed (the proxy-driver draw is never seeded)"
    )
    d.add_argument(
        "--mqtt",
        metavar="URL",
        help="attach to this broker (mqtt://HOST:PORT) and take registrations from it",
    )
    d.add_argument("--site", default="demo", help="site id (default: demo)")
    d.add_argument(
        "--assignment",
        choices=("idle", "window", "hold", "joint"),
        default=None,
        help="assignment policy of every line (default: the config's; see "
        'benchmarks/README.md, "Assignment policies")',
    )
    d.add_argument(
        "--checkin",
        choices=("timer", "input", "console"),
        default="timer",
        help="how a proxy driver's return is known: timer (walk_back_s), input (his card "
        "on the line I/O) or console (an operator presses) (default timer)",
    )
    d.add_argument(
        "--colluder",
        action="store_true",
        help="one simulated driver of each line tries to get an owner's cars by timing his "
        "check-in (needs --checkin input or console)",
    )
    d.add_argument(
        "--http",
        metavar="HOST:PORT",
        default=DEFAULT_DEMO_HTTP,
        help=f"serve the console and API here (default {DEFAULT_DEMO_HTTP}, another free "
        "port if that one is taken; 'off' for none)",
    )
    d.add_argument(
        "--retest-rate",
        type=_share,
        default=0.0,
        metavar="R",
        help="share (0..1) of the failed and incomplete vehicles that come back for a "
        "retest after a simulated repair (default 0)",
    )
    d.add_argument(
        "--repair-rate",
        type=_share,
        default=0.8,
        metavar="P",
        help="chance that the garage repairs each fault of a vehicle sent back (default 0.8)",
    )
    d.add_argument(
        "--stations",
        type=_station_kinds,
        default=("brake", "headlamp", "emission"),
        metavar="KINDS",
        help="station kinds of each line, in order (default: brake,headlamp,emission)",
    )

    r = cmd("run", "linectl.daemon:cli", "run the daemon for a site")
    r.add_argument("--config", required=True, help="site config (TOML)")
    r.add_argument(
        "--time-scale",
        type=_positive_float,
        default=1.0,
        help="clock speed-up, to run against a sped-up simulator",
    )
    r.add_argument(
        "--http",
        metavar="HOST:PORT",
        help="serve the console and API here (default: [http] listen of the config)",
    )

    s = cmd(
        "sim",
        "sim.site:cli",
        "run the simulated instruments of a site config",
        "Emulate every instrument of the config (Modbus servers on its TCP ports,\n"
        "pseudo-terminals linked at its serial device paths) and the vehicles and\n"
        "proxy drivers that answer the guide displays, so `linectl run` can be\n"
        "pointed at them as at real hardware.\n\n"
        "On a line with checkin mode `input` a driver back at the start presses his\n"
        "card (its spare input on the line I/O); he knows his vehicle from the line's\n"
        "status on the broker, so that needs [mqtt]. Mode `console` is not simulated:\n"
        "an operator presses the check-in at the console (a warning says so at start).",
    )
    s.add_argument("--config", required=True, help="site config (TOML)")
    s.add_argument(
        "--time-scale",
        type=_positive_float,
        default=1.0,
        help="clock speed-up (must match the daemon's)",
    )
    s.add_argument(
        "--seed",
        type=int,
        help="seed of the world, of the random faults, and of the population whose first "
        "vehicles the world knows (registry-sim --seed registers them)",
    )
    s.add_argument(
        "--faults",
        metavar="PLAN.toml",
        help="inject the device faults of this plan (sim/faults.py)",
    )
    s.add_argument(
        "--fault-rate",
        type=_share,
        default=0.0,
        metavar="F",
        help="inject device faults at random: each device, each simulated minute, with chance F",
    )

    res = cmd("results", "linectl.results:cli", "list inspection results, or show one in full")
    res.add_argument("inspection_id", nargs="?", help="show this inspection in full")
    res.add_argument("--json", action="store_true", help="machine-readable output")
    res.add_argument(
        "--db", help="database URL (default: the one of --config, else sqlite:///linectl.db)"
    )
    res.add_argument("--config", help="site config to take the database URL from")
    res.add_argument(
        "--limit", type=_positive_int, default=50, help="how many to list (default 50)"
    )

    rep = cmd(
        "report",
        "linectl.report.cli:cli",
        "the inspection report (检验报告) of one inspection, as HTML or PDF",
        "Write the printable A4 report of an inspection: vehicle, proxy driver, every\n"
        "item's values with their limits and the standard they come from, the brake\n"
        "curves, the revision history and the verification code of the published result.\n"
        "An inspection still running gives a report marked provisional, without verdict.\n"
        "\n"
        "Example:\n"
        "  linectl report zc01-20261201-0007 --pdf report.pdf --config site.toml\n"
        "  linectl report zc01-20261201-0007 --lang en --html report.html --db sqlite:///var/r.db",
    )
    rep.add_argument("inspection_id", metavar="ID", help="the inspection, e.g. zc01-20261201-0007")
    out = rep.add_mutually_exclusive_group()
    out.add_argument("--html", metavar="FILE", help="write HTML to FILE (default: to stdout)")
    out.add_argument("--pdf", metavar="FILE", help="write PDF to FILE (- for stdout)")
    rep.add_argument(
        "--lang", choices=("zh", "en"), default="zh", help="language (default zh: 简体中文)"
    )
    rep.add_argument(
        "--db", help="database URL (default: the one of --config, else sqlite:///linectl.db)"
    )
    rep.add_argument(
        "--config", help="site config: database, site name, time zone and limits folder"
    )

    j = cmd(
        "judge",
        "linectl.judge:cli",
        "judge one measurement document offline, with the current limits",
        "Re-judge a disputed result. Reads FILE.json (see standards.md, 'The linectl\n"
        "judge contract'), prints the judgement as JSON on stdout. Exit 0 whatever\n"
        "the verdict; 2 with the reason on stderr when the document is invalid.",
    )
    j.add_argument("file", help="measurement document (JSON); - for stdin")
    j.add_argument("--limits", metavar="DIR", help="limits folder (default: config/limits)")
    j.add_argument(
        "--limit-set", choices=("a", "b"), help="emission limit set when the document gives none"
    )
    j.add_argument(
        "--beam-position",
        choices=("record", "judge"),
        help="judge headlamp aim too (default: record)",
    )

    rs = cmd(
        "registry-sim",
        "linectl.registry_sim:cli",
        "stand in for the upstream registry: register vehicles over MQTT, collect results",
        "Register a generated vehicle population with a site over MQTT (mqtt.md), some of\n"
        "the requests malformed if asked, collect the replies and results, and print what\n"
        "arrived, what was refused (with the field) and what is missing. Exit 1 when\n"
        "something is missing or unexpected, 2 when the broker refuses the login.",
    )
    rs.add_argument("--mqtt", required=True, metavar="URL", help="broker, mqtt://HOST:PORT")
    rs.add_argument("--site", required=True, help="site id of the daemon")
    rs.add_argument("--vehicles", type=_positive_int, required=True, help="registrations to send")
    rs.add_argument(
        "--malformed",
        type=_non_negative_int,
        default=0,
        help="how many of them are malformed, one bad field each (default 0)",
    )
    rs.add_argument(
        "--timeout",
        type=_positive_float,
        default=300.0,
        help="seconds to wait for every reply and result (default 300)",
    )
    rs.add_argument("--prefix", default="linectl", help="topic prefix (default linectl)")
    rs.add_argument("--seed", type=int, default=1, help="vehicle population seed (default 1)")
    rs.add_argument("--username", help="broker username")
    rs.add_argument("--password-env", metavar="VAR", help="environment variable with the password")
    rs.add_argument("--password-file", metavar="FILE", help="file with the password")
    rs.add_argument("--ca-file", metavar="FILE", help="CA certificate for mqtts://")

    au = cmd(
        "audit",
        "linectl.audit:cli",
        "check the proxy-driver draw record and the journal of actions",
        "verify: recompute the tamper-evident draw chain and the journal's chain and\n"
        "name the first broken record (exit 1 when broken). fairness: each driver's\n"
        "draws against chance.",
    )
    aus = au.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    for name, help_ in (
        ("verify", "check every hash and link of the draw chain and of the journal"),
        ("fairness", "compare each driver's share of draws with chance (chi-square)"),
    ):
        a = aus.add_parser(name, help=help_, description=help_)
        a.add_argument("--db", help="database URL")
        a.add_argument("--config", help="site config to take the database URL from")
        a.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "fairness":
            a.add_argument("--line", help="only this line")

    u = cmd(
        "user",
        "linectl.users:cli",
        "manage the accounts of the console and API",
        "Accounts sign in to the console (password) or call the API (bearer token).\n"
        "Roles: viewer (reads), operator (also registers, aborts, duty, pause),\n"
        "technician (viewer + device diagnostics), admin (everything).\n\n"
        "  linectl user add ana --role operator --config site.toml   asks for the password\n"
        '  echo "$PW" | linectl user add ana --role operator        password from stdin\n'
        "  TOKEN=$(linectl user token ci-bot)                        a token, shown once",
    )
    us = u.add_subparsers(dest="user_command", metavar="ACTION", required=True)
    ua = us.add_parser("add", help="add an account (password from the terminal or stdin)")
    ua.add_argument("name")
    ua.add_argument("--role", required=True, choices=("viewer", "operator", "technician", "admin"))
    ua.add_argument("--no-password", action="store_true", help="an account for bearer tokens only")
    ut = us.add_parser("token", help="print a new bearer token for an account (shown once)")
    ut.add_argument("name")
    ul = us.add_parser("list", help="list the accounts")
    ul.add_argument("--json", action="store_true", help="machine-readable output")
    ud = us.add_parser("disable", help="disable an account: its sessions and tokens end")
    ud.add_argument("name")
    for sp in (ua, ut, ul, ud):
        sp.add_argument("--db", help="database URL")
        sp.add_argument("--config", help="site config to take the database URL from")

    db = cmd("db", "linectl.store.cli:cli", "database maintenance")
    dbs = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = dbs.add_parser("upgrade", help="apply schema migrations (also done on every start)")
    up.add_argument("--db", help="database URL")
    up.add_argument("--config", help="site config to take the database URL from")
    cur = dbs.add_parser("current", help="show the schema revision")
    cur.add_argument("--db", help="database URL")
    cur.add_argument("--config", help="site config to take the database URL from")
    bk = dbs.add_parser(
        "backup",
        help="copy the database into FILE, safe while the daemon runs",
        description="Copy the site database into FILE while the daemon may be running.\n"
        "SQLite: the online backup API (one consistent moment, the daemon keeps writing),\n"
        "checked before FILE is written. PostgreSQL: pg_dump --format=custom when it is\n"
        "installed, else the pg_dump line to run.\n\n"
        "Example:\n  linectl db backup --config /etc/linectl/site.toml /var/backups/linectl-$(date +%F).db",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    bk.add_argument("file", metavar="FILE", help="where the copy goes (must not exist)")
    bk.add_argument("--db", help="database URL")
    bk.add_argument("--config", help="site config to take the database URL from")
    bk.add_argument("--force", action="store_true", help="replace FILE if it exists")

    from linectl.diag.args import DIAG_HELP, add_diag_commands

    dg = cmd(
        "diag",
        "linectl.diag:cli",
        "technicians' diagnostics of the devices, over the daemon's own drivers",
        DIAG_HELP,
    )
    add_diag_commands(dg, _log_options)
    return p


def dispatch(args: argparse.Namespace) -> int:
    """Run the subcommand `args` chose; expected failures end in one line on stderr."""
    module_name, func_name = args.target.split(":")
    from linectl.config import ConfigError

    try:
        func = getattr(importlib.import_module(module_name), func_name)
        return int(func(args) or 0)
    except (CliError, ConfigError) as e:
        print(f"linectl {args.command}: {e}", file=sys.stderr)
        return getattr(e, "code", 2)
    except KeyboardInterrupt:
        print(f"linectl {args.command}: interrupted", file=sys.stderr)
        return 130


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from linectl.logs import setup_logging

    setup_logging(
        [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)], args.log_format
    )
    return dispatch(args)


if __name__ == "__main__":
    sys.exit(main())
