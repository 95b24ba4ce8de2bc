"""`linectl db backup FILE`: a copy of the site database, taken while the daemon runs.

SQLite: the online backup API (`sqlite3.Connection.backup`) copies the pages
under one read transaction, so the copy is the database as of one moment
while the daemon goes on writing (WAL: readers do not block the writer). The
copy is written beside FILE first, made a standalone file (journal mode
DELETE), checked (`PRAGMA integrity_check`) and only then moved to FILE, so
a FILE that exists is always a whole backup.

PostgreSQL: `pg_dump --format=custom` does the same on the server's side (one
snapshot, concurrent writes go on). It is run when it is on PATH, limited to
the site's schema when the URL names one (`options=-csearch_path=...`);
otherwise the command prints the pg_dump line to run where it is installed.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from sqlalchemy.engine import make_url

from linectl.store.db import safe_url
from linectl.store.health import sqlite_file


class BackupError(Exception):
    """The backup was not made; `str()` says why in one line."""


@dataclass(frozen=True)
class Backup:
    file: Path
    size_bytes: int
    detail: str


def backup(url: str, dest: str | Path, *, force: bool = False) -> Backup:
    """Back the database at `url` up into `dest`; `BackupError` if it cannot."""
    target = Path(dest)
    if target.exists() and not force:
        raise BackupError(f"{target} exists: give another file, or --force to replace it")
    if target.is_dir():
        raise BackupError(f"{target} is a folder: give a file name")
    if not target.parent.is_dir():
        raise BackupError(f"no folder {target.parent} for {target.name}")
    src = sqlite_file(url)
    if src is not None:
        return _sqlite(src, target)
    if make_url(url).get_backend_name() == "postgresql":
        return _postgresql(url, target)
    raise BackupError(f"database {safe_url(url)}: no backup for this kind of database")


def _sqlite(src: Path, target: Path) -> Backup:
    if not src.exists():
        raise BackupError(f"no database file {src}")
    part = target.with_name(target.name + ".part")
    part.unlink(missing_ok=True)
    try:
        # mode=rw: never creates an empty database where a typo points.
        with sqlite3.connect(f"file:{src}?mode=rw", uri=True, timeout=30) as source:
            dest = sqlite3.connect(part)
            try:
                source.backup(dest)  # all pages in one step: one consistent moment
                dest.execute("PRAGMA journal_mode = DELETE")  # one standalone file
                check = dest.execute("PRAGMA integrity_check").fetchone()[0]
                pages = dest.execute("PRAGMA page_count").fetchone()[0]
            finally:
                dest.close()
        if check != "ok":
            raise BackupError(f"the copy of {src} fails its integrity check: {check}")
        os.replace(part, target)
    except sqlite3.Error as e:
        raise BackupError(f"database {src}: {e}") from None
    except OSError as e:
        raise BackupError(f"{target}: {e.strerror or e}") from None
    finally:
        part.unlink(missing_ok=True)
    return Backup(target, target.stat().st_size, f"{pages} pages, integrity ok")


def pg_dump_args(url: str, target: Path) -> list[str]:
    """The pg_dump command line for `url` (a SQLAlchemy URL) into `target`."""
    u = make_url(url)
    schema = None
    options = u.query.get("options")
    if isinstance(options, str) and "search_path=" in options:
        schema = unquote(options.split("search_path=", 1)[1]).split(",")[0].split()[0]
    dsn = u.set(drivername="postgresql").difference_update_query(["options"])
    args = ["pg_dump", "--format=custom", f"--file={target}"]
    if schema:
        args.append(f"--schema={schema}")
    return [*args, dsn.render_as_string(hide_password=False)]


def _postgresql(url: str, target: Path) -> Backup:
    args = pg_dump_args(url, target)
    shown = " ".join([*args[:-1], safe_url(args[-1])])
    if shutil.which("pg_dump") is None:
        raise BackupError(
            "pg_dump is not installed here (Debian: apt-get install postgresql-client); "
            f"run where it is: {shown}"
        )
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BackupError(f"pg_dump: {e}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        target.unlink(missing_ok=True)
        raise BackupError(f"pg_dump: {last}")
    return Backup(target, target.stat().st_size, "pg_dump custom format (pg_restore reads it)")
