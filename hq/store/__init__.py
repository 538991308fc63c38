"""HQ's store: the interface (interface.py) and its records (records.py); each backend a
folder beside them (sqlite/, postgresql/) over the SQL they share (sql/).

`open_store(location)` picks the backend: a `postgresql://` URL (libpq's form,
e.g. postgresql://hq@db-1/dunewatch), or SQLite, the default, as a file path
or a `sqlite://` URL (sqlite:///var/lib/dunewatch/hq.db is that absolute path).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from hq.store.interface import Store

POSTGRESQL_SCHEMES = ("postgresql", "postgres")


def open_store(location: str | Path, *, read_only: bool = False,
               synchronous: str = "FULL") -> Store:  # fmt: skip
    """The store at `location`, its schema migrated (unless read_only: then it must be
    current). `synchronous` is SQLite's (FULL or NORMAL); PostgreSQL commits durably."""
    text = str(location)
    scheme = urlsplit(text).scheme
    if scheme in POSTGRESQL_SCHEMES:
        from hq.store.postgresql import PostgresStore

        return PostgresStore(text, read_only=read_only)
    from hq.store.sqlite import SqliteStore

    return SqliteStore(sqlite_path(text), synchronous=synchronous, read_only=read_only)


def is_postgresql(location: str | Path) -> bool:
    return urlsplit(str(location)).scheme in POSTGRESQL_SCHEMES


def sqlite_path(location: str | Path) -> Path:
    """The file of a SQLite location: a path, or sqlite://PATH."""
    text = str(location)
    return Path(text.removeprefix("sqlite://") if text.startswith("sqlite://") else text)


def redacted(location: str | Path) -> str:
    """The location fit for a log line: a URL's password replaced by ***."""
    parts = urlsplit(str(location))
    if parts.password is None:
        return str(location)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
