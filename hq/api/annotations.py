"""What operators and admins add to the fused picture: zones, the border line, track labels
(affiliation and class set by an operator) and alert resolutions.

Kept in the API's own SQLite file beside the tokens, not in the track store:
the store holds what sensors and fusion said, this holds what people decided.
Every change here is also written to the store's audit log by the router
that makes it, with who and when.

Zones and the border are seeded once from configs/hq.toml; after that the
table is the truth, so an admin's edit survives a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlite_utils

LatLon = tuple[float, float]
BORDER = "border"


@dataclass(frozen=True)
class Area:
    name: str
    points: tuple[LatLon, ...]  # (lat, lon) degrees, WGS84
    updated_by: str
    updated_at: float


@dataclass(frozen=True)
class TrackLabel:
    global_id: int
    affiliation: str | None  # None: unknown, the default for every detected object
    target_class: str | None  # None: the class fusion gives
    updated_by: str
    updated_at: float


@dataclass(frozen=True)
class Resolution:
    alert_id: str
    resolved_by: str
    resolved_at: float
    note: str


class Annotations:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db = sqlite_utils.Database(conn)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA busy_timeout = 5000")
        # kind: "zone" or "border"; points: JSON [[lat, lon], ...]
        self._db["areas"].create({"name": str, "kind": str, "points": str, "updated_by": str,
                                  "updated_at": float}, pk="name",
                                 not_null={"kind", "points", "updated_by", "updated_at"},
                                 if_not_exists=True)  # fmt: skip
        self._db["track_labels"].create({"global_id": int, "affiliation": str,
                                         "target_class": str, "updated_by": str,
                                         "updated_at": float}, pk="global_id",
                                        if_not_exists=True)  # fmt: skip
        self._db["alert_resolutions"].create({"alert_id": str, "resolved_by": str,
                                              "resolved_at": float, "note": str},
                                             pk="alert_id", if_not_exists=True)  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._db.conn.close()

    # -- zones and the border -----------------------------------------------------------------

    def seed(self, border: list[LatLon], zones: dict[str, list[LatLon]], now: float) -> None:
        """The configured border and zones, unless an earlier run already stored areas."""
        with self._lock:
            if self._db["areas"].count:
                return
            rows = [_area_row(BORDER, "border", border, "config", now)]
            rows += [_area_row(name, "zone", points, "config", now)
                     for name, points in zones.items()]  # fmt: skip
            self._db["areas"].insert_all(rows)

    def border(self) -> Area | None:
        areas = self._areas("kind = 'border'", [])
        return areas[0] if areas else None

    def zones(self) -> list[Area]:
        return self._areas("kind = 'zone'", [])

    def zone(self, name: str) -> Area | None:
        areas = self._areas("kind = 'zone' AND name = ?", [name])
        return areas[0] if areas else None

    def put_border(self, points: list[LatLon], who: str, when: float) -> Area:
        with self._lock:
            self._db["areas"].upsert(_area_row(BORDER, "border", points, who, when), pk="name")
        return Area(BORDER, tuple(map(tuple, points)), who, when)

    def put_zone(self, name: str, points: list[LatLon], who: str, when: float,
                 create: bool) -> Area | None:  # fmt: skip
        """Create (create=True; None if the name is taken) or replace (None if absent)."""
        if name == BORDER:
            return None
        with self._lock:
            exists = self._db.execute("SELECT 1 FROM areas WHERE name = ? AND kind = 'zone'",
                                      [name]).fetchone() is not None  # fmt: skip
            if exists == create:
                return None
            self._db["areas"].upsert(_area_row(name, "zone", points, who, when), pk="name")
        return Area(name, tuple(map(tuple, points)), who, when)

    def _areas(self, where: str, args: list) -> list[Area]:
        with self._lock:
            rows = list(self._db["areas"].rows_where(where, args, order_by="name"))
        return [Area(r["name"], tuple(tuple(p) for p in json.loads(r["points"])),
                     r["updated_by"], r["updated_at"]) for r in rows]  # fmt: skip

    # -- track labels ---------------------------------------------------------------------------

    def set_label(self, label: TrackLabel) -> None:
        with self._lock:
            self._db["track_labels"].upsert(vars(label), pk="global_id")

    def labels(self) -> dict[int, TrackLabel]:
        with self._lock:
            rows = list(self._db["track_labels"].rows)
        return {r["global_id"]: TrackLabel(**r) for r in rows}

    def label(self, global_id: int) -> TrackLabel | None:
        with self._lock:
            rows = list(self._db["track_labels"].rows_where("global_id = ?", [global_id]))
        return TrackLabel(**rows[0]) if rows else None

    # -- alert resolutions ----------------------------------------------------------------------

    def resolve(self, resolution: Resolution) -> bool:
        """Record it; False if the alert was resolved before."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT INTO alert_resolutions (alert_id, resolved_by, resolved_at, note) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (alert_id) DO NOTHING",
                [resolution.alert_id, resolution.resolved_by, resolution.resolved_at,
                 resolution.note],
            )  # fmt: skip
            return cursor.rowcount > 0

    def resolutions(self, alert_ids: list[str]) -> dict[str, Resolution]:
        if not alert_ids:
            return {}
        # json_each: one parameter however many ids (SQLite caps the number of parameters).
        with self._lock:
            rows = list(self._db["alert_resolutions"].rows_where(
                "alert_id IN (SELECT value FROM json_each(?))", [json.dumps(alert_ids)]))
        return {r["alert_id"]: Resolution(**r) for r in rows}

    def resolved_ids(self) -> set[str]:
        with self._lock:
            return {r[0] for r in self._db.execute("SELECT alert_id FROM alert_resolutions")}


def _area_row(name: str, kind: str, points: list[LatLon], who: str, when: float) -> dict:
    return {"name": name, "kind": kind, "points": json.dumps([list(p) for p in points]),
            "updated_by": who, "updated_at": when}  # fmt: skip
