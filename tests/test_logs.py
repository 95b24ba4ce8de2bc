"""Log lines for journald, terminals, files and log shippers: one line per event."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path

import pytest

from linectl.logs import JsonFormatter, TextFormatter, make_handler, on_journal


def record(msg: str = "device %s is down", *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("line one\nline two")
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord(
        "linectl.drivers", logging.WARNING, __file__, 1, msg, args or ("rbt-L1",), exc_info
    )


def test_text_is_one_line_even_with_a_traceback() -> None:
    line = TextFormatter().format(record(exc=True))
    assert "\n" not in line
    assert " WARNING linectl.drivers: device rbt-L1 is down\\nTraceback" in line
    assert "ValueError: line one\\nline two" in line
    assert "\x1b[" not in line


def test_json_is_one_object_per_line() -> None:
    line = JsonFormatter().format(record(exc=True))
    assert "\n" not in line
    doc = json.loads(line)
    assert doc["level"] == "warning" and doc["logger"] == "linectl.drivers"
    assert doc["message"] == "device rbt-L1 is down"
    assert doc["ts"].endswith("Z") and "ValueError: line one\nline two" in doc["exc"]


def test_journald_gets_the_priority_and_no_timestamp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "journal"
    with log.open("w") as stream:
        st = os.fstat(stream.fileno())
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
        assert on_journal(stream)
        handler = make_handler("text", stream)
        handler.emit(record())
        error = record("lost %s", "everything")
        error.levelno, error.levelname = logging.ERROR, "ERROR"
        handler.emit(error)
    assert log.read_text().splitlines() == [
        "<4>linectl.drivers: device rbt-L1 is down",
        "<3>linectl.drivers: lost everything",
    ]
    other = tmp_path / "not-the-journal"
    with other.open("w") as stream:
        assert not on_journal(stream)  # JOURNAL_STREAM names another file


def test_colour_only_on_a_terminal(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    master, slave = os.openpty()
    try:
        with open(slave, "w", closefd=False) as tty:
            handler = make_handler("text", tty)
            assert "\x1b[33mWARNING" in handler.format(record())
            monkeypatch.setenv("NO_COLOR", "1")
            assert "\x1b[" not in make_handler("text", tty).format(record())
    finally:
        os.close(master)
        os.close(slave)
    monkeypatch.delenv("NO_COLOR")
    with (tmp_path / "file").open("w") as f:
        assert "\x1b[" not in make_handler("text", f).format(record())
