"""The PostgreSQL store's schema, as migrations (hq/store/sql/migrations.py) recorded in
`schema_migrations`, and the locks that make processes take turns.

The tables are the SQLite backend's, column for column, so that the shared SQL
reads both; times are UTC seconds as double precision. No PostGIS: current
tracks in a box and history in a box and an hour are answered from plain
B-tree indexes on (lat, lon) and on time (bench: python -m bench hq_history).
"""

from __future__ import annotations

import zlib

import psycopg

from hq.store.sql.migrations import Migration, pending

TABLES = ("nodes", "ingest_positions", "seen_batches", "node_tracks", "fused_tracks",
          "track_points", "alerts", "dead_letters", "audit_log", "api_tokens", "areas",
          "places", "track_labels", "drones", "drone_points")  # fmt: skip


def lock_key(name: str) -> int:
    """The advisory lock of `name` (a 32-bit number, the same in every process)."""
    return zlib.crc32(f"dunewatch.{name}".encode())


_F = "double precision"


def _numbers(*columns: str) -> str:
    """NOT NULL float columns that refuse NaN too, as SQLite does (it stores NaN as NULL):
    a track or point with a NaN fails its batch in either backend."""
    return ", ".join(f"{c} {_F} NOT NULL CHECK ({c} <> 'NaN')" for c in columns)

_AUDIT_REFUSE = """
CREATE FUNCTION audit_log_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'integrity_constraint_violation';
END $$"""
# The six-month floor uses the server's clock, so a wrong `now` passed to purge cannot get
# round it. The hash chain is what shows deliberate tampering (a superuser can drop these).
_AUDIT_KEEP = """
CREATE FUNCTION audit_log_keep_six_months() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.time > extract(epoch FROM clock_timestamp()) - 183 * 86400 THEN
        RAISE EXCEPTION 'audit rows younger than 183 days are kept'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN OLD;
END $$"""

