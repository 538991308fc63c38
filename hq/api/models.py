"""The API's request and response models: these ARE the schema that /openapi.json publishes.

Units follow the project's conventions: UTC seconds since the epoch, WGS84
degrees, metres and m/s in HQ's ENU frame (east, north), covariances in m²
and (m/s)². Positions are objects with named `lat` and `lon` wherever order
could be mistaken; only GeoJSON (hq/api/geojson.py) uses its [lon, lat] arrays.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from hq.affiliation import Affiliation
from hq.api.tokens import Role
from hq.audit import AuditEntry
from hq.store.records import (
    AlertRecord,
    Area,
    FusedTrack,
    HistoryPoint,
    NodeRecord,
    NodeTrack,
    TrackLabel,
)
from wire.geo import compass_course
from wire.messages import (
    DroneLink,
    Latitude,
    Longitude,
    TargetClass,
    Track,
    TrackStatus,
    VehicleTelemetry,
)

Matrix2 = Annotated[list[Annotated[list[float], Field(min_length=2, max_length=2)]],
                    Field(min_length=2, max_length=2)]  # fmt: skip
AlertStateOut = Literal["open", "acknowledged", "resolved"]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True)


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ErrorOut(_Out):
    detail: str = Field(description="what was wrong, in words")
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="each invalid field (validation errors only)")


# -- tracks ----------------------------------------------------------------------------------


class LabelOut(_Out):
    affiliation: Affiliation | None
    target_class: TargetClass | None
    updated_by: str
    updated_at: float


class TrackOut(_Out):
    global_id: int
    time: float = Field(description="UTC s of the state")
    lat: Latitude
    lon: Longitude
    alt: float = Field(description="m above the WGS84 ellipsoid")
    position_enu: tuple[float, float] = Field(description="m east and north of HQ's origin")
    velocity_enu: tuple[float, float] = Field(description="m/s east and north")
    speed: float = Field(ge=0, description="m/s over ground")
    course: float = Field(ge=0, lt=360, description="degrees clockwise from true north")
    position_covariance: Matrix2 = Field(description="ENU m²")
    velocity_covariance: Matrix2 = Field(description="ENU (m/s)²")
    target_class: TargetClass = Field(description="the operator's class if set, else fusion's")
    fused_class: TargetClass = Field(description="the class fusion gives")
    affiliation: Affiliation
    status: TrackStatus
    quality: float
    sources: list[str] = Field(description="contributing node tracks, 'site/node:track_id'")
    label: LabelOut | None = Field(default=None, description="who set the class/affiliation")


class SourceTrackOut(_Out):
    node_key: str
    track: Track


class TrackDetailOut(TrackOut):
    source_tracks: list[SourceTrackOut]


class TrackList(_Out):
    total: int = Field(description="tracks matching the filters")
    tracks: list[TrackOut]
    next_after: int | None = Field(
        description="pass as `after` for the next page; null on the last page")


class TrackLabelIn(_In):
    affiliation: Affiliation | None = None
    target_class: TargetClass | None = None

    @model_validator(mode="after")
    def _something(self):
        if self.affiliation is None and self.target_class is None:
            raise ValueError("give affiliation, target_class or both")
        return self


class HistoryPointOut(_Out):
    time: float
    lat: Latitude
    lon: Longitude
    position_enu: tuple[float, float]
    velocity_enu: tuple[float, float]
    position_covariance: Matrix2


class HistoryOut(_Out):
    global_id: int
    t0: float
    t1: float
    max_points: int
    points: list[HistoryPointOut] = Field(
        description="in time order; every k-th point and the last when decimated")


# -- nodes -----------------------------------------------------------------------------------


class NodeOut(_Out):
    node_key: str = Field(description="'site/node'")
    site: str
    node: str
    state: Literal["birth", "online", "offline", "unknown"]
    alive: bool = Field(description="online and heard from within the silence limit")
    last_heard: float | None = Field(description="UTC s of the newest status or batch")
    software_version: str | None
    lat: Latitude | None
    lon: Longitude | None
    outbox_depth: int | None = Field(description="batches waiting at the post for the uplink")
    last_seq: int | None
    last_batch_received: float | None
    batches: int
    drones: list[DroneLink] = Field(
        description="link health and battery per drone (where each is: GET /drones)")


class NodeList(_Out):
    nodes: list[NodeOut]


# -- alerts ----------------------------------------------------------------------------------


class AlertOut(_Out):
    alert_id: str
    alert_type: str
    severity: Literal["info", "warning", "critical"]
    site: str
    node: str
    time: float = Field(description="UTC s of the newest version")
    first_time: float
    message: str
    lat: Latitude | None
    lon: Longitude | None
    track_ids: list[int]
    active: bool = Field(description="false once the condition has cleared")
    state: AlertStateOut
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None
    assigned_to: str | None = Field(default=None, description="who is to deal with it")
    assigned_by: str | None = None
    assigned_at: float | None = None
    resolved_by: str | None = None
    resolved_at: float | None = None
    resolution_note: str | None = None


class AlertList(_Out):
    alerts: list[AlertOut]


class ResolveIn(_In):
    note: str = Field(default="", max_length=2000)


class AssignIn(_In):
    assignee: str = Field(min_length=1, max_length=64, description="who is to deal with it")


# -- zones and the border --------------------------------------------------------------------


class LatLonPoint(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    lat: Latitude
    lon: Longitude


class AreaOut(_Out):
    name: str
    points: list[LatLonPoint]
    updated_by: str
    updated_at: float


class ZoneList(_Out):
    zones: list[AreaOut]


ZoneName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


class ZoneIn(_In):
    points: list[LatLonPoint] = Field(min_length=3, max_length=1000,
                                      description="a polygon's corners; not closed")


class ZoneCreate(ZoneIn):
    name: ZoneName


class BorderIn(_In):
    points: list[LatLonPoint] = Field(min_length=2, max_length=1000,
                                      description="the border polyline, in order")


# -- our own drones --------------------------------------------------------------------------


class FootprintOut(_Out):
    camera: str = Field(description="the camera's name in its post's configuration")
    corners: list[LatLonPoint | None] = Field(
        min_length=4, max_length=4,
        description="where the image's top-left, top-right, bottom-right and bottom-left "
                    "corners meet the ground; null where a corner looks above the horizon")


class DroneOut(_Out):
    drone_id: str = Field(description="'site/node/system_id': unique across posts")
    site: str
    node: str
    system_id: int = Field(description="the drone's MAVLink system id at its post")
    label: str = Field(description="'SITE/NODE drone SYSID', as the page and TAK name it")
    time: float = Field(description="UTC s of the position")
    lat: Latitude
    lon: Longitude
    alt: float = Field(description="m above the WGS84 ellipsoid")
    heading: float = Field(ge=0, lt=360, description="degrees clockwise from true north")
    ground_speed: float = Field(ge=0, description="m/s over ground")
    course: float = Field(ge=0, lt=360, description="degrees of the ground velocity")
    climb_rate: float = Field(description="m/s up")
    battery_remaining: float | None = Field(description="0..1; null when not reported")
    link: Literal["ok", "lost", "unknown"] = Field(
        description="whether the post hears the drone; unknown from an older post")
    packet_loss: float | None = Field(description="0..1 of the post's MAVLink link")
    footprints: list[FootprintOut] = Field(description="what each camera covers now")


class DroneList(_Out):
    drones: list[DroneOut]


class DroneHistoryOut(_Out):
    drone_id: str
    t0: float
    t1: float
    max_points: int
    points: list[DroneOut] = Field(description="in time order; every k-th and the last when "
                                               "decimated")  # fmt: skip


# -- flow, audit, session --------------------------------------------------------------------


class FlowRowOut(_Out):
    hour_start: float
    segment: int = Field(description="index of the border polyline's segment")
    direction: Literal["inbound", "outbound"]
    target_class: str
    count: int


class FlowOut(_Out):
    rows: list[FlowRowOut]


class AuditEntryOut(_Out):
    seq: int
    time: float
    actor: str
    action: str
    details: dict[str, Any]
    prev_hash: str
    hash: str


class AuditList(_Out):
    entries: list[AuditEntryOut]
    next_after: int | None


class MeOut(_Out):
    name: str
    role: Role
    expires_at: float | None


class HealthOut(_Out):
    status: Literal["ok"]


class ReadyOut(_Out):
    status: Literal["ready", "not ready"]
    checks: dict[str, bool]


# -- the live stream's event data (documented in the OpenAPI components) --------------------


class SnapshotData(_Out):
    """`event: snapshot`: every live track matching the stream's filters, and open alerts."""

    tracks: list[TrackOut]
    alerts: list[AlertOut]
    drones: list[DroneOut] = Field(description="our own drones, each as it last reported")


