"""Log lines that journald, a terminal and a log shipper each read well.

`setup_logging(level, fmt)` installs one handler on stderr for the whole
process, chosen by where stderr goes:

- under systemd (stderr is the journal stream named by `JOURNAL_STREAM`):
  `<N>logger: message`, the `<N>` being the syslog priority journald takes
  as the entry's level (`SyslogLevelPrefix=`, on by default); no timestamp,
  journald stamps every entry itself;
- on a terminal: `time LEVEL logger: message`, the level in colour (not with
  `NO_COLOR` set);
- anywhere else (a file, a pipe): the same without colour;
- `--log-format json`: one JSON object per line, `{"ts", "level", "logger",
  "message"}` plus `"exc"` with the traceback, for log shippers.

Every event is one line: a traceback or a message with line breaks is kept
on its line (breaks written as `\\n`), so journald never splits one event
into several entries and a shipper never mistakes a traceback line for an
event of its own.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

FORMATS = ("text", "json")

# syslog priorities (sd-daemon(3)): journald reads them from the line's start.
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
_COLOUR = {
    logging.CRITICAL: "\x1b[1;31m",
    logging.ERROR: "\x1b[31m",
    logging.WARNING: "\x1b[33m",
    logging.INFO: "\x1b[32m",
    logging.DEBUG: "\x1b[2m",
}
_RESET = "\x1b[0m"


def _priority(levelno: int) -> int:
    for level in sorted(_PRIORITY, reverse=True):
        if levelno >= level:
            return _PRIORITY[level]
    return 7


def _one_line(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\\n")


def on_journal(stream: TextIO) -> bool:
    """Whether `stream` is the journal stream systemd gave this process
    (JOURNAL_STREAM=device:inode of it, systemd.exec(5))."""
    spec = os.environ.get("JOURNAL_STREAM", "")
    try:
        dev, ino = (int(x) for x in spec.split(":"))
        st = os.fstat(stream.fileno())
    except (ValueError, OSError, AttributeError):
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


class TextFormatter(logging.Formatter):
    """`[<N>|time] LEVEL logger: message` on one line."""

    def __init__(self, *, journal: bool = False, colour: bool = False) -> None:
        super().__init__()
        self.journal = journal
        self.colour = colour

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        elif record.exc_text:
            text += "\n" + record.exc_text
        text = _one_line(text)
        if self.journal:
            return f"<{_priority(record.levelno)}>{record.name}: {text}"
        level = f"{record.levelname:<7}"
        if self.colour:
            level = f"{_COLOUR.get(record.levelno, '')}{level}{_RESET}"
        ts = datetime.fromtimestamp(record.created).isoformat(sep=" ", timespec="milliseconds")
        return f"{ts} {level} {record.name}: {text}"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (UTC, ISO 8601), level, logger, message, exc."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        # json.dumps escapes line breaks inside strings: the object stays one line.
        return json.dumps(doc, ensure_ascii=False, default=str)


def make_handler(fmt: str = "text", stream: TextIO | None = None) -> logging.Handler:
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    elif fmt == "text":
        journal = on_journal(stream)
        tty = not journal and stream.isatty() and "NO_COLOR" not in os.environ
        handler.setFormatter(TextFormatter(journal=journal, colour=tty))
    else:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return handler


def setup_logging(level: int = logging.WARNING, fmt: str = "text") -> None:
    """One handler on the root logger writing `fmt` to stderr, at `level`.

    Like logging.basicConfig, it leaves a root logger that already has handlers
    of someone else's alone (a test runner capturing logs, an embedding program)
    and only sets the level; a second call replaces the handler of the first."""
    root = logging.getLogger()
    for h in [h for h in root.handlers if getattr(h, "linectl", False)]:
        root.removeHandler(h)
    if not root.handlers:
        handler = make_handler(fmt)
        handler.linectl = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)
