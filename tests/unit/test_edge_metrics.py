"""The edge node's Prometheus metrics over real parts: what the exposition text says is
what the loop, the uplink's outbox, the tracker, the MAVLink driver and a camera driver
counted, each sample labelled with the node's site and node."""

import math
import time
from dataclasses import dataclass

import cv2
import numpy as np
import prometheus_client
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pymavlink.dialects.v20 import ardupilotmega as dialect

from edge.detection import Detection
from edge.drivers.camera import CameraConfig, CameraDriver
from edge.drivers.mavlink import MavlinkConfig, MavlinkDriver
from edge.georef import Camera, Georeferencer
from edge.georef import Pose as CameraPose
from edge.metrics import edge_registry
from edge.node import CameraPipeline, EdgeNode, NodeSettings
from edge.outbox import Outbox
from edge.tracking import Tracker
from edge.uplink import Uplink, UplinkConfig
from wire.geo import EnuFrame

pytestmark = pytest.mark.unit

SITE, NODE = "tummo", "west-1"
POST = EnuFrame(22.84, 14.13, 620.0)
LINK = "udpin:127.0.0.1:14550"
SCRAPE_T = 1004.0  # the node's clock when scraped
# The mast camera's frames, one per loop turn: (time, what happens to it).
MAST_FRAMES = [(1000.0, "ok"), (1000.5, "ok"), (1001.0, "ok"), (1001.5, "ok"),
               (1001.2, "ok"),  # older than the last scan: out of order
               (1002.0, "no_pose"), (1002.5, "detector_fails"), (1003.0, "ok")]  # fmt: skip


@dataclass
class Frame:
    time: float
    image: np.ndarray


class ScriptedSource:
    """The mast camera's frames, one per call; it keeps no status, as recorded frames don't."""

    def __init__(self, frames):
        self.frames = iter(frames)

    def latest(self):
        return next(self.frames, None)


class TwoPeople:
    """Two detections a frame: one in the middle of the image, which lands on the ground,
    one at its top edge, above the horizon, which does not."""

    def detect(self, t, image, pose):
        if dict(MAST_FRAMES)[t] == "detector_fails":
            raise RuntimeError("detector bug")
        return [
            Detection((300, 200, 340, 280), (320, 240), np.eye(2) * 4.0, "person", 0.9),
            Detection((300, 0, 340, 10), (320, 5), np.eye(2) * 4.0, "person", 0.9),
        ]


def mast_pose(t):
    if dict(MAST_FRAMES)[t] == "no_pose":
        raise LookupError("no pose at this time")
    # 12 m up, 10 deg down: the image's middle row meets the ground ~70 m out.
    return CameraPose(POST.lat, POST.lon, POST.alt + 12.0, 0.0, 0.0, 0.0, 0.0,
                      math.radians(-10.0), math.radians(190.0), "earth")  # fmt: skip


class Vehicle:
    """Packs MAVLink 2 frames as one autopilot, numbering them as a real sender does."""

    def __init__(self, sysid):
        self.mav = dialect.MAVLink(None, srcSystem=sysid, srcComponent=1)

    def frame(self, message) -> bytes:
        raw = bytes(message.pack(self.mav))
        self.mav.seq = (self.mav.seq + 1) % 256
        return raw


def heartbeat():
    return dialect.MAVLink_heartbeat_message(dialect.MAV_TYPE_QUADROTOR,
                                             dialect.MAV_AUTOPILOT_ARDUPILOTMEGA, 0, 0,
                                             dialect.MAV_STATE_ACTIVE, 3)  # fmt: skip


def fly(driver: MavlinkDriver) -> None:
    """Drone 7: positions, a battery at 76 %, 3 frames lost (2 never sent, 1 with a bad
    checksum) of 12, last heartbeat at 1003. Drone 9: one heartbeat at 995, long lost.
    Drone 11: an attitude, no heartbeat yet."""
    feed = driver.receiver.feed_datagram
    seven = Vehicle(7)
    feed(seven.frame(heartbeat()), 1000.0)
    for k in range(3):
        boot_ms, t = 500 * k, 1000.0 + 0.5 * k
        feed(seven.frame(dialect.MAVLink_global_position_int_message(
            boot_ms, 228_400_000, 141_300_000, 700_000, 0, 0, 0, 0, 0)), t)  # fmt: skip
        feed(seven.frame(dialect.MAVLink_attitude_message(boot_ms, 0, 0, 0.3, 0, 0, 0)), t)
    feed(seven.frame(dialect.MAVLink_sys_status_message(0, 0, 0, 0, 12_000, 500, 76, 0, 0, 0,
                                                        0, 0, 0)), 1001.0)  # fmt: skip
    seven.mav.seq += 2
    spoiled = bytearray(seven.frame(heartbeat()))
    spoiled[-3] ^= 0xFF  # the checksum's low byte
    feed(bytes(spoiled), 1002.0)
    feed(seven.frame(heartbeat()), 1003.0)
    feed(Vehicle(9).frame(heartbeat()), 995.0)
    feed(Vehicle(11).frame(dialect.MAVLink_attitude_message(0, 0, 0, 0, 0, 0, 0)), 1003.0)


