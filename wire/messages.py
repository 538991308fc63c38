"""What edge nodes and HQ say to each other: versioned message models (pydantic v2).

Every message is JSON and carries `schema_version` "MAJOR.MINOR". A reader
accepts any minor version of its own major (fields added later are
ignored) and rejects another major with `UnsupportedVersion`, whose message
says what arrived and what is understood. Units and frames follow the
project's conventions: UTC seconds, WGS84 degrees and metres above the
ellipsoid, ENU metres and m/s in the post's frame, covariances in m² and
(m/s)².
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

SCHEMA_VERSION = "1.2"
SCHEMA_MAJOR = 1

Latitude = Annotated[float, Field(ge=-90.0, le=90.0)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0)]
Name = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Matrix2 = Annotated[list[Annotated[list[float], Field(min_length=2, max_length=2)]],
                    Field(min_length=2, max_length=2)]  # fmt: skip
Matrix4 = Annotated[list[Annotated[list[float], Field(min_length=4, max_length=4)]],
                    Field(min_length=4, max_length=4)]  # fmt: skip
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
# What a database's signed 64-bit integer holds: a larger id or count cannot be stored.
INT64_MAX = 2**63 - 1
Count = Annotated[int, Field(ge=0, le=INT64_MAX)]


class UnsupportedVersion(ValueError):
    pass


class TargetClass(StrEnum):
    PERSON = "person"
    VEHICLE = "vehicle"
    ANIMAL = "animal"
    AIRCRAFT = "aircraft"
    UNKNOWN = "unknown"


class TrackStatus(StrEnum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    COASTING = "coasting"  # no detection lately; the state is a prediction
    ENDED = "ended"


class _Message(BaseModel):
    # Unknown fields are ignored, so a newer minor version still reads.
    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: str = SCHEMA_VERSION

    @field_validator("schema_version")
    @classmethod
    def _same_major(cls, version: str) -> str:
        check_version(version)
        return version


class Track(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    track_id: Count  # unique within the node while the track lives
    time: float  # UTC s of the state
    lat: Latitude
    lon: Longitude
    alt: float
    position_enu: tuple[float, float]
    velocity_enu: tuple[float, float]
    position_covariance: Matrix2  # ENU m²
    velocity_covariance: Matrix2  # ENU (m/s)²
    target_class: TargetClass = TargetClass.UNKNOWN
    status: TrackStatus
    quality: float = Field(ge=0.0, le=1.0)  # existence probability or a like score
    hits: Count
    sensors: list[Name] = []  # the cameras that contributed
    # Since 1.1 (a 1.0 sender leaves them out; readers then fall back as each says).
    # The filter's whole covariance over [e, n, ve, vn] (m², m²/s, (m/s)²): the two blocks
    # above without the position-velocity cross terms are not a conservative bound, which
    # covariance intersection at HQ relies on. Absent: the block-diagonal of the two.
    state_covariance: Matrix4 | None = None
    # The node's calibrated belief in each class, summing to 1; `target_class` is its choice
    # ("unknown" when no class is believed enough). Absent: no belief beyond target_class.
    class_probabilities: dict[TargetClass, Probability] = {}
    # How many objects the track stands for: above 1, a group the sensor cannot resolve.
    count: int = Field(default=1, ge=1, le=10_000)
    # UTC s of the newest detection in the state: `time` minus this is how long the state has
    # been a prediction. Absent: unknown (treat a coasting status as predicted).
    last_measured: float | None = None

    @field_validator("class_probabilities")
    @classmethod
    def _probabilities_sum_to_one(cls, probabilities: dict) -> dict:
        if probabilities and abs(sum(probabilities.values()) - 1.0) > 1e-3:
            raise ValueError(f"class probabilities sum to {sum(probabilities.values()):.4f}, not 1")
        return probabilities


class TrackBatch(_Message):
    """All tracks of one tracker cycle of one node."""

    kind: Literal["track_batch"] = "track_batch"
    site: Name
    node: Name
    seq: Count  # monotonic per node, across restarts
    sent: float  # UTC s when the node produced the batch
    frame_origin: tuple[Latitude, Longitude, float]  # the post's ENU origin: lat, lon, alt
    tracks: list[Track]


class DroneLink(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    sysid: int = Field(ge=1, le=255)
    connected: bool
    last_heartbeat: float | None = None  # UTC s
    packet_loss: float = Field(ge=0.0, le=1.0)
    rssi: Annotated[int, Field(ge=-(2**31), le=2**31)] | None = None
    battery_remaining: float | None = Field(default=None, ge=0.0, le=1.0)
    lat: Latitude | None = None
    lon: Longitude | None = None
    alt: float | None = None


class NodeStatus(_Message):
    kind: Literal["node_status"] = "node_status"
    site: Name
    node: Name
    state: Literal["birth", "online", "offline"]
    time: float
    software_version: str
    capabilities: list[str] = []
    drones: list[DroneLink] = []
    outbox_depth: Count = 0
    lat: Latitude | None = None
    lon: Longitude | None = None


# A ground corner as GeoJSON orders it: longitude first.
LonLat = tuple[Longitude, Latitude]


class CameraFootprint(BaseModel):
    """What one camera sees on the ground now: where the rays through the image's four
    corners meet it (the same camera model as the node's detections), in the order
    top-left, top-right, bottom-right, bottom-left of the image. None for a corner whose
    ray meets no ground (at or above the horizon)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    camera: Name
    corners: Annotated[list[LonLat | None], Field(min_length=4, max_length=4)]


class VehicleTelemetry(_Message):
    """The node's own drones, shown at HQ as friendly tracks."""

    kind: Literal["vehicle_telemetry"] = "vehicle_telemetry"
    site: Name
    node: Name
    sysid: int = Field(ge=1, le=255)
    time: float
    lat: Latitude
    lon: Longitude
    alt: float
    velocity_enu: tuple[float, float, float]
    heading_deg: float
    footprint: list[tuple[Latitude, Longitude]] = []  # 1.0, never filled: see `footprints`
    # Since 1.2 (a 1.1 sender leaves them out: no footprint, battery or link known).
    footprints: list[CameraFootprint] = Field(default=[], max_length=16)  # one per camera
    battery_remaining: float | None = Field(default=None, ge=0.0, le=1.0)
    link_connected: bool | None = None  # the node hears the drone's heartbeat
    packet_loss: float | None = Field(default=None, ge=0.0, le=1.0)


class Alert(_Message):
    kind: Literal["alert"] = "alert"
    site: Name
    node: Name
    # HQ keeps a post's alert as post~SITE~NODE~ID, longer than the 128 a post may send.
    alert_id: str = Field(min_length=1, max_length=320)
    alert_type: Literal["distress", "border_crossing", "zone_entry", "node", "node_offline",
                        "drone_link", "battery", "outbox", "backlog"]
    severity: Literal["info", "warning", "critical"]
    time: float
    message: str = Field(max_length=2000)
    lat: Latitude | None = None
    lon: Longitude | None = None
    track_ids: list[Count] = []  # the fused tracks it is about (HQ's alerts)
    active: bool = True  # False: the condition has cleared


MESSAGE_TYPES = {m.model_fields["kind"].default: m
                 for m in (TrackBatch, NodeStatus, VehicleTelemetry, Alert)}  # fmt: skip
AnyMessage = TrackBatch | NodeStatus | VehicleTelemetry | Alert


def encode(message: AnyMessage) -> bytes:
    return message.model_dump_json().encode()


def decode(payload: bytes | str, expected: type[AnyMessage] | None = None) -> AnyMessage:
    """The message in `payload`, of `expected`'s kind or of whatever known kind it says.

    Raises UnsupportedVersion for another major version, and ValueError (pydantic's
    ValidationError is one) for anything else malformed, each saying why.
    """
    header = _Header.model_validate_json(payload)
    check_version(header.schema_version)
    model = MESSAGE_TYPES.get(header.kind)
    if model is None:
        raise ValueError(f"unknown message kind {header.kind!r}")
    if expected is not None and model is not expected:
        raise ValueError(f"expected a {expected.__name__}, got kind {header.kind!r}")
    return model.model_validate_json(payload)


def check_version(version: str) -> None:
    major = version.split(".", 1)[0]
    if not major.isdigit() or int(major) != SCHEMA_MAJOR:
        raise UnsupportedVersion(
            f"schema version {version!r} is not understood here (this reader knows "
            f"{SCHEMA_MAJOR}.x)"
        )


class _Header(BaseModel):
    """The two fields every message has, read before choosing its model."""

    model_config = ConfigDict(extra="ignore")
    kind: str
    schema_version: str
