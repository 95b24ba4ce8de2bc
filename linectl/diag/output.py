"""Printing diag results: aligned plain-text tables for people, JSON for scripts.

Tables are plain text (no colour, no box drawing), so they read the same on
a terminal, in a pipe and in a ticket. JSON goes to stdout as one document,
or one object per line for commands that stream (watch, sniff).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import Any


def to_json(obj: Any, *, lines: bool = False) -> str:
    if lines:
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
    return json.dumps(obj, ensure_ascii=False, indent=2, default=str)


def print_json(obj: Any, *, lines: bool = False) -> None:
    print(to_json(obj, lines=lines), flush=True)


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Columns padded to their widest cell; the last column is not padded."""
    texts = [[cell(v) for v in r] for r in rows]
    widths = [max([len(h)] + [len(r[i]) for r in texts]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1], strict=True)]
        return "  ".join([*padded, cells[-1]]).rstrip()

    return "\n".join([line(list(headers)), *(line(r) for r in texts)])


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    print(table(headers, rows), flush=True)


def note(text: str) -> None:
    """A remark for the person, on stderr so stdout stays data."""
    print(text, file=sys.stderr, flush=True)
