"""The overview shows a line by its exceptions only: what they are, and how they read.

A line's exceptions (linectl.ops.views.exceptions) from the board's snapshot of
it: annunciated alarms first, then a paused line, a device not answering, a
blocked station, vehicles waiting with no proxy driver on duty; none when all is
normal. The fragment says each in the page's language, an alarm with its
priority as shape and word."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from linectl.alarms.state import Alarm, AlarmState, Priority
from linectl.http.alarm_words import words
from linectl.http.app import TEMPLATES_DIR
from linectl.http.lang import ConsoleTemplates
from linectl.ops.views import exceptions

T = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def line(**over: Any) -> dict[str, Any]:
    ln: dict[str, Any] = {
        "id": "L1",
        "paused": False,
        "io": ("io-L1", True),
        "stations": [
            {"id": "brake", "state": "testing", "plate": "鲁A1", "devices": [("rbt-L1", True)]}
        ],
        "queue": [],
        "drivers": [{"id": "D1", "state": "idle"}],
        "alarms": [],
    }
    ln.update(over)
    return ln


def test_a_normal_line_has_no_exceptions() -> None:
    assert exceptions(line()) == []


def test_each_exception() -> None:
    alarm = Alarm(7, "device_down:rbt-L1", "device_down", Priority.HIGH, AlarmState.UNACKED,
                  T, "rbt-L1 does not answer", line="L1", station="brake", device="rbt-L1")  # fmt: skip
    ln = line(
        paused=True,
        io=("io-L1", False),
        stations=[
            {"id": "brake", "state": "blocked", "plate": "鲁A1", "devices": [("rbt-L1", False)]}
        ],
        queue=[{"inspection_id": "i1"}, {"inspection_id": "i2"}],
        drivers=[{"id": "D1", "state": "off_duty"}, {"id": "D2", "state": "break"}],
        alarms=[alarm],
    )
    found = exceptions(ln)
    assert [x["kind"] for x in found] == [
        "alarm", "paused", "device_down", "device_down", "blocked", "no_driver",
    ]  # fmt: skip
    assert found[2]["device"] == "io-L1" and found[3] == {
        "kind": "device_down", "device": "rbt-L1", "station": "brake",
    }  # fmt: skip
    assert found[5]["waiting"] == 2

    templates = ConsoleTemplates(str(TEMPLATES_DIR), UTC)
    html = str(
        templates.macro("zh", "_board.html", "exceptions")({**ln, "exceptions": found}, words())
    )
    assert 'id="line-L1-exc"' in html and 'data-count="6"' in html
    assert "prio-high" in html and "▲" in html and "rbt-L1 does not answer" in html
    assert "检测线已暂停" in html and "2辆待检，无引车员在岗" in html
    normal = str(templates.macro("en", "_board.html", "exceptions")(line(exceptions=[]), words()))
    assert "Normal" in normal and 'data-count="0"' in normal
