"""When the node publishes: at its rate, and at once when confirmed tracks come or go."""

from __future__ import annotations

import numpy as np
import pytest

from edge.node import EdgeNode, NodeSettings
from edge.outbox import Outbox
from edge.tracking import Tracker
from edge.uplink import Uplink, UplinkConfig
from tests.unit.test_track_classes import tracks
from wire.geo import EnuFrame

pytestmark = pytest.mark.unit


def node_with_outbox(tmp_path) -> tuple[EdgeNode, Outbox]:
    outbox = Outbox(tmp_path / "outbox.db", first_seq=0)
    uplink = Uplink(UplinkConfig(site="s", node="n"), outbox)  # not started: batches stay
    settings = NodeSettings("s", "n", EnuFrame(22.0, 14.0, 600.0), publish_period_s=10.0,
                            status_period_s=1e9)  # fmt: skip
    return EdgeNode(settings, Tracker(), uplink), outbox


def test_a_new_or_lost_confirmed_track_is_published_at_once_not_at_the_next_tick(tmp_path):
    node, outbox = node_with_outbox(tmp_path)
    node._tracks = tracks((0.0, 0.0, 1.0, 0.0))
    node.publish_due(100.0)  # the first tick
    assert outbox.depth() == 1
    node.publish_due(103.0)  # nothing changed, the next tick is at 110 s
    assert outbox.depth() == 1
    node._tracks = tracks((0.0, 0.0, 1.0, 0.0), (50.0, 0.0, 0.0, 1.0))  # track 2 confirmed
    node.publish_due(103.05)
    assert outbox.depth() == 2
    gone = tracks((0.0, 0.0, 1.0, 0.0), (50.0, 0.0, 0.0, 1.0))
    gone.confirmed[:] = [True, False]  # track 2 no longer confirmed
    node._tracks = gone
    node.publish_due(103.10)  # within the minimum interval: waits
    assert outbox.depth() == 2
    node.publish_due(103.16)
    assert outbox.depth() == 3
    node.publish_due(104.0)
    assert outbox.depth() == 3  # and then the rate again: nothing until 113.16 s
    node.publish_due(113.2)
    assert outbox.depth() == 4
    assert np.all(np.diff([m.message_id for m in outbox.after(0)]) > 0)
