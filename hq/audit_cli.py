"""`python -m hq audit-verify --store STORE [--anchor HASH] [--json]`: check the audit log's chain.

STORE is hq.toml's `store`: a SQLite file or a postgresql:// URL (`--db` is its older
name). Opens the database read-only (a check must not change what it checks), walks
the hash chain and prints either the head (note its hash somewhere else: a
later `--anchor` with it detects rows cut off the end) or the first row that
breaks the chain. Exit status: 0 intact, 1 broken, 2 no such database.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

from hq.audit import AuditVerification
from hq.store import open_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hq audit-verify",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--store", "--db", dest="store", required=True,
                        help="HQ's store: a SQLite file or a postgresql:// URL")
    parser.add_argument("--anchor", help="a head hash noted earlier; it must still be in the chain")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        store = open_store(args.store, read_only=True)
    except (OSError, RuntimeError) as error:
        print(f"audit-verify: {error}", file=sys.stderr)
        return 2
    with store:
        result = store.verify_audit(anchor=args.anchor)
    print(json.dumps(dataclasses.asdict(result)) if args.json else describe(result))
    return 0 if result.ok else 1


def describe(result: AuditVerification) -> str:
    if result.ok and result.head_seq is None:
        return "audit log intact: it is empty"
    if result.ok:
        return (f"audit log intact: {result.rows_checked} rows verified; head seq "
                f"{result.head_seq} hash {result.head_hash}")  # fmt: skip
    return (f"audit log BROKEN at seq {result.first_bad_seq}: {result.reason} "
            f"({result.rows_checked} rows verified before it)")  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
