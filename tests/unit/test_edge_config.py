"""The node's configuration: the shipped file loads; mistakes and missing secrets are named."""

import tomllib

import pytest
from pydantic import ValidationError

from edge.config import EdgeConfig, TrackerConfig, load_config
from edge.run import build_node
from tests.conftest import PROJECT_ROOT
from wire.secrets import SecretRef, secret

pytestmark = pytest.mark.unit

SHIPPED = PROJECT_ROOT / "configs" / "edge" / "tummo-west.toml"


def test_the_shipped_config_loads_with_its_cameras_and_links():
    config = load_config(SHIPPED)
    assert (config.site, config.node) == ("tummo", "west-1")
    assert [c.name for c in config.cameras] == ["drone-1-eo", "mast-thermal"]
    assert config.cameras[0].drone_sysid == 1 and config.cameras[1].mast is not None
    assert config.uplink.password.env == "DUNEWATCH_MQTT_PASSWORD"
    assert (config.metrics.port, config.metrics.bind) == (9464, "127.0.0.1")


def test_metrics_are_off_unless_a_port_is_set():
    with open(SHIPPED, "rb") as f:
        raw = tomllib.load(f)
    del raw["metrics"]
    assert EdgeConfig.model_validate(raw).metrics.port is None
    raw["metrics"] = {"port": 9100}
    metrics = EdgeConfig.model_validate(raw).metrics
    assert (metrics.port, metrics.bind) == (9100, "127.0.0.1")


@pytest.mark.parametrize("spoil, reason", [
    (lambda c: c["cameras"][0].update(mast=[22.8, 14.1, 10.0]), "exactly one of drone_sysid"),
    (lambda c: c["cameras"][1].update(name="drone-1-eo"), "names must differ"),
    (lambda c: c["uplink"].update(pasword={"env": "X"}), "pasword"),
    (lambda c: c["uplink"].update(password={"env": "X", "file": "/k"}), "exactly one of env"),
    (lambda c: c.update(node="west/1"), "pattern"),
    (lambda c: c["post"].update(lat=123.0), "less than or equal to 90"),
    (lambda c: c["metrics"].update(port=70000), "less than or equal to 65535"),
    (lambda c: c["metrics"].update(port=0), "greater than or equal to 1"),
    (lambda c: c["metrics"].update(addr="0.0.0.0"), "addr"),
    (lambda c: c["tracking"].update(procss_noise=0.1), "procss_noise"),
    (lambda c: c["tracking"].update(association="pda"), "'jpda' or 'gnn'"),
    (lambda c: c["tracking"].update(detection_probability=1.0), "less than 1"),
    (lambda c: c["tracking"].update(max_coast_time=5.0), "max_coast_time\n"),
])  # fmt: skip
def test_a_bad_config_is_refused_with_the_reason(spoil, reason):
    with open(SHIPPED, "rb") as f:
        raw = tomllib.load(f)
    spoil(raw)
    with pytest.raises(ValidationError, match=reason):
        EdgeConfig.model_validate(raw)


def test_secrets_come_from_the_environment_or_a_file(tmp_path, monkeypatch):
    key = tmp_path / "key"
    key.write_text("0123abcd\n")
    assert secret(SecretRef(file=key)) == "0123abcd"
    monkeypatch.setenv("DW_TEST_SECRET", "s3cret")
    assert secret(SecretRef(env="DW_TEST_SECRET")) == "s3cret"
    monkeypatch.delenv("DW_TEST_SECRET")
    with pytest.raises(ValueError, match="DW_TEST_SECRET is not set"):
        secret(SecretRef(env="DW_TEST_SECRET"))
    with pytest.raises(ValueError, match="cannot read secret file"):
        secret(SecretRef(file=tmp_path / "absent"))
    assert secret(None) is None


# A value other than the default for each of the tracker's parameters.
TRACKER_SETTINGS = {
    "process_noise": 0.2, "detection_probability": 0.8, "clutter_density": 3e-5,
    "birth_density": 1e-7, "initial_velocity_std": 2.0, "gate_probability": 0.99,
    "association": "gnn", "max_jpda_events": 500, "confirm_score": 8.0,
    "tentative_delete_score": -5.0, "confirmed_delete_drop": 9.0, "max_coast_time_s": 4.0,
    "max_position_std": 50.0,
    "class_limits": {"person": {"max_speed": 4.0, "max_acceleration": 2.0, "max_coast_s": 9.0}},
    "clutter_cell_m": 5.0, "clutter_half_life_s": 60.0, "clutter_detections_per_hit": 2.0,
    "clutter_max_extra_hits": 5, "moving_speed": 1.0,
}  # fmt: skip


def as_toml_value(value):
    """A config value as the TOML would have given it (a nested model as its table)."""
    return value.model_dump(exclude_defaults=True) if hasattr(value, "model_dump") else value


def test_every_tracker_parameter_reaches_the_nodes_tracker_from_the_toml(tmp_path, monkeypatch):
    assert set(TRACKER_SETTINGS) == set(TrackerConfig.model_fields), "a parameter left out"
    assert all(TrackerConfig.model_fields[k].default != v for k, v in TRACKER_SETTINGS.items())
    with open(SHIPPED, "rb") as f:
        raw = tomllib.load(f)
    raw["tracking"] = {"publish_rate_hz": 4.0, **TRACKER_SETTINGS}
    # What build_node would otherwise reach for outside the test: /var/lib, a key file,
    # camera streams.
    raw["uplink"]["outbox"] = str(tmp_path / "outbox.db")
    raw["mavlink"], raw["cameras"] = [], []
    monkeypatch.setenv("DUNEWATCH_MQTT_PASSWORD", "pw")
    node = build_node(EdgeConfig.model_validate(raw))
    try:
        for name, value in TRACKER_SETTINGS.items():
            assert as_toml_value(getattr(node.tracker.config, name)) == value, name
        assert node.settings.publish_period_s == 0.25
    finally:
        node.uplink.outbox.close()


def test_the_tracker_and_the_node_share_one_set_of_defaults():
    section = EdgeConfig.model_validate({"site": "s", "node": "n",
                                         "post": {"lat": 0, "lon": 0, "alt": 0}}).tracking
    assert section.model_dump(exclude={"publish_rate_hz"}) == TrackerConfig().model_dump()
