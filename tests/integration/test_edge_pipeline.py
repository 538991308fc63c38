"""The node's whole sensing path on the small scenario: the drone's own telemetry (its tlog,
read by the MAVLink driver's core), its rendered thermal camera, the thermal detector,
georeferencing, the tracker, and track batches out through a real mosquitto. The people
the camera saw are where the batches say, as the scenario's truth has them."""

import getpass
import math
import threading

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.detection.thermal import ThermalDetector
from edge.drivers.framing import tlog_entries
from edge.drivers.mavlink import MavlinkConfig, MavlinkDriver
from edge.georef import Camera, Georeferencer
from edge.node import CameraPipeline, EdgeNode, NodeSettings
from edge.outbox import Outbox
from edge.run import ThermalScan, drone_pose
from edge.tracking import Tracker
from edge.uplink import Uplink, UplinkConfig
from hq.broker import BrokerProcess, free_tcp_port, write_broker_config
from sim_hw.camera import CameraSpec, render_drone_camera
from sim_hw.scenario import load_config
from sim_hw.truth import write_scenario
from tests.conftest import PROJECT_ROOT
from wire.geo import EnuFrame
from wire.messages import TrackBatch, decode

pytestmark = pytest.mark.integration

START_S, DURATION_S, FPS = 60.0, 40.0, 5.0


class RenderedSource:
    """The rendered frames, one per call, as a camera driver hands them on."""

    def __init__(self, frames):
        self.frames = iter(frames)

    def latest(self):
        return next(self.frames, None)


def test_rendered_thermal_camera_to_track_batches(tmp_path):
    scenario = load_config(PROJECT_ROOT / "configs" / "scenarios" / "small.toml")
    write_scenario(scenario, tmp_path)
    post = scenario.posts[0]
    frame = EnuFrame(post.lat, post.lon, post.alt)

    # The drone's telemetry up to the last frame, as the driver's core reads it at the
    # recorded times (its ring buffers hold the last 100 s, as on a live link).
    driver = MavlinkDriver(MavlinkConfig(url="udpin:127.0.0.1:0"))
    until = scenario.start_utc + START_S + DURATION_S + 1.0
    for stamp, raw in tlog_entries((tmp_path / "small-sysid1.tlog").read_bytes()):
        if stamp <= until:
            driver.receiver.feed_datagram(raw, stamp)

    spec = CameraSpec(width=640, height=360, mode="thermal", fps=FPS)
    rendered = list(render_drone_camera(scenario, 1, spec, START_S, DURATION_S, seed=2))
    people_seen = {t.target_id for f in rendered for t in f.targets if t.target_class == "person"}
    assert len(people_seen) >= 3, "the camera must see people for this test to mean anything"

    camera = Camera.from_hfov(math.radians(spec.hfov_deg), spec.width, spec.height)
    georeferencer = Georeferencer(camera, frame)
    pipeline = CameraPipeline("drone-1-thermal", RenderedSource(rendered),
                              ThermalScan(ThermalDetector(georeferencer)),
                              drone_pose([driver], 1), georeferencer)  # fmt: skip

    port = free_tcp_port()
    passwords = write_broker_config(tmp_path / "broker", [("small", "post-1")], port=port,
                                    bind="127.0.0.1", run_as=getpass.getuser())  # fmt: skip
    broker = BrokerProcess(tmp_path / "broker" / "mosquitto.conf", port).start()
    batches, arrived = [], threading.Condition()
    hq = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    hq.username_pw_set("hq", passwords["hq"])

    def on_message(client, userdata, message):
        item = decode(message.payload)
        if isinstance(item, TrackBatch):
            with arrived:
                batches.append(item)
                arrived.notify_all()

    hq.on_message = on_message
    hq.on_connect = lambda c, *_: c.subscribe("dunewatch/v1/#", qos=1)
    hq.connect("127.0.0.1", port)
    hq.loop_start()
    uplink = Uplink(UplinkConfig(site="small", node="post-1", port=port,
                                 username="small.post-1", password=passwords["small.post-1"]),
                    Outbox(tmp_path / "outbox.db"))  # fmt: skip
    node = EdgeNode(NodeSettings("small", "post-1", frame, publish_period_s=0.0), Tracker(),
                    uplink, cameras=[pipeline], clock=lambda: rendered[-1].time)  # fmt: skip
    try:
        uplink.start()
        while node.step(rendered[-1].time):
            pass
        node.publish_tracks(rendered[-1].time)
        with arrived:
            # Nobody here confirms batches as HQ does, so the uplink sends them again after
            # its confirmation timeout: repeats may arrive, each seq counts once.
            assert arrived.wait_for(lambda: len({b.seq for b in batches}) >= node.counters.batches,
                                    timeout=20)  # fmt: skip
        uplink.stop()
    finally:
        hq.loop_stop()
        broker.kill()

    assert node.counters.frames == len(rendered)
    assert node.counters.frames_without_pose == 0
    assert node.counters.measurements > len(rendered)  # people seen in most frames
    final = max(batches, key=lambda b: b.seq)
    assert final.seq == uplink.outbox.first_seq + node.counters.batches - 1 and final.tracks
    # Every person in the last frame is within 5 m of a confirmed track, and every track
    # lies within 8 m of something warm the camera saw (people, camels, the pickup's
    # engine): no track where nothing is.
    tracks = np.array([t.position_enu for t in final.tracks])
    people = _last_positions(rendered, {"person"})
    anything = _last_positions(rendered, {"person", "animal", "vehicle"})
    to_track = np.min(np.linalg.norm(people[:, None] - tracks[None], axis=2), axis=1)
    to_anything = np.min(np.linalg.norm(tracks[:, None] - anything[None], axis=2), axis=1)
    assert np.all(to_track < 5.0), to_track
    assert np.all(to_anything < 8.0), to_anything
    # The three walkers side by side: however many tracks the node keeps for them, the
    # tracks near them stand for three people, no more (each detection counted once).
    walkers = _last_positions(rendered, {"person"}, group="walkers")
    assert len(walkers) == 3
    near = [t for t in final.tracks
            if np.min(np.linalg.norm(walkers - t.position_enu, axis=1)) < 5.0]  # fmt: skip
    assert sum(t.count for t in near) == 3, [(t.track_id, t.count) for t in near]


def _last_positions(rendered, classes, group: str | None = None) -> np.ndarray:
    """Ground positions (ENU) of the targets of `classes` (of one group, `group-k` ids,
    where given) in view in the last second."""
    last = {}
    for frame in rendered:
        for target in frame.targets:
            in_group = group is None or target.target_id.startswith(f"{group}-")
            if target.target_class in classes and in_group:
                last[target.target_id] = (frame.time, target.ground_enu)
    newest = rendered[-1].time
    return np.array([p for t, p in last.values() if newest - t < 1.0])
