"""The alarm state machine of ISA-18.2, pure: no clock, no database, no I/O.

An `Alarm` is one occurrence of one condition at one place (`key`, say
`device_down:rbt-1`). Its `state` is one of http.md's:

- `unacked`: active, not acknowledged (it sounds until silenced);
- `acked`: active, acknowledged;
- `rtn_unacked`: returned to normal, still to be acknowledged;
- `shelved`: put aside by an operator, with a reason, until a time;
- `suppressed`: suppressed by design (its line is paused);
- `out_of_service`: its place is taken out of service in the config;
- `closed`: over. A closed alarm never comes back: the condition appearing
  again is a new alarm with a new id.

`active` says whether the condition is present, whatever the state (a
shelved alarm may be active or not). Acknowledgement is kept across
shelving and suppression: an acknowledged alarm that is unshelved while
still active is `acked` again, not `unacked`. Silence only stops the sound;
it changes no state. Every transition returns a new `Alarm`, or raises
`InvalidTransition` naming the state that refused it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from linectl.clock import utc_iso


class Priority(StrEnum):
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"

    @property
    def rank(self) -> int:
        """1 for high, 2 medium, 3 low: shown beside the colour and the shape."""
        return {"high": 1, "medium": 2, "low": 3}[self.value]


class AlarmState(StrEnum):
    UNACKED = "unacked"
    ACKED = "acked"
    RTN_UNACKED = "rtn_unacked"
    SHELVED = "shelved"
    SUPPRESSED = "suppressed"
    OUT_OF_SERVICE = "out_of_service"
    CLOSED = "closed"


ANNUNCIATED = (AlarmState.UNACKED, AlarmState.ACKED, AlarmState.RTN_UNACKED)
NEEDS_ACK = (AlarmState.UNACKED, AlarmState.RTN_UNACKED)


class InvalidTransition(ValueError):
    """The alarm's state does not allow this; `str()` says which state and what."""


@dataclass(frozen=True)
class Alarm:
    id: int
    key: str
    kind: str
    priority: Priority
    state: AlarmState
    raised_at: datetime
    message: str
    line: str | None = None
    station: str | None = None
    device: str | None = None
    active: bool = True
    cleared_at: datetime | None = None  # when the condition returned to normal
    acked_by: str | None = None
    acked_at: datetime | None = None
    comment: str | None = None
    silenced: bool = False
    silenced_by: str | None = None
    shelved_by: str | None = None
    shelved_until: datetime | None = None
    shelve_reason: str | None = None
    closed_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.state is not AlarmState.CLOSED

    @property
    def sounding(self) -> bool:
        """The console sounds it: annunciated, waiting for an ack, not silenced."""
        return self.state in NEEDS_ACK and not self.silenced

    def to_json(self) -> dict[str, Any]:
        """http.md's alarm object, plus what the console needs to show it."""
        return {
            "id": self.id,
            "key": self.key,
            "kind": self.kind,
            "line": self.line,
            "station": self.station,
            "device": self.device,
            "priority": str(self.priority),
            "rank": self.priority.rank,
            "state": str(self.state),
            "active": self.active,
            "raised_at": utc_iso(self.raised_at),
            "cleared_at": _iso(self.cleared_at),
            "acked_by": self.acked_by,
            "acked_at": _iso(self.acked_at),
            "comment": self.comment,
            "message": self.message,
            "silenced": self.silenced,
            "shelved_by": self.shelved_by,
            "shelved_until": _iso(self.shelved_until),
            "shelve_reason": self.shelve_reason,
            "closed_at": _iso(self.closed_at),
        }


def _iso(at: datetime | None) -> str | None:
    return None if at is None else utc_iso(at)


def _refuse(alarm: Alarm, what: str) -> InvalidTransition:
    return InvalidTransition(f"alarm {alarm.id} is {alarm.state}: cannot {what}")


def _closed(alarm: Alarm, at: datetime, **changes: Any) -> Alarm:
    return replace(alarm, state=AlarmState.CLOSED, closed_at=at, silenced=True, **changes)


def _back(alarm: Alarm, at: datetime) -> Alarm:
    """Out of shelving or suppression: annunciated as the condition and the ack say."""
    if not alarm.active:
        return _closed(alarm, at)
    state = AlarmState.ACKED if alarm.acked_at is not None else AlarmState.UNACKED
    return replace(alarm, state=state)


# --- the transitions --------------------------------------------------------------------


