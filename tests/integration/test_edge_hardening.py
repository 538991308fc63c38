"""The edge under hostile conditions: a MAVLink signing key file of 32 raw bytes (not
UTF-8) starts `python -m edge run`; a full disk under the outbox never ends the node's
loop: it goes on tracking and publishing, drops the oldest messages to make room, counts
and tells HQ with an alert, through a real mosquitto.

The full disk is the outbox file's quota (`max_file_bytes`, SQLite's max_page_count):
SQLite answers SQLITE_FULL when the file would grow past it, exactly as on a full file
system, without filling a disk shared with others."""

import getpass
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.node import EdgeNode, NodeSettings
from edge.outbox import Outbox
from edge.tracking import Tracker
from edge.uplink import Uplink, UplinkConfig
from hq.broker import BrokerProcess, free_tcp_port, write_broker_config
from tests.integration.test_sigterm import wait_for_output
from tests.unit.test_track_classes import tracks
from wire.geo import EnuFrame
from wire.messages import decode

pytestmark = pytest.mark.integration


def test_a_raw_32_byte_signing_key_file_is_read(tmp_path):
    key = tmp_path / "signing.key"
    key.write_bytes(bytes([0xFF, 0x0A, 0x20, 0x00] * 8))  # not UTF-8; ends in whitespace bytes
    config = tmp_path / "node.toml"
    config.write_text('site = "s"\nnode = "n"\n[post]\nlat = 22.8\nlon = 14.1\nalt = 600.0\n'
                      f'[uplink]\nport = 9\noutbox = "{tmp_path / "outbox.db"}"\n'
                      f'[[mavlink]]\nurl = "udpin:127.0.0.1:0"\n'
                      f'signing_key = {{ file = "{key}" }}\n')  # fmt: skip
    node = subprocess.Popen(
        [sys.executable, "-m", "edge", "run", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        wait_for_output(node, "node running", 300)
        node.send_signal(signal.SIGTERM)
        output, _ = node.communicate(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()
    assert node.returncode == 0, output[-2000:]


def test_a_full_disk_under_the_outbox_never_ends_the_node_loop(tmp_path):
    port = free_tcp_port()
    passwords = write_broker_config(tmp_path / "broker", [("s", "n")], port=port,
                                    bind="127.0.0.1", run_as=getpass.getuser())  # fmt: skip
    broker = BrokerProcess(tmp_path / "broker" / "mosquitto.conf", port).start()
    alerts = []
    hq = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    hq.username_pw_set("hq", passwords["hq"])
    hq.on_connect = lambda c, *_: c.subscribe("dunewatch/v1/+/+/alerts", qos=1)
    hq.on_message = lambda c, u, m: alerts.append(decode(m.payload))
    hq.connect("127.0.0.1", port)
    hq.loop_start()
    # No HQ confirms anything, so the outbox only grows: into a 96 kB file.
    outbox = Outbox(tmp_path / "outbox.db", first_seq=0, max_file_bytes=96 * 1024)
    uplink = Uplink(UplinkConfig(site="s", node="n", port=port, username="s.n",
                                 password=passwords["s.n"]), outbox)  # fmt: skip
    settings = NodeSettings("s", "n", EnuFrame(22.0, 14.0, 600.0), publish_period_s=0.01,
                            status_period_s=1e9)  # fmt: skip
    node = EdgeNode(settings, Tracker(), uplink)
    # Forty confirmed tracks: each batch is some 20 kB, the file holds a handful.
    node._tracks = tracks(*[(10.0 * k, 5.0 * k, 1.0, 0.0) for k in range(40)])
    stop = threading.Event()
    loop = threading.Thread(target=node.run, args=(stop,), daemon=True)
    try:
        loop.start()
        deadline = time.monotonic() + 30
        while outbox.counters.dropped_disk_full < 50 and time.monotonic() < deadline:
            assert loop.is_alive()
            time.sleep(0.1)
        batches = node.counters.batches
        time.sleep(1.0)
        assert loop.is_alive() and node.counters.batches > batches  # it goes on
        assert outbox.counters.dropped_disk_full >= 50  # the oldest made room
        assert outbox.counters.stored == node.counters.batches  # every new batch found room
        deadline = time.monotonic() + 10
        while not alerts and time.monotonic() < deadline:
            time.sleep(0.1)
        (alert,) = [a for a in alerts if a.alert_id == "outbox-disk-full"]
        assert alert.alert_type == "outbox" and alert.severity == "critical"
        assert "disk under the outbox is full" in alert.message
    finally:
        stop.set()
        loop.join(30)
        hq.loop_stop()
        hq.disconnect()
        broker.kill()
    assert not loop.is_alive()
