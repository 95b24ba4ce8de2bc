"""`linectl results`: the latest inspections as a table, or one inspection in full.

Reads the store only. Without an id: newest first, one line each. With an
id: the vehicle, the proxy-driver draw, each item's latest verdict with its
values, limits and reason, the revisions (the first result, then one per
retest: what it tested again and the verdict) and every attempt. `--json`
gives the result document of mqtt.md with `revisions` added (with an id) or
a list of summaries (without).
"""

from __future__ import annotations

import argparse
import json
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from linectl.cli import CliError
from linectl.store.cli import EXIT_DB, open_store
from linectl.store.db import safe_url
from linectl.store.published import revision_history
from linectl.store.records import (
    InspectionRecord,
    InspectionSummary,
    default_result_document,
)
from linectl.store.repo import NotFound, StoreError

EXIT_UNKNOWN = 1


def cli(args: argparse.Namespace) -> int:
    store = open_store(args, must_exist=True)
    try:
        store.check_schema()
        if args.inspection_id:
            try:
                record = store.inspection(args.inspection_id)
            except NotFound:
                raise CliError(
                    f"no inspection {args.inspection_id} in database {safe_url(store.url)}",
                    EXIT_UNKNOWN,
                ) from None
            history = revision_history(record, store.published_results(record.id))
            if args.json:
                print(_json({**default_result_document(record), "revisions": history}))
            else:
                print(format_inspection(record, history))
        else:
            rows = store.list_inspections(limit=args.limit)
            if args.json:
                print(_json([r.to_json() for r in rows]))
            elif not rows:
                print(f"no inspections in database {safe_url(store.url)}")
            else:
                print(format_table(rows))
    except StoreError as e:
        raise CliError(str(e), EXIT_DB) from None
    finally:
        store.close()
    return 0


def _json(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, indent=2)


def _time(dt: datetime | None) -> str:
    return "-" if dt is None else dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _width(s: str) -> int:
    """Terminal columns of `s`: a Chinese plate character takes two."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in s)


def _pad(s: str, width: int) -> str:
    return s + " " * (width - _width(s))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(_width(r[i]) for r in (header, *rows)) for i in range(len(header))]
    return "\n".join(
        "  ".join(_pad(cell, w) for cell, w in zip(r, widths, strict=True)).rstrip()
        for r in (header, *rows)
    )


def format_table(rows: Sequence[InspectionSummary]) -> str:
    header = (
        "ID",
        "PLATE",
        "LINE",
        "DRIVER",
        "STATE",
        "VERDICT",
        "FAILED",
        "NOT JUDGED",
        "FINISHED",
    )
    return _table(
        header,
        [
            (
                r.id,
                r.plate,
                r.line or "-",
                r.proxy_driver_id or "-",
                str(r.state),
                "-" if r.verdict is None else str(r.verdict),
                ",".join(r.failed_items) or "-",
                ",".join(r.not_judged_items) or "-",
                _time(r.finished_at),
            )
            for r in rows
        ],
    )


def _pairs(d: dict[str, Any]) -> str:
    return "  ".join(f"{k}={v}" for k, v in d.items()) or "-"


def format_history(history: Sequence[dict[str, Any]]) -> list[str]:
    """One line per revision: when, what that visit tested, and the verdicts."""
    rows = []
    for h in history:
        if h["retest"]:
            tested = "  ".join(f"{t['code']} {t['verdict']} (#{t['attempt']})" for t in h["tested"])
            tested = tested or ", ".join(h["items_tested"])
            visit = "retest"
        else:
            tested, visit = "all items", "first"
        when = h["published_at"] or h["state"]
        rows.append(
            (
                f"  {h['revision']}",
                visit,
                f"{when[:19].replace('T', ' ')}Z" if h["published_at"] else when,
                h["verdict"] or "-",
                h["proxy_driver"] or "-",
                h["request_id"] or "-",
                tested,
            )
        )
    header = ("  REV", "VISIT", "PUBLISHED", "VERDICT", "DRIVER", "REQUEST", "TESTED")
    return [_table(header, rows)]


def format_inspection(rec: InspectionRecord, history: Sequence[dict[str, Any]] = ()) -> str:
    v = rec.vehicle
    verdict = "-" if rec.verdict is None else str(rec.verdict)
    parking = ",".join(str(a) for a in v.parking_axles) or "none"
    lines = [
        f"Inspection {rec.id}: verdict {verdict} (state {rec.state}, revision {rec.revision})",
        f"  request       {rec.request_id or '-'}",
        f"  site / line   {rec.site} / {rec.line or '-'}",
        f"  type          {rec.inspection_type}",
        f"  vehicle       {v.plate}  VIN {v.vin}",
        f"                {v.vehicle_class}, {v.fuel}, {v.axles} axles (parking {parking}), "
        f"curb {v.curb_mass_kg} kg, gross {v.gross_mass_kg} kg",
        f"                {v.headlamp_system}-lamp headlamps, {v.max_design_speed_kmh} km/h"
        + (f", registered {v.registration_date}" if v.registration_date else ""),
    ]
    if rec.draw is not None:
        d = rec.draw
        lines.append(
            f"  proxy driver  {d.chosen}, drawn {_time(d.drawn_at)} from {', '.join(d.candidates)} "
            f"(draw seq {d.seq})"
        )
    else:
        lines.append(f"  proxy driver  {rec.proxy_driver_id or '-'} (no draw)")
    lines += [
        f"  created       {_time(rec.created_at)}",
        f"  started       {_time(rec.started_at)}",
        f"  finished      {_time(rec.finished_at)}",
    ]
    if rec.abort_reason:
        lines.append(f"  abort reason  {rec.abort_reason}")

    lines += ["", "Items (the latest attempt counts)"]
    latest = rec.latest_attempts()
    for code, verdict_of_item in rec.item_verdicts().items():
        a = latest.get(code)
        if a is None:
            lines.append(f"  {code:<3} {verdict_of_item:<10}  no attempt")
            continue
        numbers = rec.attempt_numbers(code)
        lines.append(
            f"  {code:<3} {a.verdict:<10}  attempt {a.attempt_no} of {len(numbers)}  "
            f"{a.station} / {a.device or '-'}"
        )
        lines.append(f"      values  {_pairs(a.values)}")
        lines.append(f"      limits  {_pairs(a.limits)}")
        if a.reason:
            lines.append(f"      reason  {a.reason}")

    if history:
        lines += ["", "Revisions (each published result; a retest tests its items again)"]
        lines += format_history(history)

    lines += ["", "Attempts"]
    if rec.attempts:
        lines.append(
            _table(
                (
                    "  ITEM",
                    "ATTEMPT",
                    "VERDICT",
                    "STATION",
                    "DEVICE",
                    "STARTED",
                    "FINISHED",
                    "REASON",
                ),
                [
                    (
                        f"  {a.item_code}",
                        str(a.attempt_no),
                        str(a.verdict),
                        a.station,
                        a.device or "-",
                        _time(a.started_at),
                        _time(a.finished_at),
                        a.reason or "-",
                    )
                    for a in rec.attempts
                ],
            )
        )
    else:
        lines.append("  none yet")
    return "\n".join(lines)
