"""The records HQ's store takes and gives, as rows and as columns.

Ingest hands over fused tracks and history points as columns (`FusedTracks`,
`HistoryPoints`): thousands of rows a second, each a row of arrays rather
than an object. Both are sequences of the row records, so a list of
`FusedTrack` or `HistoryPoint` works wherever they do.
"""


from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Literal

import numpy as np

from wire.messages import Alert, NodeStatus, TargetClass, Track, TrackStatus, VehicleTelemetry

AlertState = Literal["open", "acknowledged", "resolved"]
LatLon = tuple[float, float]


def node_key(site: str, node: str) -> str:
    return f"{site}/{node}"


@dataclass(frozen=True)
class BBox:
    """WGS84 degrees, edges included. A box across the antimeridian is refused."""

    south: float
    west: float
    north: float
    east: float

    def __post_init__(self):
        if not (-90 <= self.south <= self.north <= 90 and -180 <= self.west <= self.east <= 180):
            raise ValueError(f"{self} is not a box with south <= north and west <= east "
                             "(boxes across the antimeridian are not supported)")  # fmt: skip


@dataclass(frozen=True)
class FusedTrack:
    """A fused (global) track's current state, in the fusion's ENU frame."""

    global_id: int
    time: float  # UTC s of the state
    lat: float
    lon: float
    alt: float
    state: tuple[float, float, float, float]  # [e, n, ve, vn], m and m/s
    covariance: tuple[float, ...]  # 4x4 row-major over the state, m² and (m/s)²
    target_class: TargetClass
    status: TrackStatus
    quality: float
    sources: tuple[str, ...] = ()  # contributing node tracks, "site/node:track_id"

    def __post_init__(self):
        if len(self.state) != 4 or len(self.covariance) != 16:
            raise ValueError("a fused track needs a 4-state and a 4x4 (16-value) covariance")


@dataclass(frozen=True)
class HistoryPoint:
    global_id: int
    time: float
    lat: float
    lon: float
    e: float
    n: float
    ve: float
    vn: float
    var_e: float  # position covariance summary, m²: enough to draw the ellipse
    var_n: float
    cov_en: float

    @classmethod
    def of(cls, track: FusedTrack) -> HistoryPoint:
        c = track.covariance
        return cls(track.global_id, track.time, track.lat, track.lon, *track.state,
                   var_e=c[0], var_n=c[5], cov_en=c[1])  # fmt: skip


class _Columns(Sequence):
    """A table of equal-length columns that reads as a sequence of `_record` rows.

    Each column is a numpy array (n, ...) or a tuple of n values; `_record(*row)`
    makes one row's record, with multi-value cells (a state, a covariance) as tuples.
    """

    _record: type

    def __len__(self) -> int:
        return len(getattr(self, fields(self)[0].name))

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        return self._record(*(_cell(getattr(self, f.name)[k]) for f in fields(self)))

    def __iter__(self):
        # Column by column (one tolist() each) rather than row by row through __getitem__.
        return map(self._record, *(_cells(getattr(self, f.name)) for f in fields(self)))

    def take(self, which: np.ndarray):
        """The rows at indices `which`, as a table of the same kind."""
        return type(self)(*(_take(getattr(self, f.name), which) for f in fields(self)))

    @classmethod
    def concat(cls, tables: Sequence):
        tables = [t for t in tables if len(t)]
        if len(tables) <= 1:
            return tables[0] if tables else cls.of([])
        return cls(*(_concat([getattr(t, f.name) for t in tables]) for f in fields(cls)))


def _cell(value):
    if isinstance(value, np.ndarray):
        return tuple(value.ravel().tolist())
    return value.item() if isinstance(value, np.generic) else value


def _cells(column) -> list:
    if isinstance(column, np.ndarray):
        if column.ndim == 1:
            return column.tolist()
        # The row width spelled out: reshape(0, -1) cannot infer it for an empty column.
        width = int(np.prod(column.shape[1:]))
        return list(map(tuple, column.reshape(len(column), width).tolist()))
    return list(column)


