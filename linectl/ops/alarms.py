"""Alarm operations: list, acknowledge, silence, shelve; rights checked, journalled.

A part of `Operations` (linectl.ops.operations), kept apart as its own
concern. The state machine and the monitor that owns the open alarms are in
linectl.alarms; this checks the actor's right (`Action.ALARM` to act,
`Action.READ` to look), the input (a comment, a reason, a shelving time no
longer than `[alarms] shelve_max_minutes`), calls the monitor, and writes
the journal: who acknowledged, silenced or shelved which alarm, when, why,
and the state before and after.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from linectl.alarms.monitor import AlarmNotOpen
from linectl.alarms.state import Alarm, InvalidTransition
from linectl.ops.actor import Action, Actor
from linectl.ops.errors import Conflict, Forbidden, Invalid, OpError, Unknown

if TYPE_CHECKING:
    from linectl.alarms.monitor import AlarmMonitor
    from linectl.site import Site
    from linectl.store.repo import AsyncStore

STATE_FILTERS = ("active", "all", "unacked", "acked", "rtn_unacked", "shelved",
                 "suppressed", "out_of_service", "closed")  # fmt: skip
LIST_MAX = 500
TOP_DAYS = 7


class AlarmOps:
    """Mixed into `Operations`, which provides `site`, `store`, `clock`, `allow`,
    and `record`."""

    site: Site
    store: AsyncStore

    if TYPE_CHECKING:

        def allow(self, actor: Actor, action: Action) -> None: ...

        async def record(self, actor: Actor, action: str, **kw: Any) -> None: ...

    @property
    def _monitor(self) -> AlarmMonitor:
        return self.site.alarms

    async def alarms(
        self,
        actor: Actor,
        *,
        state: str = "active",
        line: str | None = None,
        priority: str | None = None,
        limit: int = 200,
    ) -> list[dict[str, Any]]:
        """Alarms, highest priority then newest first when open (`active`: every alarm
        not closed), newest first otherwise."""
        self.allow(actor, Action.READ)
        if state not in STATE_FILTERS:
            raise Invalid("state", f"state must be one of {', '.join(STATE_FILTERS)}")
        if priority not in (None, "", "high", "medium", "low"):
            raise Invalid("priority", "priority must be high, medium or low")
        if not 1 <= limit <= LIST_MAX:
            raise Invalid("limit", f"limit must be 1..{LIST_MAX}")
        if line and line not in {ln.id for ln in self.site.lines}:
            raise Unknown(f"no line {line}")
        if state == "active":
            await self._monitor.loaded.wait()
            found: list[Alarm] = [
                a for a in self._monitor.open_alarms() if not line or a.line == line
            ]
        else:
            states = None if state == "all" else (state,)
            found = await self.store.list_alarms(states=states, line=line or None, limit=limit)
        return [a.to_json() for a in found if not priority or a.priority == priority][:limit]

    def alarm_summary(self, actor: Actor) -> dict[str, Any]:
        """The banner: the first alarm to show, how many wait for an ack, the sound."""
        self.allow(actor, Action.READ)
        return self._monitor.summary()

    async def top_alarms(self, actor: Actor, days: int = TOP_DAYS) -> list[dict[str, Any]]:
        """The conditions raised most often in the last `days`: the bad actors."""
        self.allow(actor, Action.READ)
        since = self.site.clock.wall() - timedelta(days=days)
        rows: list[dict[str, Any]] = await self.store.top_alarms(since)
        return rows

    async def _alarm_action(
        self,
        actor: Actor,
        action: str,
        alarm_id: Any,
        call: Any,
        *,
        reason: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        target = f"alarm:{alarm_id}"
        if not actor.may(Action.ALARM):
            # Journalled under the action asked for (alarm_ack...), like the others.
            await self.record(actor, action, outcome="denied", target=target)
            raise Forbidden(f"{actor.name} ({actor.role}) may not {action.replace('_', ' ')}")
        try:
            try:
                before, after = await call()
            except AlarmNotOpen as e:
                if e.alarm is None:
                    raise Unknown(str(e)) from None
                raise Conflict(str(e)) from None
            except InvalidTransition as e:
                raise Conflict(str(e)) from None
        except OpError as e:
            await self.record(
                actor, action, outcome="refused", target=target, reason=reason,
                changes={"error": e.as_error()},
            )  # fmt: skip
            raise
        changes: dict[str, Any] = {"key": after.key, **(extra or {})}
        if before.state != after.state:
            changes["state"] = {"from": str(before.state), "to": str(after.state)}
        await self.record(actor, action, target=target, reason=reason, changes=changes)
        return after.to_json()

    async def acknowledge_alarm(self, actor: Actor, alarm_id: int, comment: Any) -> dict[str, Any]:
        """Acknowledge: who, when, with what comment (optional). It also silences."""

        async def call() -> tuple[Alarm, Alarm]:
            text = _text(comment, "comment", required=False)
            return await self._monitor.acknowledge(alarm_id, actor.name, text)

        return await self._alarm_action(
            actor, "alarm_ack", alarm_id, call,
            reason=comment if isinstance(comment, str) else None,
        )  # fmt: skip

    async def silence_alarm(self, actor: Actor, alarm_id: int) -> dict[str, Any]:
        """Stop the alarm's sound; its state stays."""
        return await self._alarm_action(
            actor, "alarm_silence", alarm_id, lambda: self._monitor.silence(alarm_id, actor.name)
        )

    async def shelve_alarm(
        self, actor: Actor, alarm_id: int, reason: Any, minutes: Any
    ) -> dict[str, Any]:
        """Shelve for `minutes` (at most the site's limit) with a reason; it comes back
        by itself when the time is up."""
        limit = self.site.cfg.alarms.shelve_max_minutes

        async def call() -> tuple[Alarm, Alarm]:
            text = _text(reason, "reason", required=True)
            assert text is not None
            if isinstance(minutes, bool) or not isinstance(minutes, (int, float)):
                raise Invalid("minutes", "minutes must be a number")
            if not 0 < minutes <= limit:
                raise Invalid("minutes", f"minutes must be more than 0 and at most {limit}")
            return await self._monitor.shelve(alarm_id, actor.name, text, float(minutes))

        return await self._alarm_action(
            actor, "alarm_shelve", alarm_id, call,
            reason=reason if isinstance(reason, str) else None,
            extra={"minutes": minutes},
        )  # fmt: skip


def _text(value: Any, field: str, *, required: bool) -> str | None:
    from linectl.ops.operations import clean_reason

    try:
        return clean_reason(value, required=required)
    except Invalid as e:
        raise Invalid(field, e.message.replace("reason", field), e.code) from None