class DeltaData(_Out):
    """`event: delta`: what changed in one tick, each track at most once."""

    created: list[TrackOut] = Field(description="tracks new to this stream's view")
    updated: list[TrackOut]
    ended: list[int] = Field(description="global ids that ended or left the filter")
    alerts: list[AlertOut] = Field(description="new or changed alerts (never filtered)")
    drones: list[DroneOut] = Field(
        description="our own drones that reported in this tick (never filtered)")


class HeartbeatData(_Out):
    """`event: heartbeat`: sent when nothing else was for a while; carries the last id."""

    time: float


# -- conversions -----------------------------------------------------------------------------


def track_out(track: FusedTrack, label: TrackLabel | None = None) -> TrackOut:
    e, n, ve, vn = track.state
    c = track.covariance
    fused_class = TargetClass(track.target_class)
    return TrackOut.model_construct(
        global_id=track.global_id, time=track.time, lat=track.lat, lon=track.lon, alt=track.alt,
        position_enu=(e, n), velocity_enu=(ve, vn), speed=math.hypot(ve, vn),
        course=compass_course(ve, vn),
        position_covariance=[[c[0], c[1]], [c[4], c[5]]],
        velocity_covariance=[[c[10], c[11]], [c[14], c[15]]],
        target_class=TargetClass(label.target_class) if label and label.target_class
        else fused_class,
        fused_class=fused_class,
        affiliation=Affiliation(label.affiliation) if label and label.affiliation
        else Affiliation.UNKNOWN,
        status=TrackStatus(track.status), quality=track.quality, sources=list(track.sources),
        label=None if label is None else label_out(label),
    )  # fmt: skip


