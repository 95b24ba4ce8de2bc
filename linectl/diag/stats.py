"""`linectl diag stats`: what the running daemon counted for each device since it started.

Asks `GET /api/devices` (http.md; a technician's token) and prints, per
device: up or down, requests, errors, timeouts, checksum failures,
reconnects, latency p50/p99, ring overruns and the last error. `--json`
prints the API's document as it came. The daemon not answering, a refused
token (401) and a token without the right (403) each end in one line.
"""

from __future__ import annotations

from typing import Any

from linectl.cli import CliError
from linectl.diag.api import ApiError, base_url, get_json, token_of
from linectl.diag.output import print_json, print_table
from linectl.diag.target import EXIT_FAILED


def _ms(v: Any) -> str | None:
    return None if v is None else f"{v:g} ms"


def rows(devices: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    for d in devices:
        up = d.get("up")
        last = d.get("last_error")
        if last and d.get("last_error_at"):
            last = f"{d['last_error_at']}: {last}"
        out.append(
            [
                d.get("id"),
                "up" if up else "DOWN" if up is False else "-",
                d.get("requests"),
                d.get("errors"),
                d.get("timeouts"),
                d.get("checksum_failures"),
                d.get("reconnects"),
                _ms(d.get("latency_p50_ms")),
                _ms(d.get("latency_p99_ms")),
                d.get("ring_overruns"),
                last,
            ]
        )
    return out


def cli(args: Any) -> int:
    try:
        url = base_url(args.url, args.config)
        devices = get_json(url, "/api/devices", token_of(args.token))
    except ApiError as e:
        raise CliError(str(e), EXIT_FAILED) from None
    if not isinstance(devices, list):
        raise CliError(f"the daemon at {url} answered /api/devices with no list", EXIT_FAILED)
    if args.json:
        print_json(devices)
        return 0
    print_table(
        [
            "device",
            "state",
            "requests",
            "errors",
            "timeouts",
            "checksum",
            "reconnects",
            "p50",
            "p99",
            "overruns",
            "last error",
        ],
        rows(devices),
    )
    return 0
