"""Stores a benchmark may fill and throw away: a SQLite file in a temporary folder, or a
PostgreSQL database of its own on the server a `postgresql://` URL names (created, then
dropped with everything in it). `--store` options name either: `sqlite` or a URL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from hq.store import is_postgresql, redacted


def add_store_option(parser, what: str) -> None:
    parser.add_argument("--store", action="append", metavar="sqlite|postgresql://...",
                        help=f"{what}; repeat to compare backends in one run (default: sqlite). "
                             "A URL names a PostgreSQL server: the benchmark creates its own "
                             "database there and drops it afterwards")  # fmt: skip


def backend_name(store: str) -> str:
    return "postgresql" if is_postgresql(store) else "sqlite"


def label(store: str) -> str:
    return "SQLite" if backend_name(store) == "sqlite" else f"PostgreSQL ({redacted(store)})"


@contextmanager
def scratch(store: str, folder: Path, name: str) -> Iterator[str]:
    """A location for a fresh, empty store called `name`."""
    if not is_postgresql(store):
        yield str(folder / f"{name}.db")
        return
    database = f"dunewatch_bench_{name}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(store, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        try:
            yield urlunsplit(urlsplit(store)._replace(path=f"/{database}"))
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
