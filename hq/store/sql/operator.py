"""What people decide, each change written with its audit row inside the caller's
transaction: API tokens, zones and the border, places, track labels, the alert workflow.

The store holds what sensors and fusion said beside what operators decided;
an action and the audit row that records it commit together or not at all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from hq.store.records import ApiToken, Area, LatLon, Place, TrackLabel
from hq.store.sql.audit import append_audit
from hq.store.sql.db import Db

BORDER = "border"  # the border line's name among the areas
TOKEN_COLUMNS = "token_id, name, role, created_at, expires_at, revoked_at"
_AREA_COLUMNS = "name, points, updated_by, updated_at"
_PLACE_COLUMNS = "name, lat, lon, radius_m, updated_by, updated_at"
_LABEL_COLUMNS = "global_id, affiliation, target_class, updated_by, updated_at"


# -- API tokens ------------------------------------------------------------------------------


def add_token(db: Db, token: ApiToken, secret_sha256: str, actor: str) -> None:
    db.lock("tokens")  # two creators of one name: the second sees the first's row
    rows = db.execute(f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE name = ?", [token.name])
    if any(ApiToken(*row).active(token.created_at) for row in rows.fetchall()):
        raise ValueError(f"an active token named {token.name!r} exists; revoke it first")
    db.execute(f"INSERT INTO api_tokens ({TOKEN_COLUMNS}, secret_sha256) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)",
               [token.token_id, token.name, token.role, token.created_at, token.expires_at,
                token.revoked_at, secret_sha256])  # fmt: skip
    append_audit(db, actor, "token.create", {"token_id": token.token_id, "name": token.name,
                                             "role": token.role,
                                             "expires_at": token.expires_at},
                 token.created_at)  # fmt: skip


def revoke_tokens(db: Db, name_or_id: str, actor: str, when: float) -> int:
    revoked = [row[0] for row in db.execute(
        "UPDATE api_tokens SET revoked_at = ? WHERE revoked_at IS NULL "
        "AND (name = ? OR token_id = ?) RETURNING token_id", [when, name_or_id, name_or_id])]
    if revoked:
        append_audit(db, actor, "token.revoke", {"name_or_id": name_or_id,
                                                 "token_ids": sorted(revoked)}, when)
    return len(revoked)


def tokens(db: Db) -> list[ApiToken]:
    rows = db.execute(f"SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY created_at, token_id")
    return [ApiToken(*row) for row in rows]


def token(db: Db, token_id: str) -> tuple[ApiToken, str] | None:
    row = db.execute(f"SELECT {TOKEN_COLUMNS}, secret_sha256 FROM api_tokens "
                     "WHERE token_id = ?", [token_id]).fetchone()  # fmt: skip
    return None if row is None else (ApiToken(*row[:-1]), row[-1])


# -- zones, the border and places ------------------------------------------------------------


def seed_geography(db: Db, border: Sequence[LatLon], zones: dict[str, Sequence[LatLon]],
                   places: Sequence[Place], when: float) -> None:  # fmt: skip
    """The configured border, zones and places, unless an earlier start stored them: after
    that the store is the truth, so an admin's edit survives a restart."""
    if db.execute("SELECT COUNT(*) FROM areas").fetchone()[0] == 0:
        db.executemany(f"INSERT INTO areas (kind, {_AREA_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                       [_area_row("border", BORDER, border, "config", when)]
                       + [_area_row("zone", name, points, "config", when)
                          for name, points in zones.items()])  # fmt: skip
    if db.execute("SELECT COUNT(*) FROM places").fetchone()[0] == 0:
        db.executemany(f"INSERT INTO places ({_PLACE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
                       [_place_row(p) for p in places])  # fmt: skip


def areas(db: Db, kind: str, name: str | None = None) -> list[Area]:
    sql, params = f"SELECT {_AREA_COLUMNS} FROM areas WHERE kind = ?", [kind]
    if name is not None:
        sql, params = sql + " AND name = ?", [kind, name]
    rows = db.execute(sql + " ORDER BY name", params)
    return [Area(name, tuple(tuple(p) for p in json.loads(points)), who, when)
            for name, points, who, when in rows]  # fmt: skip


def put_zone(db: Db, name: str, points: Sequence[LatLon], who: str, when: float,
             create: bool) -> Area | None:  # fmt: skip
    """Create (create=True; None if the name is taken) or replace (None if absent)."""
    if name == BORDER:
        return None
    db.lock("areas")
    exists = db.execute("SELECT 1 FROM areas WHERE name = ? AND kind = 'zone'",
                        [name]).fetchone() is not None  # fmt: skip
    if exists == create:
        return None
    _upsert_area(db, "zone", name, points, who, when)
    append_audit(db, who, "zone.create" if create else "zone.update",
                 {"name": name, "points": _points(points)}, when)  # fmt: skip
    return Area(name, tuple(map(tuple, points)), who, when)


def put_border(db: Db, points: Sequence[LatLon], who: str, when: float) -> Area:
    _upsert_area(db, "border", BORDER, points, who, when)
    append_audit(db, who, "border.update", {"points": _points(points)}, when)
    return Area(BORDER, tuple(map(tuple, points)), who, when)


def places(db: Db) -> list[Place]:
    return [Place(*row) for row in db.execute(f"SELECT {_PLACE_COLUMNS} FROM places "
                                              "ORDER BY name")]  # fmt: skip


