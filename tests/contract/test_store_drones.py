"""Our own drones in the Store, on every backend: each drone's newest telemetry (two posts'
drone 1 kept apart), its history in time order and decimated as a track's is, a resent or
late message that changes nothing, a batch refused whole, and retention with the history."""

import json
import random
import time

import pytest

from hq.store.interface import AUDIT_MIN_DAYS, DAY
from hq.store.records import IngestBatch
from tests.contract.test_store_contract import a_batch, a_track
from tests.store_backends import BACKENDS, backend_of
from wire.messages import CameraFootprint, VehicleTelemetry

pytestmark = pytest.mark.unit
CORNERS = [(14.13, 22.86), (14.15, 22.86), (14.15, 22.84), None]  # the last above the horizon


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    with backend_of(request.param, tmp_path) as backend:
        opened = backend.open()
        yield opened
        opened.close()


def telemetry(t, node="west-1", sysid=1, lat=22.85, **more):
    return VehicleTelemetry(
        site="tummo", node=node, sysid=sysid, time=float(t), lat=lat, lon=14.14, alt=900.0,
        velocity_enu=(3.0, 4.0, -0.5), heading_deg=37.0, battery_remaining=0.75,
        link_connected=True, packet_loss=0.02,
        footprints=[CameraFootprint(camera="cam", corners=CORNERS)], **more)  # fmt: skip


def sent(store, *messages, received=1000.0):
    return store.commit_ingest_many([IngestBatch(received, telemetry=[m]) for m in messages])


def test_each_drone_keeps_its_newest_telemetry_whole_and_two_posts_drone_1_apart(store):
    assert store.drones() == []
    first, newer = telemetry(10.0, lat=22.85), telemetry(11.0, lat=22.86)
    other_post = telemetry(10.5, node="east-1", lat=22.70)
    assert sent(store, first, newer, other_post) == [True, True, True]
    assert store.drones() == [other_post, newer]  # by node, then system id; equal in full
    late = telemetry(9.0, lat=22.0)  # from the post's backlog: older than what is held
    sent(store, late)
    assert store.drones() == [other_post, newer]
    assert store.drones()[1].footprints[0].corners[3] is None
    sent(store, telemetry(12.0, sysid=2))
    assert [(d.node, d.sysid) for d in store.drones()] == [("east-1", 1), ("west-1", 1),
                                                           ("west-1", 2)]  # fmt: skip
    # The backlog's message still belongs in the history, in time order.
    history = store.drone_history("tummo/west-1", 1, 0, 100)
    assert [m.time for m in history] == [9.0, 10.0, 11.0]
    assert history[0] == late


def test_a_resent_message_is_stored_once_and_in_one_call_the_newest_wins(store):
    messages = [telemetry(t) for t in (5.0, 7.0, 6.0)]
    store.commit_ingest_many([IngestBatch(1.0, telemetry=messages)])
    store.commit_ingest_many([IngestBatch(2.0, telemetry=[messages[1]])])  # the outbox resent it
    assert [m.time for m in store.drone_history("tummo/west-1", 1, 0, 100)] == [5.0, 6.0, 7.0]
    assert store.drones() == [messages[1]]


def test_telemetry_goes_with_its_group_a_refused_group_writes_none(store):
    group = [
        IngestBatch(1.0, telemetry=[telemetry(3.0)]),
        a_batch(0, [a_track(1, float("nan"))]),
    ]  # NaN: refused by either backend
    with pytest.raises(Exception):  # noqa: B017 - each backend's driver has its own error
        store.commit_ingest_many(group)
    assert store.drones() == [] and store.drone_history("tummo/west-1", 1, 0, 100) == []


def test_drone_history_over_a_window_in_time_order_and_decimated_within_bounds(store):
    times = list(range(300))
    random.Random(18).shuffle(times)
    for start in range(0, 300, 50):
        store.commit_ingest_many([IngestBatch(1.0, telemetry=[telemetry(t), telemetry(t, sysid=2)])
                                  for t in times[start:start + 50]])  # fmt: skip
    window = [m.time for m in store.drone_history("tummo/west-1", 1, 100.5, 200.0)]
    assert window == [float(t) for t in range(101, 201)]
    assert {m.sysid for m in store.drone_history("tummo/west-1", 2, 0, 1e9)} == {2}
    assert store.drone_history("tummo/east-1", 1, 0, 1e9) == []
    for first, last in [(5, 5), (5, 6), (0, 98), (3, 299)]:
        full = [m.time for m in store.drone_history("tummo/west-1", 1, first, last)]
        for max_points in (2, 3, 7, 100, 2000):
            kept = [m.time for m in store.drone_history("tummo/west-1", 1, first, last,
                                                        max_points)]  # fmt: skip
            assert len(kept) <= max_points and set(kept) <= set(full)
            assert kept[0] == full[0] and kept[-1] == full[-1] and kept == sorted(kept)
            if len(full) <= max_points:
                assert kept == full
    with pytest.raises(ValueError):
        store.drone_history("tummo/west-1", 1, 0, 10, max_points=1)


def test_purge_removes_drone_telemetry_older_than_the_history_retention(store):
    now = time.time()
    sent(
        store,
        telemetry(now - 40 * DAY),
        telemetry(now - 1 * DAY),
        telemetry(now - 35 * DAY, node="east-1"),
    )  # a post not heard from for weeks
    result = store.purge(now, history_days=30, dead_letter_days=7, audit_days=AUDIT_MIN_DAYS)
    assert (result.drone_points, result.drones) == (2, 1)
    assert [m.time for m in store.drone_history("tummo/west-1", 1, 0, now)] == [now - 1 * DAY]
    assert [(d.node, d.time) for d in store.drones()] == [("west-1", now - 1 * DAY)]
    purge_row = store.audit_log()[-1]
    assert purge_row.action == "store.purge"
    assert json.loads(json.dumps(purge_row.details_dict()))["drone_points"] == 2
    assert store.stats().rows["drone_points"] == 1
