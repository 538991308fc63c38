"""The two store backends as tests use them: a SQLite file in the test's folder, or a
PostgreSQL database of its own, created on the local server (127.0.0.1:5432, trust
authentication) and dropped afterwards. `DUNEWATCH_TEST_POSTGRESQL` names another server
(a URL of a database the test may connect to, to create and drop its own)."""

from __future__ import annotations

import getpass
import os
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from hq.store import open_store
from hq.store.interface import Store

BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Backend:
    name: str
    location: str  # what hq.toml's `store` would say
    integrity_error: type[Exception]  # what the database raises for a refused row

    def open(self, **options) -> Store:
        return open_store(self.location, **options)

    def execute(self, *statements: str) -> list[tuple]:
        """Run SQL straight on the database, around the store (what someone holding the
        database could do); the rows of the last statement."""
        if self.name == "sqlite":
            with sqlite3.connect(self.location) as conn:
                rows = [conn.execute(sql).fetchall() for sql in statements]
            conn.close()
            return rows[-1] if rows else []
        with psycopg.connect(self.location, autocommit=True) as conn:
            rows = [conn.execute(sql) for sql in statements]
            last = rows[-1] if rows else None
            return last.fetchall() if last is not None and last.description else []

    def count(self, table: str) -> int:
        return self.execute(f"SELECT COUNT(*) FROM {table}")[0][0]


def maintenance_urls() -> list[str]:
    if os.environ.get("DUNEWATCH_TEST_POSTGRESQL"):
        return [os.environ["DUNEWATCH_TEST_POSTGRESQL"]]
    return [f"postgresql://{user}@127.0.0.1:5432/postgres"
            for user in dict.fromkeys(("postgres", getpass.getuser()))]  # fmt: skip


@contextmanager
def postgresql_database() -> Iterator[str]:
    """A fresh, empty database's URL; dropped (connections and all) on leaving."""
    problems = []
    for url in maintenance_urls():
        try:
            admin = psycopg.connect(url, autocommit=True, connect_timeout=5)
            break
        except psycopg.OperationalError as error:
            problems.append(f"{url}: {str(error).strip()}")
    else:
        pytest.skip("no PostgreSQL server answers (" + "; ".join(problems) + ")")
    name = f"dunewatch_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            info = admin.info
            yield f"postgresql://{info.user}@{info.host}:{info.port}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def backend_of(name: str, folder: Path) -> Iterator[Backend]:
    if name == "sqlite":
        yield Backend(name, str(folder / "hq.db"), sqlite3.IntegrityError)
        return
    with postgresql_database() as url:
        yield Backend(name, url, psycopg.IntegrityError)
