"""The ISA-18.2 alarm state machine (linectl.alarms.state), pure: every transition,
the refusals, and flood detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from linectl.alarms import state as sm
from linectl.alarms.state import AlarmState, InvalidTransition, Priority

T0 = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)


def raised(**kw: object) -> sm.Alarm:
    args: dict[str, object] = dict(
        id=1, key="device_down:rbt-1", kind="device_down", priority=Priority.HIGH, at=T0,
        message="Device rbt-1 does not answer", line="L1", station="brake", device="rbt-1",
    )  # fmt: skip
    args.update(kw)
    return sm.occurred(**args)  # type: ignore[arg-type]


def at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def test_raised_sounds_until_acknowledged_then_closes_when_it_returns() -> None:
    a = raised()
    assert a.state is AlarmState.UNACKED and a.active and a.sounding
    acked = sm.acknowledge(a, "op", at(5), "called the technician")
    assert acked.state is AlarmState.ACKED and not acked.sounding
    assert (acked.acked_by, acked.acked_at, acked.comment) == ("op", at(5), "called the technician")
    done = sm.returned(acked, at(9))
    assert done.state is AlarmState.CLOSED and not done.active
    assert done.cleared_at == at(9) == done.closed_at
    assert done.acked_by == "op"  # the ack is kept on the record


def test_returned_unacknowledged_waits_for_its_ack_and_never_comes_back() -> None:
    rtn = sm.returned(raised(), at(3))
    assert rtn.state is AlarmState.RTN_UNACKED and not rtn.active and rtn.sounding
    assert sm.returned(rtn, at(4)) == rtn  # nothing more to return from
    closed = sm.acknowledge(rtn, "op", at(6), None)
    assert closed.state is AlarmState.CLOSED and closed.closed_at == at(6)
    for act in (
        lambda: sm.acknowledge(closed, "op", at(7), None),
        lambda: sm.silence(closed, "op"),
        lambda: sm.shelve(closed, "op", "r", at(100)),
    ):
        with pytest.raises(InvalidTransition, match="closed"):
            act()


def test_ack_twice_is_refused() -> None:
    acked = sm.acknowledge(raised(), "op", at(1), None)
    with pytest.raises(InvalidTransition, match="acked: cannot acknowledge"):
        sm.acknowledge(acked, "op2", at(2), None)


def test_silence_stops_the_sound_and_keeps_the_state() -> None:
    s = sm.silence(raised(), "op")
    assert s.state is AlarmState.UNACKED and not s.sounding and s.silenced_by == "op"
    assert sm.acknowledge(s, "op", at(1), None).state is AlarmState.ACKED


def test_shelving_ends_by_itself_into_what_the_condition_and_the_ack_say() -> None:
    a = raised()
    sh = sm.shelve(a, "op", "sensor being replaced", at(600))
    assert sh.state is AlarmState.SHELVED and not sh.sounding
    assert not sm.due_to_unshelve(sh, at(599)) and sm.due_to_unshelve(sh, at(600))
    back = sm.unshelve(sh, at(600))
    assert back.state is AlarmState.UNACKED and back.sounding  # still active, never acked
    acked_sh = sm.shelve(sm.acknowledge(a, "op", at(1), None), "op", "r", at(600))
    assert sm.unshelve(acked_sh, at(600)).state is AlarmState.ACKED
    gone = sm.returned(sh, at(100))
    assert gone.state is AlarmState.SHELVED and not gone.active
    assert sm.unshelve(gone, at(600)).state is AlarmState.CLOSED
    with pytest.raises(InvalidTransition):
        sm.unshelve(a, at(1))
    with pytest.raises(InvalidTransition):
        sm.shelve(sh, "op", "again", at(900))


def test_suppressed_by_design_and_let_out_again() -> None:
    a = raised()
    sup = sm.suppress(a)
    assert sup.state is AlarmState.SUPPRESSED and not sup.sounding
    assert sm.unsuppress(sup, at(5)).state is AlarmState.UNACKED
    assert sm.returned(sup, at(5)).state is AlarmState.CLOSED
    assert raised(suppressed=True).state is AlarmState.SUPPRESSED
    rtn = sm.returned(a, at(1))
    assert sm.suppress(rtn) == rtn  # already normal: it only waits for its ack
    with pytest.raises(InvalidTransition):
        sm.shelve(sup, "op", "r", at(60))


def test_out_of_service_is_never_annunciated() -> None:
    oos = raised(out_of_service=True)
    assert oos.state is AlarmState.OUT_OF_SERVICE and not oos.sounding
    assert sm.suppress(oos) == oos
    with pytest.raises(InvalidTransition):
        sm.acknowledge(oos, "op", at(1), None)
    assert sm.returned(oos, at(2)).state is AlarmState.CLOSED


def test_the_banner_shows_the_highest_priority_unacknowledged_first() -> None:
    low = raised(id=1, priority=Priority.LOW, at=at(0))
    high_old = raised(id=2, priority=Priority.HIGH, at=at(1))
    high_new = raised(id=3, priority=Priority.HIGH, at=at(2))
    high_rtn = sm.returned(raised(id=4, priority=Priority.HIGH, at=at(3)), at(4))
    acked = sm.acknowledge(raised(id=5, at=at(5)), "op", at(6), None)
    assert sm.top([low, high_old, high_new, high_rtn, acked]).id == 3
    assert sm.top([low, high_rtn]).id == 1  # a live one before a returned one
    assert sm.top([acked]) is None
    assert [p.rank for p in Priority] == [1, 2, 3]


def test_flood_is_more_than_ten_in_ten_minutes() -> None:
    window = timedelta(minutes=10)
    ten = [at(i * 30) for i in range(10)]
    now = at(300)
    assert not sm.in_flood(ten, now, count=10, window=window)
    assert sm.in_flood([*ten, at(299)], now, count=10, window=window)
    assert not sm.in_flood([*ten, at(299)], at(299 + 601), count=10, window=window)


def test_to_json_has_every_field_of_http_md() -> None:
    doc = sm.acknowledge(raised(), "op", at(1), "ok").to_json()
    for name in ("id", "key", "line", "station", "device", "priority", "state", "raised_at",
                 "cleared_at", "acked_by", "acked_at", "comment", "message"):  # fmt: skip
        assert name in doc
    assert doc["state"] == "acked" and doc["priority"] == "high" and doc["rank"] == 1
    assert doc["raised_at"].endswith("Z") and doc["cleared_at"] is None