MIGRATIONS = (
    Migration(1, "tracks, history, nodes, alerts, dead letters, the audit log, operator "
                 "state and the change cursor", (
        "CREATE TABLE nodes (node_key text PRIMARY KEY, site text NOT NULL, node text NOT NULL, "
        f"state text, status_time {_F}, status text)",
        "CREATE TABLE ingest_positions (node_key text PRIMARY KEY REFERENCES nodes, "
        f"last_seq bigint, last_received {_F}, batches bigint)",
        # The (node, seq) primary key is what de-duplicates, across every writer.
        "CREATE TABLE seen_batches (node_key text NOT NULL REFERENCES nodes, seq bigint NOT NULL, "
        f"received {_F} NOT NULL, PRIMARY KEY (node_key, seq))",
        "CREATE INDEX seen_batches_received ON seen_batches (received)",
        "CREATE TABLE node_tracks (node_key text NOT NULL REFERENCES nodes, "
        f"track_id bigint NOT NULL, global_id bigint, time {_F} NOT NULL, lat {_F}, lon {_F}, "
        "status text, target_class text, track text NOT NULL, PRIMARY KEY (node_key, track_id))",
        "CREATE INDEX node_tracks_global_id ON node_tracks (global_id)",
        "CREATE TABLE fused_tracks (global_id bigint PRIMARY KEY, "
        + _numbers("time", "lat", "lon", "alt", "e", "n", "ve", "vn")
        + ", covariance text NOT NULL, target_class text NOT NULL, status text NOT NULL, "
        f"quality {_F} NOT NULL, sources text NOT NULL, changed bigint NOT NULL DEFAULT 0)",
        "CREATE INDEX fused_tracks_lat_lon ON fused_tracks (lat, lon)",
        "CREATE INDEX fused_tracks_changed ON fused_tracks (changed)",
        "CREATE TABLE track_points (global_id bigint NOT NULL, "
        + _numbers("time", "lat", "lon", "e", "n", "ve", "vn", "var_e", "var_n", "cov_en")
        + ", PRIMARY KEY (global_id, time))",
        # History in a box and a window: the box is tested inside the index, so only the
        # points in it are read from the table (retention's time cut uses it as well).
        "CREATE INDEX track_points_time_place ON track_points (time, lat, lon)",
        "CREATE TABLE alerts (alert_id text PRIMARY KEY, site text, node text, alert_type text, "
        f"severity text, state text NOT NULL, first_time {_F}, time {_F}, "
        f"acknowledged_by text, acknowledged_at {_F}, alert text NOT NULL, "
        f"assigned_to text, assigned_by text, assigned_at {_F}, resolved_by text, "
        f"resolved_at {_F}, resolution_note text, changed bigint NOT NULL DEFAULT 0)",
        "CREATE INDEX alerts_state_time ON alerts (state, time)",
        "CREATE INDEX alerts_time ON alerts (time)",
        "CREATE INDEX alerts_changed ON alerts (changed)",
        "CREATE TABLE dead_letters (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        f"received {_F} NOT NULL, node_key text, topic text NOT NULL, reason text NOT NULL, "
        "payload bytea)",
        "CREATE INDEX dead_letters_received ON dead_letters (received)",
        f"CREATE TABLE audit_log (seq bigint PRIMARY KEY, time {_F} NOT NULL, "
        "actor text NOT NULL, action text NOT NULL, details text NOT NULL, "
        "prev_hash text NOT NULL, hash text NOT NULL)",
        _AUDIT_REFUSE,
        _AUDIT_KEEP,
        "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change()",
        "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change()",
        "CREATE TRIGGER audit_log_keep_six_months BEFORE DELETE ON audit_log "
        "FOR EACH ROW EXECUTE FUNCTION audit_log_keep_six_months()",
        "CREATE TABLE api_tokens (token_id text PRIMARY KEY, name text NOT NULL, "
        f"role text NOT NULL, created_at {_F} NOT NULL, expires_at {_F}, revoked_at {_F}, "
        "secret_sha256 text NOT NULL)",
        "CREATE INDEX api_tokens_name ON api_tokens (name)",
        "CREATE TABLE areas (name text PRIMARY KEY, "
        "kind text NOT NULL CHECK (kind IN ('zone', 'border')), points text NOT NULL, "
        f"updated_by text NOT NULL, updated_at {_F} NOT NULL)",
        f"CREATE TABLE places (name text PRIMARY KEY, lat {_F} NOT NULL, lon {_F} NOT NULL, "
        f"radius_m {_F} NOT NULL, updated_by text NOT NULL, updated_at {_F} NOT NULL)",
        "CREATE TABLE track_labels (global_id bigint PRIMARY KEY, affiliation text, "
        f"target_class text, updated_by text NOT NULL, updated_at {_F} NOT NULL)",
    )),  # fmt: skip
    Migration(2, "our own drones: the newest telemetry of each, and its history", (
        "CREATE TABLE drones (node_key text NOT NULL, sysid integer NOT NULL, "
        + _numbers("time", "lat", "lon") + ", telemetry text NOT NULL, "
        "PRIMARY KEY (node_key, sysid))",
        "CREATE TABLE drone_points (node_key text NOT NULL, sysid integer NOT NULL, "
        + _numbers("time", "lat", "lon", "alt") + ", telemetry text NOT NULL, "
        "PRIMARY KEY (node_key, sysid, time))",
        "CREATE INDEX drone_points_time ON drone_points (time)",
    )),  # fmt: skip
    Migration(3, "dead letters keep the first bytes of a payload, with its size and hash", (
        "ALTER TABLE dead_letters ADD COLUMN payload_size bigint",
        "ALTER TABLE dead_letters ADD COLUMN payload_sha256 text",
    )),
)


def schema_version(conn: psycopg.Connection) -> int:
    exists = conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0]
    if exists is None:
        return 0
    return conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]


def migrate(conn: psycopg.Connection, where: str) -> None:
    """Apply what the database lacks, each migration in its own transaction; processes
    starting together take turns on an advisory lock (an autocommit connection)."""
    conn.execute("SELECT pg_advisory_lock(%s)", [lock_key("migrations")])
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                     "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
        for migration in pending(schema_version(conn), MIGRATIONS, where):
            with conn.transaction():
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                             [migration.version, migration.name])  # fmt: skip
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [lock_key("migrations")])
