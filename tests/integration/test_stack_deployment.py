"""The whole stack's deployment: a part that fails to start leaves nothing running."""

from __future__ import annotations

import pytest

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
