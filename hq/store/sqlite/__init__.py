"""HQ's store on SQLite, the embedded default: `SqliteStore`."""

from hq.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
