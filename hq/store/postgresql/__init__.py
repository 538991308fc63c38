"""HQ's store on PostgreSQL (psycopg 3 and its pool): `PostgresStore`, for HQ on several
machines (hq.toml: store = "postgresql://...")."""

from hq.store.postgresql.store import PostgresStore

__all__ = ["PostgresStore"]
