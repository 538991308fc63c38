"""The PostgreSQL store's ingest write path: a group of IngestBatches as one statement per
table, inside the caller's transaction. The big tables (history points, fused and node
tracks) are COPYed in binary into a session's staging table, then moved with one
INSERT ... SELECT ... ON CONFLICT; the small ones go as one multi-row INSERT whose
columns are array parameters. (Measured: psycopg writes an array parameter of 20,000
floats element by element in Python; its binary COPY of the same rows is 20 times faster.)

The database decides what is new: the group's (node, seq) pairs go into
seen_batches with ON CONFLICT DO NOTHING, and only the batches whose pair it
took are written. A second writer holding the same pair waits on the primary
key until the first commits, then finds it taken: a batch is stored once
however many writers receive it. Every row a writer locks, it locks in key
order, so writers sharing tracks never deadlock.

What each table gets is hq/store/sql/batch_rows.py; statuses, positions and
alerts are reduced here the same way (the row that writing the batches one
after another would leave).
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from hq.store.records import IngestBatch, node_key
from hq.store.sql.batch_rows import fused_columns, node_keys, node_track_rows, point_columns
from hq.store.sql.reads import FUSED_COLUMNS, POINT_COLUMNS
from wire.messages import Alert, NodeStatus


def write_batches(conn: psycopg.Connection, batches: Sequence[IngestBatch]) -> list[bool]:
    """Per batch, whether it was new and is now written."""
    keys = node_keys(batches)
    if keys:  # a row per node before anything refers to it (a batch may beat its status)
        conn.execute(_NODES_SQL, _columns([(k, *k.partition("/")[::2]) for k in keys], 3))
    first: dict[tuple[str, int], int] = {}  # (node, seq) -> its first batch here
    for k, batch in enumerate(batches):
        if batch.seq is not None:
            first.setdefault((batch.node_key, batch.seq), k)
    claimed: set[tuple[str, int]] = set()
    if first:
        pairs = sorted(first)
        rows = [(key, seq, batches[first[key, seq]].received) for key, seq in pairs]
        claimed = {(key, seq) for key, seq in conn.execute(_SEEN_SQL, _columns(rows, 3))}
    fresh = [b.seq is None or (first[b.node_key, b.seq] == k and (b.node_key, b.seq) in claimed)
             for k, b in enumerate(batches)]  # fmt: skip
    new = [b for b, is_new in zip(batches, fresh, strict=True) if is_new]
    if new:
        _write_new(conn, new)
    return fresh


def _write_new(conn: psycopg.Connection, batches: Sequence[IngestBatch]) -> None:
    _execute(conn, _POSITION_SQL, _positions(batches), 4)
    _execute(conn, _NODE_STATUS_SQL, _statuses(batches), 6)
    node_tracks = node_track_rows(batches)
    if node_tracks:
        _stage(conn, "node_tracks", _NODE_TRACK_COLUMNS, node_tracks)
        conn.execute(_NODE_TRACK_SQL)
    fused = fused_columns(batches)
    if fused is not None:
        _stage(conn, "fused_tracks", FUSED_COLUMNS, zip(*fused, strict=True))
        conn.execute(_FUSED_SQL)
    points = point_columns(batches)
    if points is not None:
        _stage(conn, "track_points", POINT_COLUMNS, zip(*points, strict=True))
        conn.execute(_POINT_SQL)
    alerts = _alerts(batches)
    if alerts:
        conn.execute(_ALERT_SQL, _columns(alerts, 9))
    letters = [(d.received, d.topic, d.reason, d.payload, d.node_key, d.payload_size,
                d.payload_sha256) for b in batches for d in b.dead_letters]  # fmt: skip
    _execute(conn, _DEAD_LETTER_SQL, letters, 7)


def _stage(conn: psycopg.Connection, table: str, columns: Sequence[str], rows) -> None:
    """`rows` into the staging table of `table` (empty at the start of every transaction)."""
    with conn.cursor() as cursor, cursor.copy(
            f"COPY {staging_table(table)} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
    ) as copy:  # fmt: skip
        copy.set_types([_COPY_TYPES[_type(c)] for c in columns])
        for row in rows:
            copy.write_row(row)


def _execute(conn: psycopg.Connection, sql: str, rows: list[tuple], width: int) -> None:
    if rows:
        conn.execute(sql, _columns(rows, width))


def _columns(rows: list[tuple], width: int) -> list[list]:
    return [list(column) for column in zip(*rows, strict=True)] if rows else [[]] * width


# -- reductions: the row each key keeps -----------------------------------------------------


def _positions(batches: Sequence[IngestBatch]) -> list[tuple]:
    """(node, highest seq, the last batch's receipt, batches) per node, by node."""
    kept: dict[str, list] = {}
    for b in batches:
        if b.seq is not None:
            p = kept.setdefault(b.node_key, [b.node_key, b.seq, b.received, 0])
            p[1], p[2], p[3] = max(p[1], b.seq), b.received, p[3] + 1
    return [tuple(kept[key]) for key in sorted(kept)]


def _statuses(batches: Sequence[IngestBatch]) -> list[tuple]:
    newest: dict[str, NodeStatus] = {}
    for status in (s for b in batches for s in b.statuses):
        key = node_key(status.site, status.node)
        if key not in newest or status.time >= newest[key].time:
            newest[key] = status
    return [(key, s.site, s.node, s.state, s.time, s.model_dump_json())
            for key, s in sorted(newest.items())]  # fmt: skip


def _alerts(batches: Sequence[IngestBatch]) -> list[tuple]:
    """The newest version of each alert, with the time of its first version here (its
    first_time if it is new)."""
    newest: dict[str, Alert] = {}
    first_time: dict[str, float] = {}
    for alert in (a for b in batches for a in b.alerts):
        first_time.setdefault(alert.alert_id, alert.time)
        if alert.alert_id not in newest or alert.time >= newest[alert.alert_id].time:
            newest[alert.alert_id] = alert
    return [(a.alert_id, a.site, a.node, a.alert_type, a.severity, "open", first_time[key],
             a.time, a.model_dump_json()) for key, a in sorted(newest.items())]  # fmt: skip


# -- statements -----------------------------------------------------------------------------

_TYPES = {"global_id": "bigint", "track_id": "bigint", "seq": "bigint", "last_seq": "bigint",
          "batches": "bigint", "changed": "bigint", "payload": "bytea",
          "payload_size": "bigint"}  # fmt: skip
_TEXT = {"node_key", "site", "node", "state", "status", "target_class", "track", "covariance",
         "sources", "alert_id", "alert_type", "severity", "alert", "topic", "reason",
         "payload_sha256"}  # fmt: skip


def _type(column: str) -> str:
    return _TYPES.get(column) or ("text" if column in _TEXT else "double precision")


_COPY_TYPES = {"bigint": "int8", "double precision": "float8", "text": "text", "bytea": "bytea"}


def staging_table(table: str) -> str:
    return f"staged_{table}"


STAGED = ("node_tracks", "fused_tracks", "track_points")
# Made once per pooled connection (hq/store/postgresql/store.py): temporary, so each session
# has its own, and emptied by every commit.
STAGING_DDL = tuple(f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging_table(t)} "
                    f"(LIKE {t} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
                    for t in STAGED)  # fmt: skip