def _take(column, which: np.ndarray):
    if isinstance(column, np.ndarray):
        return column[which]
    return tuple(column[i] for i in which.tolist())


def _concat(columns: list):
    if isinstance(columns[0], np.ndarray):
        return np.concatenate(columns)
    return tuple(value for column in columns for value in column)


@dataclass(frozen=True, eq=False)
class FusedTracks(_Columns):
    """`FusedTrack`s as columns; `FusedTracks.of(list)` turns records into columns."""

    global_id: np.ndarray  # (n,) int64
    time: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    alt: np.ndarray
    state: np.ndarray  # (n, 4)
    covariance: np.ndarray  # (n, 16) row-major 4x4
    target_class: tuple[TargetClass, ...]
    status: tuple[TrackStatus, ...]
    quality: np.ndarray
    sources: tuple[tuple[str, ...], ...]
    _record = FusedTrack

    @classmethod
    def of(cls, tracks: Iterable[FusedTrack]) -> FusedTracks:
        if isinstance(tracks, FusedTracks):
            return tracks
        tracks = list(tracks)
        return cls(
            np.array([t.global_id for t in tracks], np.int64),
            *(np.array([getattr(t, name) for t in tracks], float)
              for name in ("time", "lat", "lon", "alt")),
            np.array([t.state for t in tracks], float).reshape(-1, 4),
            np.array([t.covariance for t in tracks], float).reshape(-1, 16),
            tuple(t.target_class for t in tracks), tuple(t.status for t in tracks),
            np.array([t.quality for t in tracks], float), tuple(t.sources for t in tracks),
        )  # fmt: skip


@dataclass(frozen=True, eq=False)
class HistoryPoints(_Columns):
    """`HistoryPoint`s as columns, each (n,); `HistoryPoints.of(list)` turns records into
    columns."""

    global_id: np.ndarray
    time: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    e: np.ndarray
    n: np.ndarray
    ve: np.ndarray
    vn: np.ndarray
    var_e: np.ndarray
    var_n: np.ndarray
    cov_en: np.ndarray
    _record = HistoryPoint

    @classmethod
    def of(cls, points: Iterable[HistoryPoint]) -> HistoryPoints:
        if isinstance(points, HistoryPoints):
            return points
        points = list(points)
        return cls(np.array([p.global_id for p in points], np.int64),
                   *(np.array([getattr(p, f.name) for p in points], float)
                     for f in fields(cls)[1:]))  # fmt: skip


@dataclass(frozen=True)
class NodeTrack:
    """A node's own track (latest state) and the global track fusion put it in."""

    node_key: str
    track: Track
    global_id: int | None = None


@dataclass(frozen=True, eq=False)
class NodeTracks(Sequence):
    """One node's tracks as columns of plain values, each track as its wire JSON; reads
    as a sequence of `NodeTrack` (parsing the JSON back on access).

    Ingest holds a group's batches until their commit: as pydantic objects, tens of
    thousands of tracks would keep the garbage collector scanning them all the while.
    """

    node_key: str
    track_id: list[int]
    global_id: list[int | None]
    time: list[float]
    lat: list[float]
    lon: list[float]
    status: list[str]
    target_class: list[str]
    track_json: list[str]

    @classmethod
    def of(cls, node_key: str, tracks: Sequence[Track],
           global_ids: Sequence[int | None]) -> NodeTracks:  # fmt: skip
        to_json = Track.__pydantic_serializer__.to_json
        return cls(node_key, [t.track_id for t in tracks], list(global_ids),
                   [t.time for t in tracks], [t.lat for t in tracks], [t.lon for t in tracks],
                   [str(t.status) for t in tracks], [str(t.target_class) for t in tracks],
                   [to_json(t).decode() for t in tracks])  # fmt: skip

    def __len__(self) -> int:
        return len(self.track_id)

    def __getitem__(self, k):
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        return NodeTrack(self.node_key, Track.model_validate_json(self.track_json[k]),
                         self.global_id[k])  # fmt: skip


