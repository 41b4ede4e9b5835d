"""``geo-service users``: staff accounts from the command line, as ``keys`` does keys.

The operator who runs it reaches the database, so it acts for the whole country (no
area limit) and the audit trail names "command line". Passwords are read from standard
input (``--password-stdin``: the first line) or, for ``create`` and ``reset-password``
without it, made at random and printed once; never taken as an argument, where other
users of the machine could read them in the process list.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import secrets
import sys
from collections.abc import Callable
from typing import Any

from geo_service.infra.settings import Settings

_HEADS = ("id", "name", "display_name", "role", "area_code", "state", "created_at")


def add_commands(sub: Any) -> None:
    """Register ``users`` on the ``geo-service`` sub-command parser."""
    from geo_service.domain.auth import ROLES

    users = sub.add_parser("users", help="staff accounts of the console")
    usub = users.add_subparsers(dest="userscmd", required=True)
    uc = usub.add_parser("create", help="create an account (password from stdin, or printed "
                                        "once)")
    uc.add_argument("name")
    uc.add_argument("--role", choices=ROLES, required=True)
    uc.add_argument("--area", help="admin area code the account is limited to")
    uc.add_argument("--display-name")
    uc.add_argument("--password-stdin", action="store_true",
                    help="read the password from the first line of standard input")
    uc.set_defaults(func=cmd_create)
    ul = usub.add_parser("list", help="accounts with their role, area and state")
    ul.add_argument("--json", action="store_true")
    ul.set_defaults(func=cmd_list)
    ud = usub.add_parser("disable", help="disable an account: its sessions end at once")
    ud.add_argument("name")
    ud.set_defaults(func=cmd_disable)
    ur = usub.add_parser("reset-password", help="a new password (stdin, or printed once); "
                                                "the account's sessions end")
    ur.add_argument("name")
    ur.add_argument("--password-stdin", action="store_true")
    ur.set_defaults(func=cmd_reset)


def _run(settings: Settings, work: Callable[[Any], Any]) -> tuple[int, Any]:
    from geo_service.domain.errors import GeoServiceError
    from geo_service.infra.db import connect

    with connect(settings.resolved_database_url()) as conn:
        try:
            return 0, work(conn)
        except GeoServiceError as exc:
            print(f"error: {exc.message}", file=sys.stderr)
            return 2, None


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """The password to set, and whether it was made here (then it is printed once)."""
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return secrets.token_urlsafe(12), True


def _state(user: dict[str, Any]) -> str:
    now = dt.datetime.now(dt.UTC)
    return ("disabled" if user["disabled_at"] else
            "locked" if user["locked_until"] and user["locked_until"] > now else "active")


def cmd_create(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain import accounts

    password, made = _password(args)
    rc, user = _run(settings, lambda conn: accounts.create_user(
        conn, name=args.name, role=args.role, password=password,
        display_name=args.display_name, area_code=args.area))
    if rc == 0:
        if made:
            print(password)
        print(f"account {user['id']} ({user['name']}, {user['role']}"
              f"{', area ' + user['area_code'] if user['area_code'] else ''}) created"
              f"{': hand the password over now, only a hash is kept' if made else ''}",
              file=sys.stderr)
    return rc


def cmd_list(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain import accounts

    rc, users = _run(settings, lambda conn: accounts.list_users(conn, None))
    if rc:
        return rc
    rows = [{**{h: u.get(h) for h in _HEADS}, "state": _state(u)} for u in users]
    if args.json:
        print(json.dumps(rows, default=str, ensure_ascii=False, indent=2))
        return 0
    table = [["-" if r[h] is None else r[h].strftime("%Y-%m-%d %H:%M")
              if isinstance(r[h], dt.datetime) else str(r[h]) for h in _HEADS] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) for i, h in enumerate(_HEADS)]
    for line in [list(_HEADS), *table]:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
    return 0


def cmd_disable(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain import accounts

    rc, user = _run(settings, lambda conn: accounts.disable_user(
        conn, accounts.user_id_by_name(conn, args.name), None))
    if rc == 0:
        print(f"account {user['name']} disabled; its sessions have ended", file=sys.stderr)
    return rc


def cmd_reset(args: argparse.Namespace, settings: Settings) -> int:
    from geo_service.domain import accounts

    password, made = _password(args)
    rc, result = _run(settings, lambda conn: accounts.reset_password(
        conn, accounts.user_id_by_name(conn, args.name), None, password))
    if rc == 0:
        if made:
            print(password)
        print(f"account {result[1]['name']}: new password set, its sessions have ended",
              file=sys.stderr)
    return rc
