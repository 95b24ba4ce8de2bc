"""Accounts, their bearer tokens and console sessions: the rows, never the secrets.

Passwords and token secrets arrive here already hashed (Argon2, by
linectl.ops.accounts); a session's cookie secret arrives as its SHA-256. A
token is found by its public id and a session by the hash of its secret, so
no lookup ever has to try a hash against every row.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from linectl.clock import utc_iso
from linectl.store import db
from linectl.store.base import NotFound, StoreBase, utc
from linectl.store.models import Account, ApiToken, ConsoleSession


class AccountExists(Exception):
    """There is already an account of that name."""


@dataclass(frozen=True)
class AccountRecord:
    id: int
    name: str
    role: str
    password_hash: str | None
    locale: str | None
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def to_json(self) -> dict[str, Any]:
        """The account without its password hash."""
        return {
            "name": self.name,
            "role": self.role,
            "locale": self.locale,
            "created_at": utc_iso(self.created_at),
            "disabled_at": None if self.disabled_at is None else utc_iso(self.disabled_at),
            "password": self.password_hash is not None,
        }


@dataclass(frozen=True)
class TokenRecord:
    id: str
    account: AccountRecord
    secret_hash: str
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True)
class SessionRecord:
    id: str
    account: AccountRecord
    address: str | None
    created_at: datetime
    seen_at: datetime
    expires_at: datetime
    max_expires_at: datetime
    ended_at: datetime | None

    def live(self, now: datetime) -> bool:
        return self.ended_at is None and now < self.expires_at and self.account.active


def _account(r: Account) -> AccountRecord:
    return AccountRecord(
        id=r.id,
        name=r.name,
        role=r.role,
        password_hash=r.password_hash,
        locale=r.locale,
        created_at=r.created_at,
        disabled_at=r.disabled_at,
    )


class AccountStore(StoreBase):
    # -- accounts -----------------------------------------------------------------

    def add_account(
        self, name: str, role: str, password_hash: str | None, at: datetime
    ) -> AccountRecord:
        """A new account; `AccountExists` when the name is taken (disabled ones too)."""
        try:
            with self._errors(), self._write() as s:
                if s.scalars(select(Account).where(Account.name == name)).first() is not None:
                    raise AccountExists(name)
                row = Account(name=name, role=role, password_hash=password_hash, created_at=utc(at))
                s.add(row)
                s.flush()
                return _account(row)
        except db.StoreError as e:
            if isinstance(e.__cause__, IntegrityError):
                raise AccountExists(name) from None
            raise

    def account(self, name: str) -> AccountRecord | None:
        with self._errors(), self._read() as s:
            row = s.scalars(select(Account).where(Account.name == name)).first()
            return None if row is None else _account(row)

    def accounts(self) -> list[AccountRecord]:
        with self._errors(), self._read() as s:
            return [_account(r) for r in s.scalars(select(Account).order_by(Account.name))]

    def set_password(self, name: str, password_hash: str) -> AccountRecord:
        with self._errors(), self._write() as s:
            row = s.scalars(select(Account).where(Account.name == name)).first()
            if row is None:
                raise NotFound(f"no account {name}")
            row.password_hash = password_hash
            return _account(row)

    def set_locale(self, name: str, locale: str | None) -> AccountRecord:
        """The console's language for the account (None: the browser's)."""
        with self._errors(), self._write() as s:
            row = s.scalars(select(Account).where(Account.name == name)).first()
            if row is None:
                raise NotFound(f"no account {name}")
            row.locale = locale
            return _account(row)

    def disable_account(self, name: str, at: datetime) -> AccountRecord:
        """Disable an account, end its sessions and revoke its tokens; its history stays."""
        at = utc(at)
        with self._errors(), self._write() as s:
            row = s.scalars(select(Account).where(Account.name == name)).first()
            if row is None:
                raise NotFound(f"no account {name}")
            if row.disabled_at is None:
                row.disabled_at = at
            s.execute(
                update(ConsoleSession)
                .where(ConsoleSession.account_id == row.id, ConsoleSession.ended_at.is_(None))
                .values(ended_at=at)
            )
            s.execute(
                update(ApiToken)
                .where(ApiToken.account_id == row.id, ApiToken.revoked_at.is_(None))
                .values(revoked_at=at)
            )
            return _account(row)

    # -- bearer tokens ------------------------------------------------------------

    def add_token(self, name: str, token_id: str, secret_hash: str, at: datetime) -> TokenRecord:
        with self._errors(), self._write() as s:
            acc = s.scalars(select(Account).where(Account.name == name)).first()
            if acc is None:
                raise NotFound(f"no account {name}")
            row = ApiToken(
                id=token_id, account_id=acc.id, secret_hash=secret_hash, created_at=utc(at)
            )
            s.add(row)
            return TokenRecord(row.id, _account(acc), secret_hash, row.created_at, None)

    def token(self, token_id: str) -> TokenRecord | None:
        with self._errors(), self._read() as s:
            row = s.get(ApiToken, token_id)
            if row is None:
                return None
            acc = s.get(Account, row.account_id)
            assert acc is not None
            return TokenRecord(
                row.id, _account(acc), row.secret_hash, row.created_at, row.revoked_at
            )

    # -- console sessions ---------------------------------------------------------

    def create_session(
        self,
        *,
        session_id: str,
        secret_hash: str,
        account: str,
        address: str | None,
        at: datetime,
        expires_at: datetime,
        max_expires_at: datetime,
    ) -> SessionRecord:
        at = utc(at)
        with self._errors(), self._write() as s:
            acc = s.scalars(select(Account).where(Account.name == account)).first()
            if acc is None:
                raise NotFound(f"no account {account}")
            row = ConsoleSession(
                id=session_id,
                secret_hash=secret_hash,
                account_id=acc.id,
                address=address,
                created_at=at,
                seen_at=at,
                expires_at=utc(expires_at),
                max_expires_at=utc(max_expires_at),
            )
            s.add(row)
            s.flush()
            return self._session(row, acc)

    @staticmethod
    def _session(row: ConsoleSession, acc: Account) -> SessionRecord:
        return SessionRecord(
            id=row.id,
            account=_account(acc),
            address=row.address,
            created_at=row.created_at,
            seen_at=row.seen_at,
            expires_at=row.expires_at,
            max_expires_at=row.max_expires_at,
            ended_at=row.ended_at,
        )

    def session_by_secret(self, secret_hash: str) -> SessionRecord | None:
        with self._errors(), self._read() as s:
            row = s.scalars(
                select(ConsoleSession).where(ConsoleSession.secret_hash == secret_hash)
            ).first()
            if row is None:
                return None
            acc = s.get(Account, row.account_id)
            assert acc is not None
            return self._session(row, acc)

    def touch_session(self, session_id: str, seen_at: datetime, expires_at: datetime) -> None:
        with self._errors(), self._write() as s:
            s.execute(
                update(ConsoleSession)
                .where(ConsoleSession.id == session_id, ConsoleSession.ended_at.is_(None))
                .values(seen_at=utc(seen_at), expires_at=utc(expires_at))
            )

    def end_session(self, session_id: str, at: datetime) -> None:
        with self._errors(), self._write() as s:
            s.execute(
                update(ConsoleSession)
                .where(ConsoleSession.id == session_id, ConsoleSession.ended_at.is_(None))
                .values(ended_at=utc(at))
            )