def play_file_to_its_end(tmp_path) -> CameraDriver:
    """A camera driver over a 6-frame video (one frame black), run to its end unread: the
    5 good frames are accepted, 4 of them dropped for a newer one, the last waits."""
    video = tmp_path / "gimbal.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 50.0, (160, 120))
    rng = np.random.default_rng(0)
    for k in range(6):
        image = np.zeros((120, 160), np.uint8) if k == 2 else rng.integers(40, 200, (120, 160))
        writer.write(cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_GRAY2BGR))
    writer.release()
    driver = CameraDriver(CameraConfig(str(video))).start()
    deadline = time.monotonic() + 20.0
    while not driver.status().ended and time.monotonic() < deadline:
        time.sleep(0.02)
    assert driver.status().ended
    return driver


def no_drone_pose(t):
    raise LookupError("no telemetry from drone 3")


def samples(registry) -> dict:
    """(sample name, labels without site and node) -> value; every sample has both."""
    found = {}
    for family in text_string_to_metric_families(prometheus_client.generate_latest(registry)
                                                 .decode()):  # fmt: skip
        assert family.name.startswith("dunewatch_edge_") and family.documentation
        for sample in family.samples:
            labels = dict(sample.labels)
            assert (labels.pop("site"), labels.pop("node")) == (SITE, NODE), sample
            found[sample.name, frozenset(labels.items())] = sample.value
    return found


def value(found: dict, name: str, **labels):
    return found[name, frozenset(labels.items())]