def label_out(label: TrackLabel) -> LabelOut:
    return LabelOut(affiliation=label.affiliation, target_class=label.target_class,
                    updated_by=label.updated_by, updated_at=label.updated_at)  # fmt: skip


def track_detail_out(track: FusedTrack, label: TrackLabel | None,
                     sources: list[NodeTrack]) -> TrackDetailOut:  # fmt: skip
    return TrackDetailOut(**dict(track_out(track, label)), source_tracks=[
        SourceTrackOut(node_key=s.node_key, track=s.track) for s in sources])  # fmt: skip


def history_point_out(p: HistoryPoint) -> HistoryPointOut:
    return HistoryPointOut(time=p.time, lat=p.lat, lon=p.lon, position_enu=(p.e, p.n),
                           velocity_enu=(p.ve, p.vn),
                           position_covariance=[[p.var_e, p.cov_en], [p.cov_en, p.var_n]])


def alert_out(record: AlertRecord) -> AlertOut:
    a = record.alert
    return AlertOut(
        alert_id=a.alert_id, alert_type=a.alert_type, severity=a.severity, site=a.site,
        node=a.node, time=a.time, first_time=record.first_time, message=a.message, lat=a.lat,
        lon=a.lon, track_ids=list(a.track_ids), active=a.active, state=record.state,
        acknowledged_by=record.acknowledged_by, acknowledged_at=record.acknowledged_at,
        assigned_to=record.assigned_to, assigned_by=record.assigned_by,
        assigned_at=record.assigned_at, resolved_by=record.resolved_by,
        resolved_at=record.resolved_at, resolution_note=record.resolution_note,
    )  # fmt: skip


def node_out(record: NodeRecord, now: float, silence_s: float) -> NodeOut:
    status = record.status
    heard = [t for t in (status and status.time, record.last_batch_received) if t is not None]
    last_heard = max(heard) if heard else None
    state = status.state if status else "unknown"
    site, _, node = record.node_key.partition("/")
    return NodeOut(
        node_key=record.node_key, site=site, node=node, state=state,
        alive=state != "offline" and last_heard is not None and now - last_heard <= silence_s,
        last_heard=last_heard, software_version=status.software_version if status else None,
        lat=status.lat if status else None, lon=status.lon if status else None,
        outbox_depth=status.outbox_depth if status else None, last_seq=record.last_seq,
        last_batch_received=record.last_batch_received, batches=record.batches,
        drones=list(status.drones) if status else [],
    )  # fmt: skip


def drone_label(site: str, node: str, system_id: int) -> str:
    return f"{site}/{node} drone {system_id}"


def _bearing(degrees: float) -> float:
    """`degrees` in [0, 360) (a bare `% 360` turns a tiny negative into 360.0)."""
    bearing = degrees % 360.0
    return 0.0 if bearing >= 360.0 else bearing


def drone_out(telemetry: VehicleTelemetry) -> DroneOut:
    m = telemetry
    ve, vn, vu = m.velocity_enu
    return DroneOut(
        drone_id=f"{m.site}/{m.node}/{m.sysid}", site=m.site, node=m.node, system_id=m.sysid,
        label=drone_label(m.site, m.node, m.sysid), time=m.time, lat=m.lat, lon=m.lon,
        alt=m.alt, heading=_bearing(m.heading_deg), ground_speed=math.hypot(ve, vn),
        course=compass_course(ve, vn), climb_rate=vu, battery_remaining=m.battery_remaining,
        link="unknown" if m.link_connected is None else "ok" if m.link_connected else "lost",
        packet_loss=m.packet_loss,
        footprints=[FootprintOut(camera=f.camera, corners=[
            None if c is None else LatLonPoint(lat=c[1], lon=c[0]) for c in f.corners])
            for f in m.footprints],
    )  # fmt: skip


def area_out(area: Area) -> AreaOut:
    return AreaOut(name=area.name, points=[LatLonPoint(lat=a, lon=b) for a, b in area.points],
                   updated_by=area.updated_by, updated_at=area.updated_at)  # fmt: skip


def audit_out(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut(seq=entry.seq, time=entry.time, actor=entry.actor, action=entry.action,
                         details=entry.details_dict(), prev_hash=entry.prev_hash,
                         hash=entry.hash)  # fmt: skip
