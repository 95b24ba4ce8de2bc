"""`linectl db`: apply the schema migrations, show the schema revision, or back up.

Also the one rule every command that opens the store follows to find it:
`--db URL`, else the `database.url` of `--config FILE`, else
sqlite:///linectl.db in the current folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from linectl.cli import CliError
from linectl.store import db
from linectl.store.repo import Store, StoreError

# Exit status when the database cannot be used (as for a bad config).
EXIT_DB = 2


def database_url(args: argparse.Namespace) -> str:
    if getattr(args, "db", None):
        return str(args.db)
    if getattr(args, "config", None):
        from linectl.config import load_site_config

        return load_site_config(args.config).database.url
    return db.DEFAULT_URL


def require_existing(url: str) -> None:
    """A reading command must not leave an empty SQLite file behind a typo."""
    try:
        u = make_url(url)
    except ArgumentError:
        return  # Store() reports the bad URL
    path = u.database
    is_file = u.get_backend_name() == "sqlite" and path and path != ":memory:"
    if is_file and "mode=" not in url and not Path(path).exists():
        raise CliError(f"database {db.safe_url(url)}: no such file {path}", EXIT_DB)


def open_store(args: argparse.Namespace, *, must_exist: bool) -> Store:
    url = database_url(args)
    if must_exist:
        require_existing(url)
    try:
        return Store(url)
    except StoreError as e:
        raise CliError(str(e), EXIT_DB) from None


def cli(args: argparse.Namespace) -> int:
    if args.db_command == "backup":
        return _backup(args)
    store = open_store(args, must_exist=args.db_command != "upgrade")
    where = f"database {db.safe_url(store.url)}"
    head = db.head_revision()
    try:
        before = store.current_revision()
        if args.db_command == "upgrade":
            if before == head:
                print(f"{where}: schema {head} is current, nothing to do")
                return 0
            store.upgrade()
            print(f"{where}: schema upgraded from {before or '(empty)'} to {head}")
            return 0
        if before == head:
            print(f"{where}: schema {head} (head)")
            return 0
        if before is None:
            print(f"{where}: no linectl schema (run `linectl db upgrade`)")
        elif before in db.known_revisions():
            print(f"{where}: schema {before}, head is {head} (run `linectl db upgrade`)")
        else:
            print(f"{where}: schema {before} is unknown to this linectl (head {head}): newer?")
        return 1
    except StoreError as e:
        raise CliError(str(e), EXIT_DB) from None
    finally:
        store.close()


def _backup(args: argparse.Namespace) -> int:
    from linectl.store.backup import BackupError, backup

    url = database_url(args)
    require_existing(url)
    try:
        done = backup(url, args.file, force=args.force)
    except BackupError as e:
        raise CliError(str(e), EXIT_DB) from None
    print(
        f"database {db.safe_url(url)}: backed up to {done.file} "
        f"({done.size_bytes / 2**20:.1f} MiB, {done.detail})"
    )
    return 0
