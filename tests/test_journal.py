"""The journal of actions: appended as a hash chain, read newest first, verified by
`linectl audit verify`, which names an entry altered or deleted by hand; and the
accounts made by `linectl user`, which land in it."""

from __future__ import annotations

import json
import subprocess
import sys

import store_fixtures
from sqlalchemy import Engine, text
from store_fixtures import at

from linectl.ops.accounts import split_token, verify_secret
from linectl.store.repo import Store

db_url = store_fixtures.db_url
store = store_fixtures.store
raw_engine = store_fixtures.raw_engine


def linectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "linectl", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def fill(s: Store, n: int) -> None:
    for i in range(n):
        s.append_journal(
            at=at(i),
            user="ana",
            role="operator",
            via="http",
            address="10.0.0.7",
            session="3f2a9c1e5b7d4a60",
            action="abort",
            target=f"inspection:zc01-20261127-{i + 1:04d}",
            reason="owner left 车主离开",
            changes={"state": {"from": "queued", "to": "aborted"}},
        )


def test_entries_chain_and_read_newest_first(store: Store) -> None:
    fill(store, 3)
    entries = store.journal()
    assert [e.seq for e in entries] == [3, 2, 1]
    assert entries[-1].prev_hash == "0" * 64 and entries[1].prev_hash == entries[-1].hash
    assert all(e.hash == e.content_hash() for e in entries)
    doc = entries[0].to_json()
    assert set(doc) >= {"seq", "at", "user", "terminal", "action", "target", "reason", "changes"}
    assert doc["terminal"] == {"via": "http", "address": "10.0.0.7", "session": "3f2a9c1e5b7d4a60"}
    assert doc["reason"] == "owner left 车主离开" and doc["outcome"] == "ok"
    assert [e.seq for e in store.journal(target="inspection:zc01-20261127-0002")] == [2]
    assert [e.seq for e in store.journal(2, before_seq=3)] == [2, 1]
    assert store.verify_journal().ok


def test_verify_names_an_altered_or_deleted_entry(
    store: Store, db_url: str, raw_engine: Engine
) -> None:
    fill(store, 5)
    p = linectl("audit", "verify", "--db", db_url)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "journal intact: 5 entries" in p.stdout and "journal head: seq 5" in p.stdout
    with raw_engine.begin() as c:  # someone rewrites who aborted vehicle 3, and why
        c.execute(text("UPDATE journal SET user_name = 'bo', reason = 'x' WHERE seq = 3"))
    p = linectl("audit", "verify", "--db", db_url, "--json")
    report = json.loads(p.stdout)
    assert p.returncode == 1
    assert report["ok"] is True  # the draws are fine...
    assert report["journal"]["ok"] is False and report["journal"]["first_bad_seq"] == 3
    p = linectl("audit", "verify", "--db", db_url)
    assert p.returncode == 1 and "journal BROKEN at entry seq 3" in p.stdout
    assert "altered" in p.stdout
    with raw_engine.begin() as c:
        c.execute(text("DELETE FROM journal WHERE seq >= 2 AND seq <= 3"))
    p = linectl("audit", "verify", "--db", db_url)
    assert p.returncode == 1 and "seq 2..3 missing" in p.stdout


def test_user_commands(db_url: str) -> None:
    p = linectl("user", "add", "ana", "--role", "operator", "--db", db_url, stdin="s3cret-pass\n")
    assert p.returncode == 0, p.stderr
    p = linectl("user", "add", "ana", "--role", "viewer", "--db", db_url, stdin="other-pass\n")
    assert p.returncode == 1 and "already an account ana" in p.stderr
    p = linectl("user", "add", "bo", "--role", "operator", "--db", db_url, stdin="short\n")
    assert p.returncode == 1 and "at least 8" in p.stderr and "Traceback" not in p.stderr
    p = linectl("user", "add", "cy", "--role", "chief", "--db", db_url, stdin="s3cret-pass\n")
    assert p.returncode == 2 and "--role" in p.stderr
    p = linectl("user", "token", "ana", "--db", db_url)
    assert p.returncode == 0
    token = p.stdout.strip()
    assert p.stdout == token + "\n" and "shown only this once" in p.stderr
    parts = split_token(token)
    assert parts is not None
    p = linectl("user", "list", "--db", db_url, "--json")
    (acc,) = json.loads(p.stdout)
    assert acc["name"] == "ana" and acc["role"] == "operator" and acc["disabled_at"] is None
    assert "hash" not in p.stdout and "s3cret" not in p.stdout
    p = linectl("user", "disable", "ana", "--db", db_url)
    assert p.returncode == 0
    p = linectl("user", "list", "--db", db_url)
    assert "ana" in p.stdout and "disabled" in p.stdout
    assert linectl("user", "token", "nobody", "--db", db_url).returncode == 1

    s = Store(db_url)
    try:
        acc_rec = s.account("ana")
        assert acc_rec is not None and acc_rec.password_hash is not None
        assert acc_rec.password_hash.startswith("$argon2id$")
        assert verify_secret(acc_rec.password_hash, "s3cret-pass")
        tok = s.token(parts[0])
        assert tok is not None and tok.revoked_at is not None  # disabled: token revoked
        assert tok.secret_hash.startswith("$argon2id$") and parts[1] not in tok.secret_hash
        actions = [(e.action, e.target, e.role) for e in reversed(s.journal())]
        assert [a for a, _, _ in actions] == ["user.add", "user.token", "user.disable"]
        assert {t for _, t, _ in actions} == {"user:ana"} and {r for _, _, r in actions} == {
            "local"
        }
        assert s.verify_journal().ok
    finally:
        s.close()
