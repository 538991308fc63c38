"""`python -m edge run --config configs/edge/<post>.toml`: one border post's node.

Builds the parts the config names (MAVLink links, cameras with their
detectors and georeferencing, the tracker, the uplink with its outbox),
serves Prometheus metrics when `[metrics] port` is set, warms the Numba
kernels, and runs the loop until SIGINT or SIGTERM, then flushes the outbox
as far as the link allows and says offline.
"""

from __future__ import annotations

import argparse
import logging
import math
import signal
import threading

import numpy as np

from edge import georef as georef_kernels
from edge.config import CameraSection, EdgeConfig, load_config
from edge.drivers.mavlink import MavlinkConfig, MavlinkDriver
from edge.georef import Camera, Georeferencer
from edge.georef import Pose as CameraPose
from edge.metrics import MetricsServer, edge_registry
from edge.node import CameraPipeline, EdgeNode, NodeSettings
from edge.outbox import Outbox
from edge.tracking import Tracker
from edge.uplink import Uplink, UplinkConfig
from wire.geo import EnuFrame
from wire.secrets import secret, signing_key

log = logging.getLogger(__name__)


def build_drivers(config: EdgeConfig) -> list[MavlinkDriver]:
    drivers = []
    for link in config.mavlink:
        key = signing_key(link.signing_key)
        drivers.append(MavlinkDriver(MavlinkConfig(url=link.url, signing_key=key)))
    return drivers


def build_uplink(config: EdgeConfig) -> Uplink:
    section = config.uplink
    section.outbox.parent.mkdir(parents=True, exist_ok=True)
    uplink_config = UplinkConfig(
        site=config.site, node=config.node, host=section.host, port=section.port,
        username=section.username, password=secret(section.password),
        ca_file=None if section.ca_file is None else str(section.ca_file),
        drain_rate=section.drain_rate, status_expiry_s=section.status_expiry_s,
        confirm_timeout_s=section.confirm_timeout_s,
    )  # fmt: skip
    outbox = Outbox(section.outbox, section.outbox_max_messages,
                    max_bytes=section.outbox_max_bytes)  # fmt: skip
    return Uplink(uplink_config, outbox)


def mast_pose(camera: CameraSection, ground_alt: float):
    """A fixed camera's pose: level mount, the gimbal angles are the mount's pan and tilt."""
    lat, lon, height = camera.mast
    pose = CameraPose(lat, lon, ground_alt + height, 0.0, 0.0, 0.0, 0.0,
                      math.radians(camera.mast_tilt_deg), math.radians(camera.mast_pan_deg),
                      "earth")  # fmt: skip
    return lambda t: pose


def drone_pose(drivers: list[MavlinkDriver], sysid: int):
    """The pose of drone `sysid`'s gimbal camera at t, from whichever link carries it."""

    def pose_at(t: float) -> CameraPose:
        for driver in drivers:
            if sysid in driver.receiver.vehicles:
                pose = driver.pose_at(sysid, t)
                if pose.gimbal is None:
                    raise LookupError(f"drone {sysid} has reported no gimbal attitude")
                yaw, pitch, roll = pose.attitude.as_euler("ZYX")
                g_yaw, g_pitch, g_roll = pose.gimbal.as_euler("ZYX")
                return CameraPose(pose.lat, pose.lon, pose.alt, roll, pitch, yaw, g_roll,
                                  g_pitch, g_yaw, "earth", tuple(pose.velocity_ned))  # fmt: skip
        raise LookupError(f"no telemetry from drone {sysid}")

    return pose_at


class ThermalScan:
    """The thermal detector under the node's Detector shape (a hot spot needs no time)."""

    def __init__(self, detector):
        self.detector = detector

    def detect(self, t: float, image, pose: CameraPose):
        return self.detector.detect(image, pose)


def build_detector(section: CameraSection, camera: Camera, frame: EnuFrame,
                   georeferencer: Georeferencer):  # fmt: skip
    if section.mode == "eo":
        from edge.detection.eo_motion import MotionDetector

        return MotionDetector(camera, frame)
    if section.thermal_detector == "hot_spots":
        from edge.detection.thermal import ThermalDetector, ThermalSettings

        settings = ThermalSettings(kelvin_per_level=section.kelvin_per_level,
                                   body_contrast_k=section.body_contrast_k,
                                   engine_contrast_k=section.engine_contrast_k)  # fmt: skip
        return ThermalScan(ThermalDetector(georeferencer, settings))
    from edge.detection.thermal_learned import LearnedThermalDetector

    return ThermalScan(LearnedThermalDetector(georeferencer))


