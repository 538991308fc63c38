"""The edge node: drivers -> detection -> georeferencing -> tracker -> uplink, one loop.

One thread owns the loop and the clock. Each turn it takes the newest frame
of every camera (a camera source keeps only its newest, so a slow turn drops
frames rather than falling behind, and the camera driver counts them; a
camera may also be decimated on purpose to a rate the box can hold, and the
loop counts those frames and the ones it processed late), finds the camera's pose at the frame's
time (a drone's from its MAVLink telemetry, a mast's fixed), detects,
georeferences, and updates the tracker with that camera's scan. At the
publish rate it sends the confirmed tracks as a TrackBatch and its own
drones as VehicleTelemetry; every status period a NodeStatus with the link
health of each drone. Everything goes through the uplink's outbox, so a cut
link loses nothing; tracking goes on meanwhile.

The parts are built elsewhere (`edge.run` from the config; tests by hand) and
handed in, so the loop can be tested with real parts of any kind.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from edge.batches import track_batch
from edge.detection import Detection, ground_measurements
from edge.drivers.mavlink import MavlinkDriver
from edge.georef import Georeferencer
from edge.georef import Pose as CameraPose
from edge.track_classes import ClassVotes
from edge.track_groups import GroupCounts, ground_widths
from edge.tracking import Tracker
from edge.uplink import Uplink
from wire import topics
from wire.geo import EnuFrame
from wire.messages import CameraFootprint, DroneLink, NodeStatus, VehicleTelemetry, encode
from wire.version import SOFTWARE_VERSION

log = logging.getLogger(__name__)


class Frame(Protocol):
    time: float  # UTC s of exposure
    image: np.ndarray


class FrameSource(Protocol):
    def latest(self) -> Frame | None:
        """The newest frame not yet taken, or None."""


class Detector(Protocol):
    def detect(self, t: float, image: np.ndarray, pose: CameraPose) -> list[Detection]: ...


@dataclass
class CameraPipeline:
    name: str
    source: FrameSource
    detector: Detector
    pose_at: Callable[[float], CameraPose]  # raises LookupError when there is none
    georeferencer: Georeferencer
    drone_sysid: int | None = None  # on this drone's gimbal: its footprint goes in its telemetry
    # Decimation: at most one frame per this many seconds goes through detection; the
    # frames between are skipped on purpose and counted (0: every frame taken).
    min_interval_s: float = 0.0


@dataclass
class NodeCounters:
    frames: int = 0
    frames_without_pose: int = 0  # no telemetry at the frame's time: skipped
    frames_out_of_order: int = 0  # older than the tracker's clock: skipped
    frames_decimated: int = 0  # within a camera's decimation interval: skipped on purpose
    frames_late: int = 0  # processed, but more than `late_frame_s` after exposure
    detector_failures: int = 0
    detections: int = 0
    measurements: int = 0  # detections that reached the ground
    batches: int = 0
    telemetry: int = 0


@dataclass
class NodeSettings:
    site: str
    node: str
    frame: EnuFrame  # the post's ENU frame: the tracker's
    publish_period_s: float = 0.5
    min_batch_interval_s: float = 0.1  # at most this often when tracks come and go
    status_period_s: float = 10.0
    capabilities: tuple[str, ...] = ("tracks", "telemetry")
    late_frame_s: float = 1.0  # a frame processed later than this after exposure is late


@dataclass
class _Clock:
    next_batch: float = 0.0
    last_batch: float = -math.inf
    published_ids: frozenset[int] = frozenset()  # confirmed tracks in the last batch
    next_status: float = 0.0
    last_scan: float = -math.inf
    classes: dict[int, str] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)  # targets a track stands for


class EdgeNode:
    def __init__(self, settings: NodeSettings, tracker: Tracker, uplink: Uplink,
                 drivers: list[MavlinkDriver] = (), cameras: list[CameraPipeline] = (),
                 clock: Callable[[], float] = time.time):  # fmt: skip
        self.settings = settings
        self.tracker = tracker
        self.uplink = uplink
        self.drivers = list(drivers)
        self.cameras = list(cameras)
        self.clock = clock
        self.counters = NodeCounters()
        self._state = _Clock()
        self._votes = ClassVotes()
        self._groups = GroupCounts()
        self._tracks = None
        self._last_processed: dict[str, float] = {}  # camera -> time of its last frame taken

    def run(self, stop: threading.Event, poll_s: float = 0.005) -> None:
        """Turn the loop until `stop` is set; then flush and say offline."""
        for driver in self.drivers:
            driver.start()
        for camera in self.cameras:
            if hasattr(camera.source, "start"):
                camera.source.start()
        self.uplink.start()
        try:
            while not stop.is_set():
                worked = self.sense()
                # Read the clock after sensing: a batch's `sent` is when it leaves.
                self.publish_due(self.clock())
                if not worked:
                    stop.wait(poll_s)
        finally:
            for camera in self.cameras:
                if hasattr(camera.source, "stop"):
                    camera.source.stop()
            for driver in self.drivers:
                driver.stop()
            self.uplink.stop()

    def step(self, now: float) -> bool:
        """One turn at time `now`; True when a frame was processed."""
        worked = self.sense()
        self.publish_due(now)
        return worked

    def sense(self) -> bool:
        """The newest frame of every camera through detection into the tracker; True when
        there was one (the loop goes straight on)."""
        worked = False
        for camera in self.cameras:
            worked |= self._process_camera(camera)
        return worked

    def publish_due(self, now: float) -> None:
        """Track batch and telemetry at the publish rate, or at once when the confirmed
        tracks changed (a new one, or one gone) so that HQ learns of a new target without
        waiting for the tick; status at its period."""
        confirmed = self._confirmed_ids()
        changed = confirmed != self._state.published_ids
        soon_enough = now >= self._state.last_batch + self.settings.min_batch_interval_s
        if now >= self._state.next_batch or (changed and soon_enough):
            self._state.next_batch = now + self.settings.publish_period_s
            self._state.last_batch = now
            self._state.published_ids = confirmed
            self.publish_tracks(now)
            self.publish_telemetry(now)
        if now >= self._state.next_status:
            self._state.next_status = now + self.settings.status_period_s
            self.uplink.publish_status(self.status("online", now))

    # --- sensing ---------------------------------------------------------------------------

    def _process_camera(self, camera: CameraPipeline) -> bool:
        frame = camera.source.latest()
        if frame is None:
            return False
        t, image = frame.time, frame.image
        self.counters.frames += 1
        if t < self._state.last_scan:
            self.counters.frames_out_of_order += 1
            return True
        if self._decimated(camera, t):
            self.counters.frames_decimated += 1
            return True
        if self.clock() - t > self.settings.late_frame_s:
            self.counters.frames_late += 1  # still used: late is better than never
        try:
            pose = camera.pose_at(t)
        except LookupError as error:
            self.counters.frames_without_pose += 1
            log.debug("frame skipped camera=%s reason=%s", camera.name, error)
            return True
        try:
            detections = camera.detector.detect(t, image, pose)
        except Exception:  # a detector's bug must not stop the node; counted and logged
            self.counters.detector_failures += 1
            log.exception("detector failed camera=%s", camera.name)
            return True
        ground = ground_measurements(detections, pose, camera.georeferencer)
        ok = ground.ok
        self.counters.detections += len(detections)
        self.counters.measurements += int(ok.sum())
        located = [d for d, keep in zip(detections, ok, strict=True) if keep]
        self._tracks = self.tracker.update(t, ground.z[ok], ground.R[ok], sensor=camera.name,
                                           clutter_like=[d.warm_body is False for d in located])
        self._state.last_scan = t
        self._vote_classes(t, ground.z[ok], ground.R[ok], located)
        widths = ground_widths(located, pose, camera.georeferencer)
        self._groups.count(t, self._tracks, ground.z[ok], widths, self._state.classes)
        self._state.counts = self._groups.counts()
        return True

    def _decimated(self, camera: CameraPipeline, t: float) -> bool:
        """Whether the frame at t falls within the camera's decimation interval since its
        last frame taken (a tenth of the interval's slack for the frames' timing jitter)."""
        last = self._last_processed.get(camera.name, -math.inf)
        if t - last < 0.9 * camera.min_interval_s:
            return True
        self._last_processed[camera.name] = t
        return False

    def _vote_classes(self, t: float, z: np.ndarray, R: np.ndarray,
                      detections: list[Detection]) -> None:  # fmt: skip
        """Book the scan's detections (their classes, and class probabilities where the
        detector gives them) into their tracks' classes (`ClassVotes`)."""
        if self._tracks is None:
            return
        self._votes.vote(t, self._tracks, z, R, [d.target_class for d in detections],
                         [d.class_probabilities for d in detections])  # fmt: skip
        self._state.classes = self._votes.classes()
        # The tracker bounds each track's gate, speed and coasting by its class.
        self.tracker.set_classes(self._state.classes)

    # --- publishing ------------------------------------------------------------------------

    def _confirmed_ids(self) -> frozenset[int]:
        tracks = self._tracks
        if tracks is None:
            return frozenset()
        return frozenset(tracks.ids[tracks.confirmed].tolist())

    def publish_tracks(self, now: float) -> None:
        if self._tracks is None:
            return
        settings = self.settings

        def encoded(seq: int) -> bytes:
            return encode(track_batch(self._tracks, settings.frame, site=settings.site,
                                      node=settings.node, seq=seq,
                                      state_time=self._state.last_scan, sent=now,
                                      classes=self._state.classes,
                                      counts=self._state.counts))  # fmt: skip

        self.uplink.send_numbered(topics.tracks(settings.site, settings.node), encoded)
        self.counters.batches += 1

    def publish_telemetry(self, now: float) -> None:
        for driver in self.drivers:
            for vehicle in driver.receiver.vehicle_status(now):
                message = self._telemetry_of(driver, vehicle, now)
                if message is not None:
                    topic = topics.telemetry(self.settings.site, self.settings.node)
                    self.uplink.send(topic, encode(message))
                    self.counters.telemetry += 1

    def _telemetry_of(self, driver: MavlinkDriver, vehicle, now: float) -> VehicleTelemetry | None:
        """The drone where it last reported itself, with its cameras' footprints, battery and
        link, or None before its first position."""
        if vehicle.last_position_t is None:
            return None
        sysid = vehicle.sysid
        try:
            pose = driver.pose_at(sysid, vehicle.last_position_t)
        except LookupError:
            return None
        vn, ve, vd = (float(v) for v in pose.velocity_ned)
        yaw = float(pose.attitude.as_euler("ZYX")[0])
        link = _drone_link(vehicle, now)
        return VehicleTelemetry(site=self.settings.site, node=self.settings.node, sysid=sysid,
                                time=pose.t, lat=pose.lat, lon=pose.lon, alt=pose.alt,
                                velocity_enu=(ve, vn, -vd),
                                heading_deg=math.degrees(yaw) % 360.0,
                                footprints=self._footprints(sysid, pose.t),
                                battery_remaining=link.battery_remaining,
                                link_connected=link.connected,
                                packet_loss=link.packet_loss)  # fmt: skip

    def _footprints(self, sysid: int, t: float) -> list[CameraFootprint]:
        """What each camera on drone `sysid` covers at t, by the pose its detections use."""
        footprints = []
        for camera in self.cameras:
            if camera.drone_sysid != sysid:
                continue
            try:
                pose = camera.pose_at(t)
            except LookupError:  # no gimbal attitude yet: nothing to say where it looks
                continue
            corners = camera.georeferencer.footprint(pose)
            footprints.append(CameraFootprint(camera=camera.name, corners=corners))
        return footprints

    def status(self, state: str, now: float) -> NodeStatus:
        drones = []
        for driver in self.drivers:
            for vehicle in driver.receiver.vehicle_status(now):
                drones.append(_drone_link(vehicle, now))
        return NodeStatus(site=self.settings.site, node=self.settings.node, state=state,
                          time=now, software_version=SOFTWARE_VERSION,
                          capabilities=list(self.settings.capabilities), drones=drones,
                          outbox_depth=self.uplink.outbox.depth(),
                          lat=self.settings.frame.lat, lon=self.settings.frame.lon)  # fmt: skip


def _drone_link(vehicle, now: float) -> DroneLink:
    link = vehicle.link
    battery = (vehicle.battery or {}).get("remaining")
    heartbeat = None if link.heartbeat_age is None else now - link.heartbeat_age
    return DroneLink(sysid=vehicle.sysid, connected=link.state == "ok", last_heartbeat=heartbeat,
                     packet_loss=min(1.0, max(0.0, link.loss_fraction)),
                     rssi=None if link.radio is None else link.radio.rssi,
                     battery_remaining=None if battery is None else min(1.0, max(0.0, battery)))