@pytest.fixture
def node(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", max_messages=5)
    uplink = Uplink(UplinkConfig(site=SITE, node=NODE), outbox)  # never started: no broker
    driver = MavlinkDriver(MavlinkConfig(LINK))  # never started: fed by hand
    fly(driver)
    georeferencer = Georeferencer(Camera.from_hfov(math.radians(60.0), 640, 480), POST)
    file_camera = play_file_to_its_end(tmp_path)
    cameras = [
        CameraPipeline("mast-eo", ScriptedSource([Frame(t, np.zeros((480, 640), np.uint8))
                                                  for t, _ in MAST_FRAMES]),
                       TwoPeople(), mast_pose, georeferencer),
        CameraPipeline("gimbal-eo", file_camera, TwoPeople(), no_drone_pose, georeferencer),
    ]  # fmt: skip
    node = EdgeNode(NodeSettings(SITE, NODE, POST, publish_period_s=0.5), Tracker(), uplink,
                    [driver], cameras, clock=lambda: SCRAPE_T)  # fmt: skip
    yield node
    file_camera.stop()
    outbox.close()


def test_the_exposition_carries_what_each_part_counted(node):
    for k in range(len(MAST_FRAMES)):
        node.step(1000.0 + 0.5 * k)  # each turn publishes a batch and drone 7's telemetry
    # Bad input straight to the tracker: a NaN, a covariance that is no covariance, and a
    # scan of three measurements older than the tracker's clock (1003).
    eye = np.eye(2) * 4.0
    node.tracker.update(1003.5, [[np.nan, 1.0], [5.0, 5.0]], [eye, eye])
    node.tracker.update(1003.6, [[5.0, 5.0]], [[[1.0, 2.0], [2.0, 1.0]]])
    node.tracker.update(1002.9, [[1.0, 1.0]] * 3, [eye] * 3)
    outbox = node.uplink.outbox
    outbox.delete_many([m.message_id for m in outbox.after(0, limit=2)])  # as PUBACKs would
    # The broker's callbacks move the uplink's counters; without a broker, set them here.
    c = node.uplink.counters
    c.published, c.acknowledged, c.backlog_sent, c.connects = 11, 9, 4, 2
    c.disconnects, c.publish_errors, c.connected = 1, 3, True

    found = samples(edge_registry(node))
    v = lambda name, **labels: value(found, name, **labels)  # noqa: E731

    # The loop: 8 mast frames and the file camera's last one. Good mast frames: 5, with two
    # detections each, of which the one above the horizon never reaches the ground.
    assert v("dunewatch_edge_frames_total") == 9
    assert v("dunewatch_edge_frames_skipped_total", reason="no_pose") == 2
    assert v("dunewatch_edge_frames_skipped_total", reason="out_of_order") == 1
    assert v("dunewatch_edge_detector_failures_total") == 1
    assert v("dunewatch_edge_detections_total") == 10
    assert v("dunewatch_edge_measurements_total") == 5
    assert v("dunewatch_edge_track_batches_total") == 8
    assert v("dunewatch_edge_telemetry_messages_total") == 8  # drone 7 only: 9 has no position

    # 16 messages into an outbox of 5: 11 dropped, then 2 delivered.
    assert v("dunewatch_edge_outbox_stored_total") == 16
    assert v("dunewatch_edge_outbox_dropped_total") == 11
    assert v("dunewatch_edge_outbox_delivered_total") == 2
    assert v("dunewatch_edge_outbox_depth") == 3
    assert v("dunewatch_edge_outbox_capacity") == 5
    assert [v(f"dunewatch_edge_uplink_{name}_total") for name in (
        "published", "acknowledged", "backlog_sent", "connects", "disconnects", "publish_errors",
    )] == [11, 9, 4, 2, 1, 3]  # fmt: skip
    assert v("dunewatch_edge_uplink_connected") == 1

    # The tracker: 5 scans from the loop, 2 of the bad-input ones (the stale one is refused).
    assert v("dunewatch_edge_tracker_scans_total") == 7
    assert v("dunewatch_edge_tracker_measurements_total") == 5 + 2 + 1
    assert v("dunewatch_edge_tracker_rejected_measurements_total", reason="non_finite") == 1
    assert v("dunewatch_edge_tracker_rejected_measurements_total", reason="bad_covariance") == 1
    assert v("dunewatch_edge_tracker_rejected_measurements_total", reason="stale_scan") == 3
    assert v("dunewatch_edge_tracker_stale_scans_total") == 1
    assert v("dunewatch_edge_tracks_born_total") == 2  # the person, then the NaN scan's (5, 5)
    assert v("dunewatch_edge_tracks_confirmed_total") == 1
    assert v("dunewatch_edge_confirmed_tracks") == 1  # the person the mast camera saw

    # Drones at the node's clock (1004), each with its link.
    seven, nine = {"sysid": "7", "link": LINK}, {"sysid": "9", "link": LINK}
    eleven = {"sysid": "11", "link": LINK}
    assert v("dunewatch_edge_drone_connected", **seven) == 1
    assert v("dunewatch_edge_drone_connected", **nine) == 0
    assert v("dunewatch_edge_drone_connected", **eleven) == 0  # no heartbeat yet
    assert v("dunewatch_edge_drone_link_losses_total", **nine) == 1
    assert v("dunewatch_edge_drone_link_losses_total", **seven) == 0
    assert v("dunewatch_edge_drone_heartbeat_age_seconds", **seven) == pytest.approx(1.0)
    assert v("dunewatch_edge_drone_heartbeat_age_seconds", **nine) == pytest.approx(9.0)
    assert v("dunewatch_edge_drone_packet_loss_ratio", **seven) == pytest.approx(3 / 12)
    assert v("dunewatch_edge_drone_packet_loss_ratio", **nine) == 0
    assert v("dunewatch_edge_drone_battery_remaining_ratio", **seven) == pytest.approx(0.76)
    assert ("dunewatch_edge_drone_battery_remaining_ratio", frozenset(nine.items())) not in found
    assert ("dunewatch_edge_drone_heartbeat_age_seconds", frozenset(eleven.items())) not in found

    # The link: 11 frames of 12 sent got through (drone 7's 9, drone 9's and 11's one each).
    assert v("dunewatch_edge_mavlink_frames_total", link=LINK) == 11
    assert v("dunewatch_edge_mavlink_messages_total", link=LINK) == 11
    assert v("dunewatch_edge_mavlink_rejected_frames_total", link=LINK, reason="bad_crc") == 1
    assert v("dunewatch_edge_mavlink_rejected_frames_total", link=LINK, reason="unsigned") == 0
    assert v("dunewatch_edge_mavlink_received_bytes_total", link=LINK) > 0
    assert v("dunewatch_edge_mavlink_connected", link=LINK) == 0  # never started

    # The camera driver, by its name in the node; the scripted mast camera keeps no status.
    assert v("dunewatch_edge_camera_frames_total", camera="gimbal-eo") == 5
    assert v("dunewatch_edge_camera_dropped_frames_total", camera="gimbal-eo") == 4
    assert v("dunewatch_edge_camera_rejected_frames_total", camera="gimbal-eo",
             reason="black") == 1  # fmt: skip
    assert v("dunewatch_edge_camera_reconnects_total", camera="gimbal-eo") == 0
    assert v("dunewatch_edge_camera_connected", camera="gimbal-eo") == 0  # played to its end
    assert v("dunewatch_edge_camera_fps", camera="gimbal-eo") >= 0
    assert not any(dict(labels).get("camera") == "mast-eo" for _, labels in found)


def test_values_are_read_when_scraped_and_stay_out_of_the_global_registry(node):
    registry = edge_registry(node)
    before = samples(registry)
    node.uplink.send("dunewatch/v1/tummo/west-1/test", b"x")
    node.tracker.update(1.0, [[np.inf, 0.0]], [np.eye(2)])
    after = samples(registry)
    assert value(after, "dunewatch_edge_outbox_stored_total") == 1
    assert value(after, "dunewatch_edge_outbox_depth") == 1
    assert value(before, "dunewatch_edge_outbox_depth") == 0
    assert value(after, "dunewatch_edge_tracker_rejected_measurements_total",
                 reason="non_finite") == 1  # fmt: skip
    assert b"dunewatch_edge" not in prometheus_client.generate_latest(prometheus_client.REGISTRY)