def occurred(
    *,
    id: int,
    key: str,
    kind: str,
    priority: Priority,
    at: datetime,
    message: str,
    line: str | None = None,
    station: str | None = None,
    device: str | None = None,
    suppressed: bool = False,
    out_of_service: bool = False,
) -> Alarm:
    """A new occurrence of a condition: a new alarm."""
    state = AlarmState.UNACKED
    if out_of_service:
        state = AlarmState.OUT_OF_SERVICE
    elif suppressed:
        state = AlarmState.SUPPRESSED
    return Alarm(
        id=id,
        key=key,
        kind=kind,
        priority=priority,
        state=state,
        raised_at=at,
        message=message,
        line=line,
        station=station,
        device=device,
    )


def returned(alarm: Alarm, at: datetime) -> Alarm:
    """The condition went away. An acknowledged alarm is over; an unacknowledged
    one waits for its ack; one set aside (shelved, suppressed, out of service)
    is over, as nobody was asked to see it."""
    if not alarm.active or alarm.state is AlarmState.CLOSED:
        return alarm
    alarm = replace(alarm, active=False, cleared_at=at)
    if alarm.state is AlarmState.UNACKED:
        return replace(alarm, state=AlarmState.RTN_UNACKED)
    if alarm.state is AlarmState.SHELVED:
        return alarm  # over once unshelved, unless acked before: see unshelve
    return _closed(alarm, at)


def acknowledge(alarm: Alarm, by: str, at: datetime, comment: str | None) -> Alarm:
    """Someone saw it: who, when, with what comment. A returned one is then over."""
    if alarm.state not in NEEDS_ACK:
        raise _refuse(alarm, "acknowledge")
    alarm = replace(alarm, acked_by=by, acked_at=at, comment=comment, silenced=True)
    if alarm.state is AlarmState.RTN_UNACKED:
        return _closed(alarm, at)
    return replace(alarm, state=AlarmState.ACKED)


def silence(alarm: Alarm, by: str) -> Alarm:
    """Stop its sound; its state stays as it is."""
    if alarm.state is AlarmState.CLOSED:
        raise _refuse(alarm, "silence")
    return replace(alarm, silenced=True, silenced_by=by)


def shelve(alarm: Alarm, by: str, reason: str, until: datetime) -> Alarm:
    """Set an annunciated alarm aside until `until`, with a reason."""
    if alarm.state not in ANNUNCIATED:
        raise _refuse(alarm, "shelve")
    if until <= alarm.raised_at:
        raise InvalidTransition(f"alarm {alarm.id}: shelving must end after it was raised")
    return replace(
        alarm,
        state=AlarmState.SHELVED,
        shelved_by=by,
        shelved_until=until,
        shelve_reason=reason,
        silenced=True,
    )


def unshelve(alarm: Alarm, at: datetime) -> Alarm:
    """Shelving ended: back to what the condition and the ack say (a new sound if active
    and not acked)."""
    if alarm.state is not AlarmState.SHELVED:
        raise _refuse(alarm, "unshelve")
    back = _back(replace(alarm, shelved_until=None), at)
    return replace(back, silenced=back.state is not AlarmState.UNACKED)


def suppress(alarm: Alarm) -> Alarm:
    """Suppressed by design (its line paused): not annunciated while so."""
    if alarm.state not in ANNUNCIATED:
        return alarm
    if alarm.state is AlarmState.RTN_UNACKED:
        return alarm  # already normal: it only waits for an ack
    return replace(alarm, state=AlarmState.SUPPRESSED)


def unsuppress(alarm: Alarm, at: datetime) -> Alarm:
    if alarm.state is not AlarmState.SUPPRESSED:
        return alarm
    return _back(alarm, at)


def due_to_unshelve(alarm: Alarm, now: datetime) -> bool:
    return (
        alarm.state is AlarmState.SHELVED
        and alarm.shelved_until is not None
        and now >= alarm.shelved_until
    )


# --- floods -------------------------------------------------------------------------------


def in_flood(
    raised: Iterable[datetime], now: datetime, *, count: int = 10, window: timedelta
) -> bool:
    """More than `count` alarms raised within `window` before `now`: an alarm flood."""
    since = now - window
    return sum(1 for at in raised if since < at <= now) > count


def top(alarms: Iterable[Alarm]) -> Alarm | None:
    """The alarm to show first: unacked before returned-unacked, then by priority,
    then the newest."""
    waiting = [a for a in alarms if a.state in NEEDS_ACK]
    if not waiting:
        return None
    return min(
        waiting,
        key=lambda a: (
            a.state is not AlarmState.UNACKED,
            a.priority.rank,
            -a.raised_at.timestamp(),
        ),
    )
