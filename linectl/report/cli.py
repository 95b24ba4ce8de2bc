"""`linectl report ID`: the inspection report as HTML or PDF, from the site database.

The database is found as for every reading command (`--db`, else the config's,
else sqlite:///linectl.db). With `--config`, the site's name, time zone and
limits folder are taken from it too. Without `--html` or `--pdf` the HTML goes
to standard output. An unknown inspection exits 2 with one line on stderr, in
the report's language.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from linectl.cli import CliError
from linectl.i18n import translator
from linectl.store.cli import EXIT_DB, open_store
from linectl.store.db import safe_url
from linectl.store.repo import NotFound, StoreError

EXIT_UNKNOWN = 2


def cli(args: argparse.Namespace) -> int:
    from linectl.report.render import render_report

    config = None
    if args.config:
        from linectl.config import load_site_config

        config = load_site_config(args.config)
    fmt, target = ("pdf", args.pdf) if args.pdf else ("html", args.html or "-")
    store = open_store(args, must_exist=True)
    try:
        store.check_schema()
        try:
            data, _ = render_report(store, args.inspection_id, args.lang, fmt, config=config)
        except NotFound:
            _ = translator(args.lang).gettext
            raise CliError(
                _("no inspection %(id)s in database %(db)s")
                % {"id": args.inspection_id, "db": safe_url(store.url)},
                EXIT_UNKNOWN,
            ) from None
    except StoreError as e:
        raise CliError(str(e), EXIT_DB) from None
    finally:
        store.close()
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        try:
            Path(target).write_bytes(data)
        except OSError as e:
            raise CliError(f"cannot write {target}: {e.strerror or e}", 1) from None
        print(f"{target}: {fmt.upper()} report of {args.inspection_id}, {len(data)} bytes")
    return 0
