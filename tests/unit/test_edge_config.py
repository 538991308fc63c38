"""The node's configuration: the shipped file loads; mistakes and missing secrets are named."""

import tomllib

import pytest
from pydantic import ValidationError

from edge.config import EdgeConfig, load_config
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
