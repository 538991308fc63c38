"""The edge node's configuration: `configs/edge/<post>.toml`, loaded into typed models.

Secrets never sit in the TOML: the MQTT password and the MAVLink signing key
are named there by an environment variable or a file path outside git, and
read when the node starts (`secret`).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wire.messages import Name
from wire.secrets import SecretRef


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PostConfig(_Strict):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    alt: float  # terrain height above the WGS84 ellipsoid, m: the ground cameras look at


class UplinkSection(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: SecretRef | None = None
    ca_file: Path | None = None
    outbox: Path = Path("/var/lib/dunewatch/outbox.db")
    outbox_max_messages: int = Field(default=200_000, ge=1)
    outbox_max_bytes: int = Field(default=1024**3, ge=1)  # payload bytes held, at most
    # HQ confirms each batch its store holds; one the broker took but HQ did not confirm
    # within this is sent again (the wait doubles while HQ stays silent).
    confirm_timeout_s: float = Field(default=10.0, gt=0)
    drain_rate: float = Field(default=50.0, gt=0)  # backlog messages per second
    status_period_s: float = Field(default=10.0, gt=0)
    status_expiry_s: int = Field(default=600, ge=1)


class MavlinkLink(_Strict):
    url: str  # pymavlink connection string: udpin:0.0.0.0:14550, tcp:10.0.0.2:5760, ...
    signing_key: SecretRef | None = None  # accept signed frames only when set


class CameraSection(_Strict):
    name: Name
    # "video": frames only, the pose from a drone's MAVLink or a mast's mount. "klv": a
    # STANAG 4609 stream (MPEG-TS file, udp://, rtp://, rtsp://) whose MISB ST 0601 or
    # EG 0104 metadata gives the pose and the field of view of every frame: no mount.
    kind: Literal["video", "klv"] = "video"
    source: str  # anything OpenCV opens: a file, rtsp://, http:// MJPEG, /dev/video0
    mode: Literal["eo", "thermal"] = "eo"
    # A thermal camera's detector: the learned network (edge/detection/models; far better
    # on real imagery, see its model card) or the hot-spot detector. Hot spots stay the
    # default while the network misses many of the simulator's people (3 px across, at
    # any angle), on which the replay suite's figures rest.
    thermal_detector: Literal["learned", "hot_spots"] = "hot_spots"
    # A radiometric or fixed-gain thermal core's kelvin per level (a 16-bit radiometric core
    # in centikelvin: 0.01): the hot-spot detector then tells warm bodies from warm ground
    # by their contrast, at least `body_contrast_k` at night (edge.detection.thermal). Leave
    # unset for AGC video, whose levels say nothing of temperature.
    kelvin_per_level: float | None = Field(default=None, gt=0)
    body_contrast_k: float = Field(default=11.0, gt=0)
    engine_contrast_k: float = Field(default=21.0, gt=0)  # hotter than any body: an engine
    hfov_deg: float | None = Field(default=None, gt=0, lt=180)  # "klv": from the metadata
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    latency_s: float = Field(default=0.1, ge=0)  # source to arrival, where the stream has no time
    # At most this many of the camera's frames per second go through detection, evenly
    # spaced; the rest are skipped and counted. Unset: every frame the loop can take.
    process_fps: float | None = Field(default=None, gt=0)
    # On a drone's gimbal (its pose from that drone's telemetry), or on a mast at the post.
    drone_sysid: int | None = Field(default=None, ge=1, le=254)
    mast: tuple[float, float, float] | None = None  # lat, lon, height above the ground m
    mast_pan_deg: float = 0.0  # from north, clockwise
    mast_tilt_deg: float = -30.0  # below the horizon is negative

    @model_validator(mode="after")
    def _one_mount(self):
        mounts = (self.drone_sysid is not None) + (self.mast is not None)
        if self.kind == "klv" and mounts:
            raise ValueError(f"camera {self.name}: a klv camera's pose is its metadata's: "
                             "no drone_sysid or mast")  # fmt: skip
        if self.kind == "video" and mounts != 1:
            raise ValueError(f"camera {self.name}: set exactly one of drone_sysid or mast")
        if self.kind == "video" and self.hfov_deg is None:
            raise ValueError(f"camera {self.name}: hfov_deg is required")
        return self


class ClassLimits(_Strict):
    """What a target of one class can do: the tracker refuses a detection that would need
    more (a jump starts a new track), clips a track's velocity to `max_speed`, and lets
    it coast unseen at most `max_coast_s`."""

    max_speed: float = Field(gt=0)  # m/s
    max_acceleration: float = Field(gt=0)  # m/s²
    max_coast_s: float = Field(gt=0)


class ClassLimitsTable(_Strict):
    """`[tracking.class_limits.<class>]`. A person runs at most about 7 m/s; a camel
    gallops up to about 18 m/s; a vehicle off road stays under 40 m/s. A track of no
    known class yet ("unknown": every track is at first) may be any of them, so it gets
    the widest speed, and coasts no longer than a person may hide while the drone turns."""

    person: ClassLimits = ClassLimits(max_speed=7.0, max_acceleration=3.0, max_coast_s=15.0)
    animal: ClassLimits = ClassLimits(max_speed=18.0, max_acceleration=4.0, max_coast_s=15.0)
    vehicle: ClassLimits = ClassLimits(max_speed=40.0, max_acceleration=6.0, max_coast_s=10.0)
    unknown: ClassLimits = ClassLimits(max_speed=40.0, max_acceleration=6.0, max_coast_s=15.0)


class TrackerConfig(_Strict):
    """The tracker's parameters (`edge.tracking.Tracker`), the `[tracking]` section's keys.

    The defaults are the node's, set for what a drone's camera sees: a moving patch of
    ground. A target is out of its view for as long as the drone takes to turn back
    (about 15 s loitering), and a small target in a thermal frame is found in about
    half the frames (groups blur into one blob, the drone's motion smears). The tracker
    books a miss for every track at every frame, in view or not, so the defaults let a
    confirmed track coast through such a gap rather than end and be born again (one
    target, many tracks): `detection_probability` is what the detector achieves per
    frame, `confirmed_delete_drop` the score a confirmed track may lose (at ln(1 - pd)
    per frame missed) and `max_coast_time_s` the time it may go unseen. A fixed mast
    that sees its targets all the time can delete sooner (pd 0.9, drop 7, 10 s); the
    benchmarks' scenarios, whose sensor sees every target at every scan, set those.
    """

    process_noise: float = Field(default=0.05, gt=0)  # q, white-acceleration PSD, m²/s³
    detection_probability: float = Field(default=0.5, gt=0, lt=1)  # pd, per frame
    clutter_density: float = Field(default=1e-6, gt=0)  # λ, false detections per m² per frame
    birth_density: float | None = Field(default=None, gt=0)  # new targets per m²; unset: λ
    initial_velocity_std: float = Field(default=5.0, gt=0)  # m/s per axis, a new track's prior
    gate_probability: float = Field(default=0.9999, gt=0, lt=1)  # chi-square gate, 2 dof
    association: Literal["jpda", "gnn"] = "jpda"  # for confirmed tracks
    max_jpda_events: int = Field(default=20_000, ge=1)  # larger clusters fall back to GNN
    confirm_score: float = 6.0  # log-likelihood ratio that confirms a track
    tentative_delete_score: float = -3.0  # below this a tentative track dies
    confirmed_delete_drop: float = Field(default=25.0, gt=0)  # below its best: a track dies
    max_coast_time_s: float = Field(default=15.0, gt=0)  # unseen this long: a track dies
    max_position_std: float = Field(default=100.0, gt=0)  # m; a track this uncertain is no use
    class_limits: ClassLimitsTable = ClassLimitsTable()
    # The clutter map (`edge.tracking.clutter`): cells of this side, in which detections
    # that no moving target explains are counted with this half-life; a tentative track
    # in a cell needs one more hit per `clutter_detections_per_hit` counted there, at
    # most `clutter_max_extra_hits` more (0: no map), so a person who stands still is
    # still confirmed. A confirmed track faster than `moving_speed` m/s is moving.
    clutter_cell_m: float = Field(default=10.0, gt=0)
    clutter_half_life_s: float = Field(default=300.0, gt=0)
    clutter_detections_per_hit: float = Field(default=1.5, gt=0)
    clutter_max_extra_hits: int = Field(default=20, ge=0)
    moving_speed: float = Field(default=0.5, ge=0)


class TrackingSection(TrackerConfig):
    """`[tracking]`: the tracker's parameters and how often the node publishes its tracks."""

    publish_rate_hz: float = Field(default=2.0, gt=0, le=50)


class MetricsSection(_Strict):
    """Prometheus /metrics of the node: off unless a port is set. The default address keeps
    it on the box; a scraper elsewhere needs the address of an interface it can reach."""

    port: int | None = Field(default=None, ge=1, le=65535)
    bind: str = "127.0.0.1"


class EdgeConfig(_Strict):
    site: Name
    node: Name
    post: PostConfig
    uplink: UplinkSection = UplinkSection()
    mavlink: list[MavlinkLink] = []
    cameras: list[CameraSection] = []
    tracking: TrackingSection = TrackingSection()
    metrics: MetricsSection = MetricsSection()

    @model_validator(mode="after")
    def _camera_names_differ(self):
        names = [c.name for c in self.cameras]
        if len(set(names)) != len(names):
            raise ValueError(f"camera names must differ, got {names}")
        return self


def load_config(path: str | Path) -> EdgeConfig:
    with open(path, "rb") as f:
        return EdgeConfig.model_validate(tomllib.load(f))
