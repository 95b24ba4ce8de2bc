"""Accounts: names, roles, passwords and bearer tokens, managed and journalled.

Passwords and token secrets are kept only as Argon2id hashes, with OWASP's
recommended parameters (19 MiB, 2 passes, 1 lane): about 0.1 s on a loaded
two-core station PC, where argon2-cffi's defaults (64 MiB, 4 lanes) took
0.65 s per sign-in. The parameters are in each hash, so they can be raised
later without invalidating a password. A bearer token is
`lct_<id>_<secret>`: the id finds its row at once, and only that row's hash
is verified, so checking a token never means trying every hash in the table.

`AccountAdmin` is what `linectl user` and the demo call, on the synchronous
store, as an actor with the right to manage accounts; each change goes into
the journal (`user.add`, `user.token`, `user.disable`, `user.password`).
Account times are real time: sessions and sign-ins belong to people, not to
the site clock.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from linectl.ops.actor import ACCOUNT_ROLES, Action, Actor
from linectl.ops.errors import Conflict, Forbidden, Invalid, Unknown
from linectl.store.accounts import AccountExists, AccountRecord
from linectl.store.base import NotFound
from linectl.store.repo import Store

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
TOKEN_PREFIX = "lct"

_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(hashed: str, secret: str) -> bool:
    try:
        return _hasher.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> tuple[str, str, str]:
    """A new bearer token: (token, its public id, its secret)."""
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return f"{TOKEN_PREFIX}_{token_id}_{secret}", token_id, secret


def split_token(token: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not re.fullmatch(r"[0-9a-f]{16}", parts[1]):
        return None
    return parts[1], parts[2]


def check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise Invalid(
            "name",
            "an account name is 1..64 letters, digits or . _ @ -, starting with a letter or digit",
        )
    return name


def check_role(role: str) -> str:
    if role not in tuple(ACCOUNT_ROLES):
        raise Invalid("role", f"role must be one of {', '.join(ACCOUNT_ROLES)}, not {role!r}")
    return role


def check_password(password: str) -> str:
    if len(password) < PASSWORD_MIN:
        raise Invalid("password", f"a password has at least {PASSWORD_MIN} characters")
    if len(password) > PASSWORD_MAX:
        raise Invalid("password", f"a password has at most {PASSWORD_MAX} characters")
    return password


def new_password() -> str:
    """A random password a person can type: 16 characters of a clear alphabet."""
    alphabet = "abcdefghjkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789"
    return "".join(secrets.choice(alphabet) for _ in range(16))


class AccountAdmin:
    """Account changes on the synchronous store, each one journalled."""

    def __init__(
        self, store: Store, actor: Actor, now: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        if not actor.may(Action.ACCOUNTS):
            raise Forbidden(f"{actor.name} ({actor.role}) may not manage accounts")
        self.store = store
        self.actor = actor
        self.now = now

    def _record(self, action: str, name: str, changes: dict[str, Any]) -> None:
        self.store.append_journal(
            at=self.now(),
            action=action,
            target=f"user:{name}",
            changes=changes,
            **self.actor.journal_fields(),
        )

    def add(self, name: str, role: str, password: str | None) -> AccountRecord:
        check_name(name)
        check_role(role)
        hashed = None if password is None else hash_secret(check_password(password))
        try:
            acc = self.store.add_account(name, role, hashed, self.now())
        except AccountExists:
            raise Conflict(f"there is already an account {name}") from None
        self._record("user.add", name, {"role": role, "password": hashed is not None})
        return acc

    def set_password(self, name: str, password: str) -> AccountRecord:
        hashed = hash_secret(check_password(password))
        try:
            acc = self.store.set_password(name, hashed)
        except NotFound:
            raise Unknown(f"no account {name}") from None
        self._record("user.password", name, {})
        return acc

    def new_token(self, name: str) -> str:
        """A new bearer token for the account; only its hash is kept, so this is the
        one time it can be shown."""
        acc = self.store.account(name)
        if acc is None:
            raise Unknown(f"no account {name}")
        if not acc.active:
            raise Conflict(f"account {name} is disabled")
        token, token_id, secret = new_token()
        self.store.add_token(name, token_id, hash_secret(secret), self.now())
        self._record("user.token", name, {"token": token_id})
        return token

    def disable(self, name: str) -> AccountRecord:
        try:
            acc = self.store.disable_account(name, self.now())
        except NotFound:
            raise Unknown(f"no account {name}") from None
        self._record("user.disable", name, {"disabled": True})
        return acc

    def list(self) -> list[AccountRecord]:
        return self.store.accounts()
