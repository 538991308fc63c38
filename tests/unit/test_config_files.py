"""Configs written by code: a model written as TOML loads back as the same model, whatever
its strings hold."""

from pathlib import Path

import pytest

from edge.config import (
    CameraSection,
    EdgeConfig,
    MavlinkLink,
    MetricsSection,
    PostConfig,
    TrackingSection,
    UplinkSection,
)
from edge.config import load_config as load_edge_config
from hq.config import (
    AlertSection,
    ApiSection,
    BrokerSection,
    HqConfig,
    PlaceSection,
    StreamSection,
    ZoneSection,
)
from hq.config import load_config as load_hq_config
from hq.tak import TakConfig
from sim_hw.live import LiveCamera
from sim_hw.scenario import PostConfig as ScenarioPost
from stack.config_files import config_toml, write_config
from stack.deployment import node_config
from tests.conftest import PROJECT_ROOT
from wire.secrets import SecretRef

pytestmark = pytest.mark.unit

# What a string written into TOML by formatting would break on.
AWKWARD = 'a "quoted" word, a back\\slash, \\n as text, a tab\t, a newline\n, ünïcode ✓ \'"""'


def awkward_edge_config(tmp_path: Path) -> EdgeConfig:
    return EdgeConfig(
        site="tummo", node="west-1", post=PostConfig(lat=22.84, lon=14.13, alt=620.0),
        uplink=UplinkSection(host="broker.example", port=8883, username=AWKWARD,
                             password=SecretRef(file=tmp_path / 'key "one"\\x'),
                             ca_file=Path('/etc/ca "dir"/ca.pem'),
                             outbox=tmp_path / "out'box\".db", drain_rate=12.5),
        mavlink=[MavlinkLink(url="udpin:0.0.0.0:14550", signing_key=SecretRef(env="KEY")),
                 MavlinkLink(url="tcp:10.0.0.2:5760")],
        cameras=[CameraSection(name="drone-1-eo", source=f"rtsp://10.0.0.2/{AWKWARD}",
                               hfov_deg=60.0, width=1280, height=720, drone_sysid=1),
                 CameraSection(name="mast", source="/dev/video0", mode="thermal", hfov_deg=24.0,
                               width=640, height=512, mast=(22.8402, 14.1302, 12.0),
                               mast_pan_deg=190.0, mast_tilt_deg=-8.0)],
        tracking=TrackingSection(association="gnn", birth_density=1e-7, process_noise=0.2,
                                 max_coast_time_s=4.0, publish_rate_hz=5.0),
        metrics=MetricsSection(port=9464, bind="0.0.0.0"),
    )  # fmt: skip


def awkward_hq_config(tmp_path: Path) -> HqConfig:
    return HqConfig(
        origin=(22.84, 14.13, 620.0), border=[(23.52, 11.99), (22.79, 14.22), (23.0, 15.0)],
        home=(22.84, 14.13), store=str(tmp_path / 'h"q\\.db'),
        zones=[ZoneSection(name=AWKWARD, polygon=[(22.8, 14.1), (22.9, 14.1), (22.9, 14.2)])],
        places=[PlaceSection(name=f"well {AWKWARD}", lat=22.8, lon=14.2, radius_m=500.0)],
        broker=BrokerSection(host="10.0.0.1", username="h\"q", client_id=AWKWARD,
                             password=SecretRef(env="DUNEWATCH_HQ_MQTT_PASSWORD")),
        alerts=AlertSection(distress_dwell_s=90.0, battery_low=0.3),
        api=ApiSection(port=0, cors_origins=[AWKWARD, "https://x"],
                       stream=StreamSection(tick_s=0.25)),
        tak=TakConfig(host="tak.example", port=8087, period_s=2.0),
    )  # fmt: skip


def test_an_edge_config_round_trips_whatever_its_strings_hold(tmp_path):
    model = awkward_edge_config(tmp_path)
    path = write_config(tmp_path / "node.toml", model, "written by a test\nsecond line")
    assert load_edge_config(path) == model
    assert path.read_text().startswith("# written by a test\n# second line\n")


def test_an_hq_config_round_trips_whatever_its_strings_hold(tmp_path):
    model = awkward_hq_config(tmp_path)
    path = write_config(tmp_path / "hq.toml", model, "written by a test")
    assert load_hq_config(path) == model


@pytest.mark.parametrize("shipped, load", [
    (PROJECT_ROOT / "configs" / "edge" / "tummo-west.toml", load_edge_config),
    (PROJECT_ROOT / "configs" / "hq.toml", load_hq_config),
])  # fmt: skip
def test_the_shipped_configs_round_trip(tmp_path, shipped, load):
    model = load(shipped)
    assert load(write_config(tmp_path / shipped.name, model, "copy")) == model


def test_only_what_differs_from_the_defaults_is_written(tmp_path):
    text = config_toml(awkward_edge_config(tmp_path))
    assert "association" in text and "publish_rate_hz" in text  # set
    assert "gate_probability" not in text and "latency_s" not in text  # left at the default


def test_a_deployments_node_config_loads_with_its_links_and_cameras(tmp_path):
    post = ScenarioPost(name="east-1", lat=22.875, lon=14.45, alt=640.0)
    cameras = [LiveCamera(sysid=2, port=9000, mode="thermal", width=640, height=360),
               LiveCamera(sysid=None, port=9001, hfov_deg=12.0,
                          mast=(22.875, 14.45, 12.0, 190.0, -3.5))]  # fmt: skip
    model = node_config("tummo", post, 1884, tmp_path / "outbox.db",
                        ["udpin:127.0.0.1:14550", "udpin:127.0.0.1:14551"], cameras,
                        status_period_s=2.0, password_env="PW")  # fmt: skip
    loaded = load_edge_config(write_config(tmp_path / "node.toml", model, "deployment"))
    assert loaded == model
    assert (loaded.site, loaded.node, loaded.post.alt) == ("tummo", "east-1", 640.0)
    assert (loaded.uplink.port, loaded.uplink.password.env) == (1884, "PW")
    assert [link.url for link in loaded.mavlink] == ["udpin:127.0.0.1:14550",
                                                     "udpin:127.0.0.1:14551"]  # fmt: skip
    drone, mast = loaded.cameras
    assert (drone.drone_sysid, drone.mode, drone.source) == (2, "thermal", cameras[0].url)
    assert mast.mast == (22.875, 14.45, 12.0) and mast.mast_tilt_deg == -3.5
