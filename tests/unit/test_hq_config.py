"""HQ's shipped configuration loads, and its alert and fusion settings reach the detectors and
fusion."""

import json
import re
import tomllib

import pytest
from pydantic import ValidationError

from hq.config import HqConfig, load_config
from hq.fusion.config import FusionParameters
from hq.run import build_ingest
from hq.store.sqlite import SqliteStore
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


def test_the_shipped_config_serves_the_api_and_keeps_everything_in_one_store():
    config = load_config(SHIPPED)
    api = config.api
    assert (api.host, api.port, api.cors_origins) == ("127.0.0.1", 8080, [])
    assert api.stream.tick_s == 0.5 and "database" not in type(api).model_fields
    assert config.store == "/var/lib/dunewatch/hq.db"


def test_the_store_is_a_path_or_a_url_database_is_its_older_name_and_no_api_means_no_api():
    with open(SHIPPED, "rb") as f:
        raw = tomllib.load(f)
    raw["store"] = "postgresql://hq@db-1:5432/dunewatch"
    assert HqConfig.model_validate(raw).store == "postgresql://hq@db-1:5432/dunewatch"
    older = {k: v for k, v in raw.items() if k != "store"} | {"database": "/srv/hq/hq.db"}
    assert HqConfig.model_validate(older).store == "/srv/hq/hq.db"
    with pytest.raises(ValidationError, match="store"):
        HqConfig.model_validate(raw | {"database": "/srv/hq/hq.db"})
    with pytest.raises(ValidationError, match="database"):  # the API's own file is gone
        HqConfig.model_validate(raw | {"api": {"database": "/srv/hq/hq-api.db"}})
    del raw["api"]
    assert HqConfig.model_validate(raw).api is None  # ingest only


@pytest.mark.parametrize("spoil, reason", [
    (lambda api: api.update(port=70000), "less than or equal to 65535"),
    (lambda api: api.update(max_body_bytes=10), "greater than or equal to 1024"),
    (lambda api: api.update(auth_failures=0), "greater than or equal to 1"),
    (lambda api: api.update(cors="*"), "cors"),
    (lambda api: api["stream"].update(tick_s=0), "greater than 0"),
])  # fmt: skip
def test_a_bad_api_section_is_refused_with_the_reason(spoil, reason):
    with open(SHIPPED, "rb") as f:
        raw = tomllib.load(f)
    spoil(raw["api"])
    with pytest.raises(ValidationError, match=reason):
        HqConfig.model_validate(raw)


def test_a_tak_section_turns_the_cot_stream_on_and_a_bad_one_is_refused():
    with open(SHIPPED, "rb") as f:
        raw = tomllib.load(f)
    assert HqConfig.model_validate(raw).tak is None  # shipped commented out
    tak = HqConfig.model_validate({**raw, "tak": {"host": "10.0.0.5", "port": 8087}}).tak
    assert (tak.host, tak.port, tak.period_s) == ("10.0.0.5", 8087, 5.0)
    with pytest.raises(ValidationError, match="less than or equal to 65535"):
        HqConfig.model_validate({**raw, "tak": {"host": "10.0.0.5", "port": 80870}})


# Every fusion parameter, each at a value other than its default.
FUSION_SETTINGS = {
    "process_noise": 0.25, "gate_probability": 0.999, "informative_velocity_std": 3.0,
    "unknown_velocity_std": 40.0, "merge_updates": 2, "break_after_misses": 4,
    "switch_margin": 6.0, "switch_updates": 5, "late_tolerance": 1.0, "coast_after": 8.0,
    "end_after": 45.0, "ci_criterion": "trace", "unstated_class_belief": 0.7,
}  # fmt: skip


def test_the_shipped_fusion_section_lists_every_parameter_at_its_default():
    with open(SHIPPED, "rb") as f:
        raw = tomllib.load(f)
    assert raw["fusion"] == FusionParameters().model_dump()
    assert load_config(SHIPPED).fusion == FusionParameters()


def test_every_fusion_parameter_goes_from_the_toml_into_the_running_fusion(tmp_path):
    defaults = FusionParameters().model_dump()
    assert FUSION_SETTINGS.keys() == defaults.keys()
    assert all(FUSION_SETTINGS[name] != defaults[name] for name in defaults)
    section = "[fusion]\n" + "".join(f"{name} = {json.dumps(value)}\n"
                                     for name, value in FUSION_SETTINGS.items())  # fmt: skip
    text, replaced = re.subn(r"\[fusion\]\n(?:[^\[\n].*\n|\n)*", section + "\n",
                             SHIPPED.read_text())  # fmt: skip
    assert replaced == 1
    path = tmp_path / "hq.toml"
    path.write_text(text)
    config = load_config(path)
    assert config.fusion.model_dump() == FUSION_SETTINGS
    assert tomllib.loads(section)["fusion"] == FUSION_SETTINGS  # what was written reads back

    store = SqliteStore(tmp_path / "hq.db")
    try:
        running = build_ingest(config, store).fusion.config
    finally:
        store.close()
    assert {name: getattr(running, name) for name in FUSION_SETTINGS} == FUSION_SETTINGS
    assert running.origin == tuple(config.origin) and running.first_global_id == 1


@pytest.mark.parametrize("spoil, reason", [
    (lambda fusion: fusion.update(coast_after=60.0), "coast_after must be below end_after"),
    (lambda fusion: fusion.update(merge_updates=0), "greater than or equal to 1"),
    (lambda fusion: fusion.update(ci_criterion="sum"), "determinant"),
    (lambda fusion: fusion.update(gate=3.0), "gate"),
    (lambda fusion: fusion.update(origin=[0.0, 0.0, 0.0]), "origin"),  # HQ's, not fusion's
])  # fmt: skip
def test_a_bad_fusion_section_is_refused_with_the_reason(spoil, reason):
    with open(SHIPPED, "rb") as f:
        raw = tomllib.load(f)
    spoil(raw["fusion"])
    with pytest.raises(ValidationError, match=reason):
        HqConfig.model_validate(raw)
