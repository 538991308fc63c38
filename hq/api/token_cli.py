"""`python -m hq token create|list|revoke --store STORE ...`: the API's bearer tokens.

    python -m hq token create --name alice --role operator --store /var/lib/dunewatch/hq.db
    python -m hq token create --name ci --role viewer --expires-days 30 --store postgresql://...
    python -m hq token list --config /etc/dunewatch/hq.toml
    python -m hq token revoke --name alice --store ...      (a name or a token id)

`--store` is HQ's store (hq.toml's `store`: a SQLite path or a postgresql:// URL), or
`--config` names the hq.toml to read it from. `create` prints the token once: only its
hash is stored, so it cannot be shown again. Creating and revoking are audited under the
name of the operating-system user who ran the command.
"""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from datetime import UTC, datetime

from hq.api.tokens import Role, TokenStore
from hq.config import load_config
from hq.store import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hq token", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="make a token and print it once")
    create.add_argument("--name", required=True, help="who uses it (written to the audit log)")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--expires-days", type=float, help="valid this many days (default: "
                                                           "until revoked)")  # fmt: skip
    listing = commands.add_parser("list", help="tokens with their role, expiry and state")
    revoke = commands.add_parser("revoke", help="revoke a name's (or an id's) active tokens")
    revoke.add_argument("--name", required=True, help="a token's name or id")
    for sub in (create, listing, revoke):
        where = sub.add_mutually_exclusive_group(required=True)
        where.add_argument("--store", "--db", dest="store",
                           help="HQ's store: a SQLite file or a postgresql:// URL")
        where.add_argument("--config", help="the hq.toml whose `store` to use")
    args = parser.parse_args(argv)
    try:
        location = load_config(args.config).store if args.config else args.store
        store = open_store(location)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"python -m hq token: {error}", file=sys.stderr)
        return 2
    try:
        return _run(args, TokenStore(store, actor=f"cli:{getpass.getuser()}"))
    except ValueError as error:
        print(f"python -m hq token {args.command}: {error}", file=sys.stderr)
        return 1
    finally:
        store.close()


def _run(args: argparse.Namespace, tokens: TokenStore) -> int:
    now = time.time()
    if args.command == "create":
        if args.expires_days is not None and args.expires_days <= 0:
            raise ValueError("--expires-days must be positive")
        expires = None if args.expires_days is None else now + args.expires_days * 86_400
        token, record = tokens.create(args.name, args.role, expires, now)
        print(token)
        print(f"created token {record.token_id} for {record.name} ({record.role}, expires "
              f"{_when(record.expires_at)}); it is not shown again", file=sys.stderr)
        return 0
    if args.command == "list":
        for r in tokens.tokens():
            state = "revoked" if r.revoked_at else "active" if r.active(now) else "expired"
            print(f"{r.token_id}  {r.name:<24} {r.role:<8} {state:<8} created "
                  f"{_when(r.created_at)}  expires {_when(r.expires_at)}")
        return 0
    revoked = tokens.revoke(args.name, now)
    print(f"revoked {revoked} token(s) of {args.name}")
    return 0 if revoked else 1


def _when(t: float | None) -> str:
    return "never" if t is None else datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%MZ")


if __name__ == "__main__":
    sys.exit(main())
