"""The edge node as a process: a replayed drone in over UDP, HQ's view out over a real
mosquitto with the project's ACL, and a clean stop on SIGTERM."""

import getpass
import json
import subprocess
import sys
import threading
from importlib.metadata import version

import numpy as np
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from pyproj import Geod

from hq.broker import BrokerProcess, free_tcp_port, write_broker_config
from sim_hw.__main__ import main as sim_main
from stack.process import Service, free_udp_port
from wire.messages import NodeStatus, VehicleTelemetry, decode

pytestmark = pytest.mark.integration


class Collector:
    def __init__(self, port, password):
        self.messages = []
        self.changed = threading.Condition()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        self.client.username_pw_set("hq", password)
        self.client.on_connect = lambda c, *_: c.subscribe("dunewatch/v1/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message):
        with self.changed:
            self.messages.append(decode(message.payload))
            self.changed.notify_all()

    def wait_for(self, predicate, timeout=30.0):
        with self.changed:
            return self.changed.wait_for(lambda: predicate(self.messages), timeout)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def test_node_relays_its_drone_and_stops_cleanly(tmp_path):
    tlog = tmp_path / "flight.tlog"
    assert sim_main(["generate", "--out", str(tlog), "--duration", "120", "--sysid", "3"]) == 0
    truth = [json.loads(line) for line in open(f"{tlog}.truth.jsonl")]

    port = free_tcp_port()
    passwords = write_broker_config(tmp_path / "broker", [("tummo", "west-1")], port=port,
                                    bind="127.0.0.1", run_as=getpass.getuser())  # fmt: skip
    broker = BrokerProcess(tmp_path / "broker" / "mosquitto.conf", port).start()
    mavlink_port = free_udp_port()
    config = tmp_path / "node.toml"
    config.write_text(f"""
site = "tummo"
node = "west-1"
[post]
lat = 22.694
lon = 14.180
alt = 700.0
[uplink]
port = {port}
username = "tummo.west-1"
password = {{ env = "NODE_MQTT_PASSWORD" }}
outbox = "{tmp_path / 'outbox.db'}"
status_period_s = 1.0
[[mavlink]]
url = "udpin:127.0.0.1:{mavlink_port}"
""")
    hq = Collector(port, passwords["hq"])
    node = Service("node", ["edge", "run", "--config", str(config)],
                   {"NODE_MQTT_PASSWORD": passwords["tummo.west-1"]}).start()
    replay = None
    try:
        # The node warms its kernels first (tens of seconds on a cold cache); then the
        # drone flies.
        node.wait_for_line("node running")
        replay = subprocess.Popen(
            [sys.executable, "-m", "sim_hw", "replay", str(tlog), "--to",
             f"udpout:127.0.0.1:{mavlink_port}", "--speed", "1", "--restamp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        telemetry = lambda ms: [m for m in ms if isinstance(m, VehicleTelemetry)]  # noqa: E731
        assert hq.wait_for(lambda ms: len(telemetry(ms)) >= 20, timeout=40), node.tail()
        assert hq.wait_for(lambda ms: any(isinstance(m, NodeStatus) and m.drones for m in ms))
        assert node.stop() == 0, node.tail()
        assert hq.wait_for(lambda ms: isinstance(ms[-1], NodeStatus)
                           and ms[-1].state == "offline", timeout=10)  # fmt: skip
    finally:
        if replay is not None:
            replay.kill()
        node.kill()
        hq.close()
        broker.kill()

    # Each relayed position lies on the true track (within 1 m), and the time the node
    # gives it is the true time of that point shifted by one constant: the re-stamp.
    geod = Geod(ellps="WGS84")
    true_lat = np.array([row["lat"] for row in truth])
    true_lon = np.array([row["lon"] for row in truth])
    true_t = np.array([row["t"] for row in truth])
    shifts = []
    for message in telemetry(hq.messages):
        *_, distances = geod.inv(true_lon, true_lat, np.full_like(true_lon, message.lon),
                                 np.full_like(true_lat, message.lat))  # fmt: skip
        nearest = int(np.argmin(distances))
        assert distances[nearest] < 1.0
        shifts.append(message.time - true_t[nearest])
    moving = [s for s, m in zip(shifts, telemetry(hq.messages), strict=True)
              if np.hypot(*m.velocity_enu[:2]) > 2.0]  # fmt: skip
    assert len(moving) >= 5 and np.ptp(moving) < 0.3
    status = next(m for m in hq.messages if isinstance(m, NodeStatus) and m.drones)
    assert status.drones[0].sysid == 3 and status.drones[0].connected
    assert status.software_version == version("dunewatch")  # the installed package's
