"""HQ's shipped configuration loads, and its alert settings reach the detectors."""

import tomllib

import pytest
from pydantic import ValidationError

from hq.config import HqConfig, load_config
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.unit

SHIPPED = PROJECT_ROOT / "configs" / "hq.toml"


def test_the_shipped_config_loads_and_feeds_the_alert_detectors():
    config = load_config(SHIPPED)
    alerts = config.alert_config()
    assert alerts.border == tuple(map(tuple, config.border)) and len(alerts.border) == 3
    assert [p.name for p in alerts.places] == ["tummo-west post", "tummo-east post"]
    assert alerts.distress_dwell_s == 600.0
    assert config.broker.password.env == "DUNEWATCH_HQ_MQTT_PASSWORD"


@pytest.mark.parametrize("spoil, reason", [
    (lambda c: c.update(border=[[23.0, 14.0]]), "at least 2"),
    (lambda c: c["alerts"].update(distress_dwell_s=0), "greater than 0"),
    (lambda c: c["broker"].update(password={"env": "A", "file": "/b"}), "exactly one"),
    (lambda c: c.update(retention_days=3), "retention_days"),
])  # fmt: skip
def test_a_bad_config_is_refused_with_the_reason(spoil, reason):
    with open(SHIPPED, "rb") as f:
        raw = tomllib.load(f)
    spoil(raw)
    with pytest.raises(ValidationError, match=reason):
        HqConfig.model_validate(raw)
