"""Signing in: passwords, console sessions and bearer tokens, turned into an `Actor`.

- `login` checks a password (Argon2, off the event loop), under a rate limit
  per account and per client address, and opens a server-side session: the
  browser gets a random secret, the database keeps only its SHA-256 (a
  256-bit random secret needs no slow hash) with the session's expiry.
  Sessions slide: each use moves the expiry to `idle` from now, never past
  `max_age` from sign-in; `Actor.expires_at` says when it ends, so the
  console can warn before it does.
- `bearer` checks `Authorization: Bearer lct_<id>_<secret>`: the row by id,
  then the Argon2 hash of that row only. A verified token is remembered (by
  its SHA-256) so the next request costs a lookup, not another Argon2 run;
  revocation and disabled accounts are still read from the database every time.

Sign-ins, failed ones included, and sign-outs are journalled (real time).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from linectl.ops.accounts import hash_secret, split_token, verify_secret
from linectl.ops.actor import Actor, Role, Terminal
from linectl.ops.errors import OpError
from linectl.store.accounts import AccountRecord, SessionRecord
from linectl.store.repo import AsyncStore

log = logging.getLogger(__name__)

# A session's expiry is written back at most this often (each request would otherwise write).
TOUCH_EVERY = timedelta(seconds=60)
_VERIFIED_MAX = 1024


class LoginRefused(OpError):
    code = "login_failed"
    status = 401


class TooManyAttempts(OpError):
    code = "too_many_attempts"
    status = 429

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(
            f"too many failed sign-ins: try again in {int(retry_after_s) + 1} s",
        )
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class SessionPolicy:
    idle: timedelta = timedelta(hours=4)
    max_age: timedelta = timedelta(hours=12)
    attempts_per_account: int = 5
    attempts_per_address: int = 20
    window: timedelta = timedelta(minutes=15)


class LoginLimiter:
    """Failed sign-ins in a sliding window, per account name and per client address.

    In memory: a restart forgets them, which costs an attacker a daemon restart
    they cannot cause."""

    def __init__(
        self,
        per_account: int,
        per_address: int,
        window_s: float,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_account = per_account
        self.per_address = per_address
        self.window_s = window_s
        self._now = now
        self._fails: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str]) -> deque[float]:
        q = self._fails.setdefault(key, deque())
        cutoff = self._now() - self.window_s
        while q and q[0] <= cutoff:
            q.popleft()
        return q

    def retry_after(self, name: str, address: str) -> float | None:
        """Seconds until a sign-in may be tried again, or None if it may now."""
        waits = []
        for key, limit in (
            (("account", name), self.per_account),
            (("address", address), self.per_address),
        ):
            q = self._recent(key)
            if len(q) >= limit:
                waits.append(q[len(q) - limit] + self.window_s - self._now())
        return max(waits) if waits else None

    def failed(self, name: str, address: str) -> None:
        now = self._now()
        self._recent(("account", name)).append(now)
        self._recent(("address", address)).append(now)
        if len(self._fails) > 10_000:  # forget idle keys, so no one can grow this without bound
            self._fails = {k: q for k, q in self._fails.items() if q}

    def succeeded(self, name: str) -> None:
        self._fails.pop(("account", name), None)


@dataclass(frozen=True)
class SignedIn:
    actor: Actor
    secret: str  # the cookie's value: shown to this browser only
    session: SessionRecord


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _actor(acc: AccountRecord, terminal: Terminal, expires_at: datetime | None) -> Actor:
    return Actor(acc.name, Role(acc.role), terminal, expires_at=expires_at, locale=acc.locale)


class Authenticator:
    def __init__(self, store: AsyncStore, policy: SessionPolicy | None = None) -> None:
        self.store = store
        self.policy = policy or SessionPolicy()
        self.limiter = LoginLimiter(
            self.policy.attempts_per_account,
            self.policy.attempts_per_address,
            self.policy.window.total_seconds(),
        )
        self._verified: dict[str, str] = {}  # sha256(token) -> token id
        self._dummy_hash: str | None = None

    @staticmethod
    def now() -> datetime:
        return datetime.now(UTC)

    async def _journal(self, actor: Actor, action: str, outcome: str = "ok", **kw: object) -> None:
        await self.store.append_journal(
            at=self.now(), action=action, outcome=outcome, **actor.journal_fields(), **kw
        )

    # --- passwords and sessions ---------------------------------------------------

    async def login(self, name: str, password: str, address: str) -> SignedIn:
        """Check the password and open a session; `LoginRefused` or `TooManyAttempts`."""
        name = name.strip()[:64]
        wait = self.limiter.retry_after(name, address)
        who = Actor(name or "(none)", Role.VIEWER, Terminal("http", address))
        if wait is not None:
            await self._journal(who, "login", "refused", changes={"error": "too_many_attempts"})
            raise TooManyAttempts(wait)
        acc = await self.store.account(name) if name else None
        if acc is None or acc.password_hash is None:
            # The same Argon2 work whether or not the account exists: no name oracle.
            if self._dummy_hash is None:
                self._dummy_hash = await asyncio.to_thread(hash_secret, secrets.token_hex(8))
            await asyncio.to_thread(verify_secret, self._dummy_hash, password)
            ok = False
        else:
            ok = await asyncio.to_thread(verify_secret, acc.password_hash, password)
        if not ok or acc is None or not acc.active:
            self.limiter.failed(name, address)
            await self._journal(who, "login", "refused", changes={"error": "login_failed"})
            raise LoginRefused("wrong name or password, or the account is disabled")
        self.limiter.succeeded(name)
        now = self.now()
        secret = secrets.token_urlsafe(32)
        max_expires = now + self.policy.max_age
        session = await self.store.create_session(
            session_id=secrets.token_hex(8),
            secret_hash=secret_hash(secret),
            account=acc.name,
            address=address,
            at=now,
            expires_at=min(now + self.policy.idle, max_expires),
            max_expires_at=max_expires,
        )
        actor = _actor(acc, Terminal("http", address, session.id), session.expires_at)
        await self._journal(actor, "login", changes={"session": session.id})
        return SignedIn(actor, secret, session)

    async def session(self, secret: str, address: str | None) -> Actor | None:
        """The actor of a live session (its expiry moved on), else None."""
        if not secret or len(secret) > 256:
            return None
        rec = await self.store.session_by_secret(secret_hash(secret))
        now = self.now()
        if rec is None or not rec.live(now):
            return None
        expires = rec.expires_at
        if now - rec.seen_at >= TOUCH_EVERY:
            expires = min(now + self.policy.idle, rec.max_expires_at)
            await self.store.touch_session(rec.id, now, expires)
        return _actor(rec.account, Terminal("http", address, rec.id), expires)

    async def renew(self, secret: str, address: str | None) -> Actor | None:
        """A live session's idle expiry moved on now (asked for: "stay signed in"),
        never past its maximum age; its actor, else None."""
        if not secret or len(secret) > 256:
            return None
        rec = await self.store.session_by_secret(secret_hash(secret))
        now = self.now()
        if rec is None or not rec.live(now):
            return None
        expires = min(now + self.policy.idle, rec.max_expires_at)
        await self.store.touch_session(rec.id, now, expires)
        return _actor(rec.account, Terminal("http", address, rec.id), expires)

    async def logout(self, actor: Actor) -> None:
        if actor.terminal.session is None:
            return
        await self.store.end_session(actor.terminal.session, self.now())
        await self._journal(actor, "logout")

    # --- bearer tokens ------------------------------------------------------------

    async def bearer(self, token: str, address: str | None) -> Actor | None:
        parts = split_token(token.strip())
        if parts is None:
            return None
        token_id, secret = parts
        rec = await self.store.token(token_id)
        if rec is None or rec.revoked_at is not None or not rec.account.active:
            return None
        digest = hashlib.sha256(token.strip().encode("utf-8")).hexdigest()
        if self._verified.get(digest) != token_id:
            if not await asyncio.to_thread(verify_secret, rec.secret_hash, secret):
                return None
            if len(self._verified) >= _VERIFIED_MAX:
                self._verified.clear()
            self._verified[digest] = token_id
        return _actor(rec.account, Terminal("http", address, f"token:{token_id}"), None)
