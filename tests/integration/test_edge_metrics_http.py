"""The edge node's /metrics over a real socket: served in-process while the loop turns, and
by `python -m edge run` from its config's [metrics] port until the process stops."""

import math
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pymavlink.dialects.v20 import ardupilotmega as dialect

from edge.detection import Detection
from edge.georef import Camera, Georeferencer
from edge.georef import Pose as CameraPose
from edge.metrics import MetricsServer, edge_registry
from edge.node import CameraPipeline, EdgeNode, NodeSettings
from edge.outbox import Outbox
from edge.tracking import Tracker
from edge.uplink import Uplink, UplinkConfig
from hq.broker import free_tcp_port
from stack.process import Service, free_udp_port
from wire.geo import EnuFrame

pytestmark = pytest.mark.integration

POST = EnuFrame(22.84, 14.13, 620.0)


def scrape(port: int) -> dict:
    """GET /metrics: (sample name, labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        assert response.headers.get_content_type() == "text/plain"
        text = response.read().decode()
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples}  # fmt: skip


def labelled(site, node, **labels) -> frozenset:
    return frozenset({"site": site, "node": node, **labels}.items())


def refused(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2)
    except urllib.error.URLError as error:
        return isinstance(error.reason, ConnectionRefusedError)
    return False


@dataclass
class Frame:
    time: float
    image: np.ndarray


class OneFrameAtATime:
    def __init__(self):
        self.frames = []

    def latest(self):
        return self.frames.pop(0) if self.frames else None


class OnePerson:
    def detect(self, t, image, pose):
        return [Detection((300, 200, 340, 280), (320, 240), np.eye(2) * 4.0, "person", 0.9)]


def mast_pose(t):
    return CameraPose(POST.lat, POST.lon, POST.alt + 12.0, 0.0, 0.0, 0.0, 0.0,
                      math.radians(-10.0), math.radians(190.0), "earth")  # fmt: skip


def test_the_endpoint_shows_the_loop_moving_and_frees_its_port_when_stopped(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db")
    uplink = Uplink(UplinkConfig(site="tummo", node="west-1"), outbox)  # no broker: all stays
    source = OneFrameAtATime()
    georeferencer = Georeferencer(Camera.from_hfov(math.radians(60.0), 640, 480), POST)
    node = EdgeNode(NodeSettings("tummo", "west-1", POST, publish_period_s=0.5), Tracker(),
                    uplink, cameras=[CameraPipeline("mast-eo", source, OnePerson(), mast_pose,
                                                    georeferencer)])  # fmt: skip
    server = MetricsServer(edge_registry(node), port=0)  # a free port
    here = labelled("tummo", "west-1")
    try:
        first = scrape(server.port)
        for k in range(4):
            source.frames.append(Frame(1000.0 + k, np.zeros((480, 640), np.uint8)))
            node.step(1000.0 + k)
        second = scrape(server.port)
    finally:
        server.stop()
    for name, before, after in [
        ("dunewatch_edge_frames_total", 0, 4),
        ("dunewatch_edge_measurements_total", 0, 4),
        ("dunewatch_edge_tracker_scans_total", 0, 4),
        ("dunewatch_edge_track_batches_total", 0, 4),
        ("dunewatch_edge_outbox_depth", 0, 4),  # the batches, waiting for a broker
        ("dunewatch_edge_confirmed_tracks", 0, 1),
    ]:  # fmt: skip
        assert (first[name, here], second[name, here]) == (before, after), name
    assert refused(server.port)
    outbox.close()


def test_edge_run_serves_its_metrics_port_until_it_stops(tmp_path):
    metrics_port, broker_port = free_tcp_port(), free_tcp_port()  # no broker listens there
    mavlink_port = free_udp_port()
    outbox = tmp_path / "outbox.db"
    config = tmp_path / "node.toml"
    config.write_text(f"""
site = "tummo"
node = "west-1"
[post]
lat = 22.84
lon = 14.13
alt = 620.0
[uplink]
port = {broker_port}
outbox = "{outbox}"
[[mavlink]]
url = "udpin:127.0.0.1:{mavlink_port}"
[metrics]
port = {metrics_port}
""")
    node = Service("node", ["edge", "run", "--config", str(config)]).start()
    link = f"udpin:127.0.0.1:{mavlink_port}"
    here = labelled("tummo", "west-1", link=link)
    drone = labelled("tummo", "west-1", link=link, sysid="5")
    try:
        node.wait_for_line("node running")  # the kernels warm first
        first = scrape(metrics_port)
        mav = dialect.MAVLink(None, srcSystem=5, srcComponent=1)
        beat = dialect.MAVLink_heartbeat_message(dialect.MAV_TYPE_QUADROTOR,
                                                 dialect.MAV_AUTOPILOT_ARDUPILOTMEGA, 0, 0,
                                                 dialect.MAV_STATE_ACTIVE, 3)  # fmt: skip
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as radio:
            deadline = time.monotonic() + 20
            second = first
            while ("dunewatch_edge_drone_connected", drone) not in second:
                assert time.monotonic() < deadline, node.tail()
                radio.sendto(bytes(beat.pack(mav)), ("127.0.0.1", mavlink_port))
                mav.seq = (mav.seq + 1) % 256
                time.sleep(0.2)
                second = scrape(metrics_port)
        assert node.stop() == 0, node.tail()
    finally:
        node.kill()
    assert first[("dunewatch_edge_mavlink_frames_total", here)] == 0
    assert second[("dunewatch_edge_mavlink_frames_total", here)] >= 1
    assert second[("dunewatch_edge_mavlink_connected", here)] == 1
    assert second[("dunewatch_edge_drone_connected", drone)] == 1
    assert second[("dunewatch_edge_uplink_connected", labelled("tummo", "west-1"))] == 0
    assert refused(metrics_port)
