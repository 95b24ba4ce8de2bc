"""`linectl user`: accounts of the console and API, from the site machine's command line.

`add NAME --role ROLE` asks for the password twice on a terminal, or reads
one line from standard input when that is not a terminal (for scripts).
`token NAME` prints a new bearer token alone on standard output, and a note
on standard error: it is shown this once, only its hash is kept. `list`
shows the accounts, `disable NAME` ends an account's sessions and tokens.

The command line acts as the local actor (the machine's login name, role
`local`), and every change is journalled like any other operation.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from linectl.cli import CliError
from linectl.ops.accounts import AccountAdmin, check_password
from linectl.ops.actor import Actor
from linectl.ops.errors import OpError
from linectl.store.cli import EXIT_DB, open_store
from linectl.store.repo import StoreError


def read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        check_password(first)
        if getpass.getpass("again: ") != first:
            raise CliError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def cli(args: argparse.Namespace) -> int:
    store = open_store(args, must_exist=args.user_command != "add")
    try:
        store.upgrade()  # accounts may be added before the daemon ever ran
        admin = AccountAdmin(store, Actor.local())
        if args.user_command == "add":
            password = None if args.no_password else read_password()
            acc = admin.add(args.name, args.role, password)
            print(f"account {acc.name} added, role {acc.role}")
        elif args.user_command == "token":
            token = admin.new_token(args.name)
            print(token)
            print(
                f"a new bearer token for {args.name}: shown only this once "
                "(send it as Authorization: Bearer TOKEN)",
                file=sys.stderr,
            )
        elif args.user_command == "list":
            accounts = admin.list()
            if args.json:
                print(json.dumps([a.to_json() for a in accounts], ensure_ascii=False))
            elif not accounts:
                print("no accounts (linectl user add NAME --role ROLE)")
            for a in [] if args.json else accounts:
                state = "disabled" if a.disabled_at else "active"
                print(f"{a.name:<24} {a.role:<11} {state}")
        elif args.user_command == "disable":
            acc = admin.disable(args.name)
            print(f"account {acc.name} disabled: its sessions and tokens no longer work")
        return 0
    except OpError as e:
        raise CliError(e.message) from None
    except StoreError as e:
        raise CliError(str(e), EXIT_DB) from None
    finally:
        store.close()