def build_klv_camera(section: CameraSection, frame: EnuFrame) -> CameraPipeline:
    """A STANAG 4609 stream: frames and, from its KLV, the pose and lens of each."""
    from edge.drivers.camera import CameraConfig, CameraDriver
    from edge.drivers.klv_camera import KlvCamera
    from edge.klv_pipeline import FollowingDetector, FollowingGeoreferencer

    klv = KlvCamera(pixel_format="gray" if section.mode == "thermal" else "bgr24")
    size = (section.width, section.height)
    georeferencer = FollowingGeoreferencer(klv, *size, frame, section.hfov_deg)

    def detector_for(camera: Camera):
        return build_detector(section, camera, frame, Georeferencer(camera, frame))

    detector = FollowingDetector(klv, *size, detector_for, section.hfov_deg)
    source = CameraDriver(CameraConfig(section.source, frame_size=size), opener=klv.open)
    return CameraPipeline(section.name, source, detector, klv.pose_at, georeferencer,
                          min_interval_s=min_interval(section))  # fmt: skip


def build_cameras(config: EdgeConfig, drivers: list[MavlinkDriver]) -> list[CameraPipeline]:
    # Imported here: a node without cameras (telemetry relay) does not load OpenCV's video.
    from edge.drivers.camera import CameraConfig, CameraDriver

    frame = EnuFrame(config.post.lat, config.post.lon, config.post.alt)
    pipelines = []
    for section in config.cameras:
        if section.kind == "klv":
            pipelines.append(build_klv_camera(section, frame))
            continue
        camera = Camera.from_hfov(math.radians(section.hfov_deg), section.width, section.height)
        georeferencer = Georeferencer(camera, frame)
        detector = build_detector(section, camera, frame, georeferencer)
        source = CameraDriver(CameraConfig(section.source, latency=section.latency_s,
                                           frame_size=(section.width, section.height)))  # fmt: skip
        pose_at = (drone_pose(drivers, section.drone_sysid) if section.drone_sysid is not None
                   else mast_pose(section, config.post.alt))  # fmt: skip
        pipelines.append(CameraPipeline(section.name, source, detector, pose_at, georeferencer,
                                        drone_sysid=section.drone_sysid,
                                        min_interval_s=min_interval(section)))  # fmt: skip
    return pipelines


def min_interval(section: CameraSection) -> float:
    """The camera's decimation interval: 1 / process_fps, or 0 for every frame."""
    return 0.0 if section.process_fps is None else 1.0 / section.process_fps


def build_node(config: EdgeConfig) -> EdgeNode:
    drivers = build_drivers(config)
    tracking = config.tracking
    tracker = Tracker(tracking)  # the section is the tracker's config, plus the publish rate
    settings = NodeSettings(site=config.site, node=config.node,
                            frame=EnuFrame(config.post.lat, config.post.lon, config.post.alt),
                            publish_period_s=1.0 / tracking.publish_rate_hz,
                            status_period_s=config.uplink.status_period_s)  # fmt: skip
    cameras = build_cameras(config, drivers) if config.cameras else []
    return EdgeNode(settings, tracker, build_uplink(config), drivers, cameras)


def warm_kernels() -> None:
    """Compile (or load from the cache) the tracker's and georeferencing's kernels on
    throwaway data, so the first real frame does not wait for them."""
    tracker = Tracker()
    for k in range(6):
        z = np.array([[0.0, 1.4 * k], [500.0, -20.0 * k]])
        tracker.update(float(k), z, np.tile(np.eye(2) * 4.0, (2, 1, 1)))
    georef_kernels.warm()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m edge run", description=__doc__)
    parser.add_argument("--config", required=True, help="configs/edge/<post>.toml")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    try:
        config = load_config(args.config)
        node = build_node(config)
        metrics = serve_metrics(config, node)
    except (OSError, ValueError) as error:
        print(f"python -m edge run: {error}")
        return 1
    try:
        run_node(node)
    finally:
        if metrics is not None:
            metrics.stop()
    return 0


def serve_metrics(config: EdgeConfig, node: EdgeNode) -> MetricsServer | None:
    """/metrics on the configured port, or None when none is set. Served from before the
    kernels warm up, so that a scraper sees the process as up while it does."""
    section = config.metrics
    if section.port is None:
        return None
    try:
        server = MetricsServer(edge_registry(node), section.port, section.bind)
    except OSError as error:  # the port taken, the address not this box's
        raise OSError(f"metrics on {section.bind}:{section.port}: {error}") from error
    log.info("metrics served bind=%s port=%d", section.bind, server.port)
    return server


def run_node(node: EdgeNode) -> None:
    warm_kernels()
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info("node running site=%s node=%s cameras=%d links=%d", node.settings.site,
             node.settings.node, len(node.cameras), len(node.drivers))  # fmt: skip
    node.run(stop)
    log.info("node stopped counters=%s", node.counters)
