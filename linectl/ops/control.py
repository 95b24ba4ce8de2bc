"""Control of a line: at most one console session at a time may act on it.

Rights (linectl.ops.actor) say what a role may do anywhere; control says who
acts on a line now, so two operators in two rooms never pause, abort and
check drivers in on the same line against each other. The first console
session that acts on a free line takes control of it; any other operator's
action on that line is then refused (409, `controlled`) naming the holder,
who any operator may see, and whom they may take control from by giving a
reason. Taking, taking over and giving up control are journalled (`control`,
with the previous and the new holder).

Only console sessions hold control. A script's bearer token, the registry,
the site's command line and the daemon itself act as before: they are not a
person at a terminal, and their actions are journalled with their terminal
like any. Control ends when the holder gives it up or signs out, and when
their session expires (as last seen: each action, line page and renewal of
the session tells the desk). It is kept in memory: a restart frees every line,
which a person then takes again with their first action.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from linectl.ops.actor import Actor


@dataclass(frozen=True)
class Holder:
    user: str
    role: str
    session: str
    address: str | None
    since: datetime  # real time
    expires_at: datetime | None  # the session's end, as it was known last

    def to_json(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "role": self.role,
            "session": self.session,
            "address": self.address,
            "since": self.since,
            "expires_at": self.expires_at,
        }


def console_session(actor: Actor) -> str | None:
    """The console session the actor acts from; None for tokens, registry, CLI, daemon."""
    s = actor.terminal.session
    return None if s is None or s.startswith("token:") else s


def holder_of(actor: Actor, now: datetime) -> Holder:
    session = console_session(actor)
    assert session is not None
    t = actor.terminal
    return Holder(actor.name, str(actor.role), session, t.address, now, actor.expires_at)


class ControlDesk:
    """Who holds each line; told by the operations layer, read by the console."""

    def __init__(self, now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._now = now
        self._holders: dict[str, Holder] = {}

    def holder(self, line: str) -> Holder | None:
        """The live holder of `line`; one whose session has run out holds nothing."""
        h = self._holders.get(line)
        if h is not None and h.expires_at is not None and h.expires_at <= self._now():
            del self._holders[line]
            return None
        return h

    def held_by_other(self, actor: Actor, line: str) -> Holder | None:
        """The holder the actor would have to take `line` from; None when the actor
        holds it, the line is free, or the actor is not a console session."""
        session = console_session(actor)
        h = self.holder(line)
        if session is None or h is None or h.session == session:
            return None
        return h

    def take(self, actor: Actor, line: str) -> tuple[Holder | None, Holder]:
        """The actor's session holds `line` from now on; (previous holder, new one).
        Holding it already refreshes when the session ends."""
        before = self.holder(line)
        now = self._now()
        since = (
            before.since if before is not None and before.session == console_session(actor) else now
        )
        after = holder_of(actor, since)
        self._holders[line] = after
        return before, after

    def seen(self, actor: Actor) -> None:
        """The actor's session is live until `actor.expires_at` (it was just used):
        every line it holds is held that long."""
        session = console_session(actor)
        for line, h in list(self._holders.items()):
            if h.session == session and actor.expires_at != h.expires_at:
                self._holders[line] = replace(h, expires_at=actor.expires_at)

    def release(self, actor: Actor, line: str) -> Holder | None:
        """Give `line` up if the actor's session holds it; the holder released."""
        h = self.holder(line)
        if h is None or h.session != console_session(actor):
            return None
        del self._holders[line]
        return h

    def release_session(self, session: str) -> list[str]:
        """Every line a session held (it signed out); their ids."""
        lines = [ln for ln, h in self._holders.items() if h.session == session]
        for ln in lines:
            del self._holders[ln]
        return lines
