"""Who asks: the actor of every operation, its role, and what each role may do.

An `Actor` is whoever an operation is done for: a person or script signed in
with an account (role viewer, operator, technician or admin, http.md "Who
may do what"), the upstream registry over MQTT, the command line on the
site's own machine, or the daemon itself. It carries the terminal it came
from (how: http, mqtt, cli, system; the client address; the console session
or bearer token) so the journal can say who did what from where.

`GRANTS` is the one table of rights; every transport asks `may()` through
the operations layer and none keeps its own. Nothing here, or anywhere,
grants choosing a proxy driver: there is no such action.
"""

from __future__ import annotations

import getpass
import socket
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    TECHNICIAN = "technician"
    ADMIN = "admin"
    # Not account roles: the fixed actors that are not people signing in.
    REGISTRY = "registry"  # the upstream registry over MQTT
    LOCAL = "local"  # the command line on the site's machine (it owns the database)
    SYSTEM = "system"  # the daemon itself, and the demo's simulated registry


ACCOUNT_ROLES = (Role.VIEWER, Role.OPERATOR, Role.TECHNICIAN, Role.ADMIN)


class Action(StrEnum):
    READ = "read"  # lines, inspections, events, the journal
    REGISTER = "register"
    RETEST = "retest"
    ABORT = "abort"
    DUTY = "duty"
    PAUSE = "pause"
    RESUME = "resume"
    MAINTENANCE = "maintenance"  # a station in maintenance, or back from it
    ALARM = "alarm"  # acknowledge, silence, shelve an alarm
    DIAGNOSE = "diagnose"  # device diagnostics through the API
    AUDIT = "audit"  # the audit log (/api/audit)
    ACCOUNTS = "accounts"  # add, disable, tokens


_OPERATOR = {
    Action.READ,
    Action.REGISTER,
    Action.RETEST,
    Action.ABORT,
    Action.DUTY,
    Action.PAUSE,
    Action.RESUME,
    Action.ALARM,
    Action.MAINTENANCE,
}
GRANTS: dict[Role, frozenset[Action]] = {
    Role.VIEWER: frozenset({Action.READ}),
    Role.TECHNICIAN: frozenset({Action.READ, Action.DIAGNOSE, Action.MAINTENANCE}),
    Role.OPERATOR: frozenset(_OPERATOR),
    Role.ADMIN: frozenset(Action),
    Role.REGISTRY: frozenset({Action.REGISTER, Action.RETEST}),
    Role.LOCAL: frozenset(Action),
    Role.SYSTEM: frozenset(Action),
}


@dataclass(frozen=True)
class Terminal:
    """Where an action came from, as far as it can be known."""

    via: str  # http | mqtt | cli | system
    address: str | None = None  # client address (http)
    session: str | None = None  # console session id, or "token:ID" for a bearer token


@dataclass(frozen=True)
class Actor:
    name: str
    role: Role
    terminal: Terminal
    # When the console session ends unless renewed (None: no session).
    expires_at: datetime | None = None
    locale: str | None = None

    def may(self, action: Action | str) -> bool:
        return Action(action) in GRANTS[self.role]

    @property
    def is_account(self) -> bool:
        return self.role in ACCOUNT_ROLES

    def at(self, terminal: Terminal) -> Actor:
        return replace(self, terminal=terminal)

    def journal_fields(self) -> dict[str, Any]:
        """Who and from where, as the journal keeps it."""
        t = self.terminal
        return {
            "user": self.name,
            "role": str(self.role),
            "via": t.via,
            "address": t.address,
            "session": t.session,
        }

    # --- the fixed actors --------------------------------------------------------

    @classmethod
    def registry(cls) -> Actor:
        return cls("registry", Role.REGISTRY, Terminal("mqtt"))

    @classmethod
    def system(cls, name: str = "linectl") -> Actor:
        return cls(name, Role.SYSTEM, Terminal("system"))

    @classmethod
    def local(cls) -> Actor:
        """The person at the site machine's command line, by their login name."""
        try:
            user = getpass.getuser()
        except Exception:  # no login name (a container without passwd entry)
            user = "unknown"
        return cls(user, Role.LOCAL, Terminal("cli", socket.gethostname()))
