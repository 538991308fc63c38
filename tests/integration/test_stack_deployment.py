"""The whole stack's deployment: a part that fails to start leaves nothing running."""

from __future__ import annotations

import pytest

from hq.config import load_config as load_hq_config
from stack.deployment import Deployment, StackOptions
from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.integration


class NodeConfigFails(Deployment):
    """A deployment whose node config cannot be written, after the broker and HQ started."""

    def _write_node_config(self, *args, **kwargs):
        self.started = [self.broker.process, self.services["hq"].process]
        raise OSError("disk full")


def test_a_part_that_fails_to_start_stops_the_parts_already_running(tmp_path):
    deployment = NodeConfigFails(PROJECT_ROOT / "configs" / "scenarios" / "small.toml",
                                 tmp_path, StackOptions())  # fmt: skip
    with pytest.raises(OSError, match="disk full"):
        with deployment:
            pytest.fail("the deployment should not have started")
    broker, hq = deployment.started
    assert broker.poll() is not None, "mosquitto still running"
    assert hq.poll() is not None, "HQ still running"


def test_the_hq_config_a_deployment_writes_loads_as_it_meant(tmp_path):
    options = StackOptions(api_port=8123, distress_dwell_s=99.0, place_radius_m=250.0)
    deployment = Deployment(PROJECT_ROOT / "configs" / "scenarios" / "small.toml", tmp_path,
                            options)  # fmt: skip
    config = load_hq_config(deployment._write_hq_config())
    posts = deployment.scenario.posts
    assert config.origin == (posts[0].lat, posts[0].lon, posts[0].alt)
    assert config.border == deployment.scenario.border
    assert config.store == str(deployment.database)
    assert [(p.name, p.radius_m) for p in config.places] == [(f"{p.name} post", 250.0)
                                                             for p in posts]  # fmt: skip
    assert (config.broker.port, config.broker.password.env) == (deployment.broker_port,
                                                                "DUNEWATCH_HQ_MQTT_PASSWORD")
    assert config.alerts.distress_dwell_s == 99.0
    assert config.api.port == 8123  # its tokens are in the store