def put_place(db: Db, place: Place) -> Place:
    """Create or replace a place by name."""
    db.execute(f"INSERT INTO places ({_PLACE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?) "
               "ON CONFLICT (name) DO UPDATE SET lat = excluded.lat, lon = excluded.lon, "
               "radius_m = excluded.radius_m, updated_by = excluded.updated_by, "
               "updated_at = excluded.updated_at", _place_row(place))  # fmt: skip
    append_audit(db, place.updated_by, "place.put", {
        "name": place.name, "lat": place.lat, "lon": place.lon, "radius_m": place.radius_m,
    }, place.updated_at)  # fmt: skip
    return place


def _upsert_area(db: Db, kind: str, name: str, points, who: str, when: float) -> None:
    db.execute(f"INSERT INTO areas (kind, {_AREA_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, "
               "points = excluded.points, updated_by = excluded.updated_by, "
               "updated_at = excluded.updated_at",
               _area_row(kind, name, points, who, when))  # fmt: skip


def _points(points: Sequence[LatLon]) -> list[list[float]]:
    return [[float(lat), float(lon)] for lat, lon in points]


def _area_row(kind: str, name: str, points, who: str, when: float) -> tuple:
    return (kind, name, json.dumps(_points(points)), who, when)


def _place_row(p: Place) -> tuple:
    return (p.name, p.lat, p.lon, p.radius_m, p.updated_by, p.updated_at)


# -- track labels ----------------------------------------------------------------------------


def label_track(db: Db, global_id: int, affiliation: str | None, target_class: str | None,
                who: str, when: float) -> TrackLabel | None:  # fmt: skip
    """Set what is given (None keeps the label's value); None if there is no such track."""
    fused = db.execute("SELECT target_class FROM fused_tracks WHERE global_id = ?",
                       [global_id]).fetchone()  # fmt: skip
    if fused is None:
        return None
    db.lock("labels")
    before = track_label(db, global_id)
    label = TrackLabel(global_id,
                       affiliation=affiliation or (before.affiliation if before else None),
                       target_class=target_class or (before.target_class if before else None),
                       updated_by=who, updated_at=when)  # fmt: skip
    db.execute(f"INSERT INTO track_labels ({_LABEL_COLUMNS}) VALUES (?, ?, ?, ?, ?) "
               "ON CONFLICT (global_id) DO UPDATE SET affiliation = excluded.affiliation, "
               "target_class = excluded.target_class, updated_by = excluded.updated_by, "
               "updated_at = excluded.updated_at",
               [global_id, label.affiliation, label.target_class, who, when])  # fmt: skip
    append_audit(db, who, "track.label", {
        "global_id": global_id, "affiliation": label.affiliation,
        "target_class": label.target_class, "fused_class": fused[0],
        "previous": None if before is None else {"affiliation": before.affiliation,
                                                 "target_class": before.target_class},
    }, when)  # fmt: skip
    return label


def track_label(db: Db, global_id: int) -> TrackLabel | None:
    row = db.execute(f"SELECT {_LABEL_COLUMNS} FROM track_labels WHERE global_id = ?",
                     [global_id]).fetchone()  # fmt: skip
    return None if row is None else TrackLabel(*row)


def track_labels(db: Db) -> dict[int, TrackLabel]:
    return {row[0]: TrackLabel(*row) for row in db.execute(
        f"SELECT {_LABEL_COLUMNS} FROM track_labels")}  # fmt: skip


# -- the alert workflow: open -> acknowledged (-> assigned) -> resolved -----------------------


def acknowledge_alert(db: Db, alert_id: str, who: str, when: float) -> bool:
    changed = db.execute("UPDATE alerts SET state = 'acknowledged', acknowledged_by = ?, "
                         "acknowledged_at = ?, changed = ? WHERE alert_id = ? AND state = 'open'",
                         [who, when, db.change_mark(), alert_id]).rowcount  # fmt: skip
    if changed:
        append_audit(db, who, "alert.acknowledge", {"alert_id": alert_id}, when)
    return changed > 0


def assign_alert(db: Db, alert_id: str, assignee: str, who: str, when: float) -> bool:
    """Give an unresolved alert to `assignee` (acknowledging it if open); False if there
    is no such alert or it is resolved."""
    row = db.execute("SELECT state, assigned_to FROM alerts WHERE alert_id = ?",
                     [alert_id]).fetchone()  # fmt: skip
    if row is None or row[0] == "resolved":
        return False
    acknowledge_alert(db, alert_id, who, when)
    db.execute("UPDATE alerts SET assigned_to = ?, assigned_by = ?, assigned_at = ?, "
               "changed = ? WHERE alert_id = ?",
               [assignee, who, when, db.change_mark(), alert_id])  # fmt: skip
    append_audit(db, who, "alert.assign", {"alert_id": alert_id, "assignee": assignee,
                                           "previous": row[1]}, when)  # fmt: skip
    return True


def resolve_alert(db: Db, alert_id: str, note: str, who: str, when: float) -> bool:
    """Resolve an alert (acknowledging it first if open); False if there is no such alert
    or it was resolved before."""
    acknowledge_alert(db, alert_id, who, when)
    changed = db.execute("UPDATE alerts SET state = 'resolved', resolved_by = ?, "
                         "resolved_at = ?, resolution_note = ?, changed = ? "
                         "WHERE alert_id = ? AND state = 'acknowledged'",
                         [who, when, note, db.change_mark(), alert_id]).rowcount  # fmt: skip
    if changed:
        append_audit(db, who, "alert.resolve", {"alert_id": alert_id, "note": note}, when)
    return changed > 0