# The change cursor's mark of the rows a transaction writes (PgDb.change_mark in SQL).
CHANGE_MARK = "pg_current_xact_id()::text::bigint"


def _insert_sql(table: str, columns: Sequence[str], staged: bool = False,
                extra: Sequence[str] = ()) -> str:  # fmt: skip
    """INSERT of `columns` from array parameters, or from the staging table; `extra` columns
    are the change mark (`changed`)."""
    names = ", ".join([*columns, *extra])
    more = "".join(f", {CHANGE_MARK}" for _ in extra)
    if staged:
        source = f"SELECT {', '.join(columns)}{more} FROM {staging_table(table)}"
    else:
        arrays = ", ".join(f"%s::{_type(c)}[]" for c in columns)
        source = f"SELECT *{more} FROM unnest({arrays})"
    return f"INSERT INTO {table} ({names}) {source}"


def _upsert_sql(table: str, columns: Sequence[str], key: Sequence[str], guard: str | None,
                keep: Sequence[str] = (), staged: bool = False,
                extra: Sequence[str] = ()) -> str:  # fmt: skip
    """Insert, or update the stored row unless it is newer (by `guard`) than the incoming one:
    batches from an edge's backlog arrive after fresher ones and must not roll state back."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in (*columns, *extra)
                        if c not in (*key, *keep))  # fmt: skip
    sql = (f"{_insert_sql(table, columns, staged, extra)} ON CONFLICT ({', '.join(key)}) "
           f"DO UPDATE SET {updates}")  # fmt: skip
    if guard:
        sql += f" WHERE {table}.{guard} IS NULL OR excluded.{guard} >= {table}.{guard}"
    return sql


_NODES_SQL = _insert_sql("nodes", ("node_key", "site", "node")) + " ON CONFLICT DO NOTHING"
_SEEN_SQL = (_insert_sql("seen_batches", ("node_key", "seq", "received"))
             + " ON CONFLICT DO NOTHING RETURNING node_key, seq")  # fmt: skip
_POSITION_SQL = (
    _insert_sql("ingest_positions", ("node_key", "last_seq", "last_received", "batches"))
    + " ON CONFLICT (node_key) DO UPDATE SET "
    "last_seq = GREATEST(ingest_positions.last_seq, excluded.last_seq), "
    "last_received = excluded.last_received, "
    "batches = ingest_positions.batches + excluded.batches"
)  # fmt: skip
_NODE_STATUS_SQL = _upsert_sql("nodes", ("node_key", "site", "node", "state", "status_time",
                                         "status"), ["node_key"], guard="status_time")  # fmt: skip
_NODE_TRACK_COLUMNS = ("node_key", "track_id", "global_id", "time", "lat", "lon", "status",
                       "target_class", "track")  # fmt: skip
_NODE_TRACK_SQL = _upsert_sql("node_tracks", _NODE_TRACK_COLUMNS, ["node_key", "track_id"],
                              guard="time", staged=True)  # fmt: skip
_FUSED_SQL = _upsert_sql("fused_tracks", FUSED_COLUMNS, ["global_id"], guard="time",
                         staged=True, extra=["changed"])  # fmt: skip
_ALERT_SQL = _upsert_sql("alerts", ("alert_id", "site", "node", "alert_type", "severity",
                                    "state", "first_time", "time", "alert"), ["alert_id"],
                         guard="time", keep=("state", "first_time"), extra=["changed"])  # fmt: skip
# A point sent twice (fusion may re-emit a time) replaces itself rather than failing the batch.
_POINT_SQL = _upsert_sql("track_points", POINT_COLUMNS, ["global_id", "time"], guard=None,
                         staged=True)  # fmt: skip
_DEAD_LETTER_SQL = _insert_sql("dead_letters", ("received", "topic", "reason", "payload",
                                                "node_key", "payload_size",
                                                "payload_sha256"))  # fmt: skip