@dataclass(frozen=True)
class DeadLetter:
    received: float
    topic: str
    reason: str
    payload: bytes
    node_key: str | None = None
    letter_id: int | None = None  # set when read back
    # The whole message's size and SHA-256 (hex): `payload` may be only its first bytes.
    payload_size: int | None = None
    payload_sha256: str | None = None


@dataclass(frozen=True)
class IngestBatch:
    """Everything one ingested message (or one alert evaluation) changes, written together.

    `node_key` and `seq` name a TrackBatch; they are recorded as seen in the
    same transaction, and a batch whose (node, seq) is already seen writes nothing.
    """

    received: float  # UTC s at HQ
    node_key: str | None = None
    seq: int | None = None
    statuses: Sequence[NodeStatus] = ()
    node_tracks: Sequence[NodeTrack] = ()
    fused_tracks: Sequence[FusedTrack] = ()
    history: Sequence[HistoryPoint] = ()
    alerts: Sequence[Alert] = ()
    dead_letters: Sequence[DeadLetter] = ()
    telemetry: Sequence[VehicleTelemetry] = ()  # our own drones

    def __post_init__(self):
        if (self.node_key is None) != (self.seq is None):
            raise ValueError("node_key and seq come together (a TrackBatch) or not at all")


@dataclass(frozen=True)
class NodeRecord:
    node_key: str
    status: NodeStatus | None  # the newest status message, if any arrived
    last_seq: int | None
    last_batch_received: float | None
    batches: int


@dataclass(frozen=True)
class AlertRecord:
    """An alert as ingest last wrote it, and what operators did with it."""

    alert: Alert  # the newest version of the alert
    state: AlertState
    first_time: float
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    assigned_to: str | None = None  # who is to deal with it
    assigned_by: str | None = None
    assigned_at: float | None = None
    resolved_by: str | None = None
    resolved_at: float | None = None
    resolution_note: str | None = None


# -- what people decided: operator state, kept beside what sensors and fusion said ----------


@dataclass(frozen=True)
class Area:
    """A zone (a polygon) or the border line (a polyline), WGS84 degrees."""

    name: str
    points: tuple[LatLon, ...]  # (lat, lon)
    updated_by: str
    updated_at: float


@dataclass(frozen=True)
class Place:
    """A post or a settlement: help is near within its radius (no distress alert there)."""

    name: str
    lat: float
    lon: float
    radius_m: float
    updated_by: str
    updated_at: float


@dataclass(frozen=True)
class TrackLabel:
    """What an operator set on a fused track."""

    global_id: int
    affiliation: str | None  # None: unknown, the default for every detected object
    target_class: str | None  # None: the class fusion gives
    updated_by: str
    updated_at: float


@dataclass(frozen=True)
class ApiToken:
    """An API bearer token's record; its secret is kept only as a sha256 beside it."""

    token_id: str
    name: str  # who acts: the name written to the audit log
    role: str  # viewer, operator or admin
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


@dataclass(frozen=True, eq=False)
class StoreChanges:
    """What changed after a cursor: the current state of every fused track and alert written
    since, and the cursor to ask from next time. A row may come again in the next answer
    (a follower keeps the newest by time), never be missed."""

    cursor: int
    tracks: FusedTracks
    alerts: list[AlertRecord]


@dataclass(frozen=True)
class PurgeResult:
    history_points: int
    fused_tracks: int
    node_tracks: int
    seen_batches: int
    dead_letters: int
    audit_rows: int
    audit_cut_seq: int | None = None
    drone_points: int = 0  # our drones' telemetry history
    drones: int = 0  # drones not heard from within the retention


@dataclass(frozen=True)
class StoreStats:
    rows: dict[str, int]
    file_bytes: int  # database plus its WAL
    pages: dict[str, int] = field(default_factory=dict)  # page_size, page_count, freelist_count
