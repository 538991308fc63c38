"""The whole stack on the small scenario under the faults of a bad day at a post: a poor
radio to the drone (loss, bursts, a 15 s cut, corrupted bytes, a GPS dropout), the camera
stream dropping, the uplink silent for 60 s, the broker killed with -9 and restarted
empty (its persistence file gone: whatever it had accepted and not yet handed to HQ is
lost with it, HQ's session too), HQ killed with -9 and restarted. HQ must end up with
every track batch the node made, each stored once, and a picture that follows the
targets again."""

import sqlite3
import time

import numpy as np
import pytest

from hq.store.sqlite import SqliteStore
from stack.deployment import Deployment, StackOptions
from tests.conftest import PROJECT_ROOT
from tests.e2e.scoring import MATCH_M, Picture, Truth
from tests.tcp_relay import TcpRelay

pytestmark = pytest.mark.e2e

SKIP_S = 55.0
UPLINK_CUT_S = 60.0
RECOVERY_S = 25.0


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_no_batch_lost_or_stored_twice_and_the_picture_recovers(tmp_path):
    deployment = Deployment(
        PROJECT_ROOT / "configs" / "scenarios" / "small.toml", tmp_path,
        StackOptions(skip_s=SKIP_S, mavlink_faults=PROJECT_ROOT / "configs" / "faults" /
                     "poor-radio.toml"),
    )  # fmt: skip
    relay = TcpRelay(deployment.broker_port).start()
    deployment.node_broker_port = relay.port
    node_key = f"{deployment.scenario.name}/{deployment.scenario.posts[0].name}"
    try:
        deployment.start()
        live = deployment.live
        store = SqliteStore(deployment.database)
        wait_until(lambda: len(store.current_tracks()) >= 3, 90, "the first fused tracks")

        relay.cut()
        time.sleep(UPLINK_CUT_S / 3)
        live.restart("camera-drone-1-thermal", down_s=5.0)  # the camera stream drops
        time.sleep(max(0.0, UPLINK_CUT_S * 2 / 3 - 5.0))
        relay.restore()
        time.sleep(3.0)
        deployment.broker.kill()  # a crash of the broker, with the backlog draining
        for file in (tmp_path / "broker" / "data").glob("mosquitto.db*"):
            file.unlink()  # and it comes back empty: only the node's outbox still has them
        deployment.broker.start()
        time.sleep(5.0)
        deployment.restart("hq", kill=True)  # kill -9 of HQ, and its restart
        recovered_from = time.time()
        time.sleep(RECOVERY_S)
        assert not deployment.failed(), deployment.failed()

        # The node stops cleanly (its outbox flushed); then HQ must have all it made.
        node = deployment.services[f"node-{deployment.scenario.posts[0].name}"].process
        node.terminate()
        assert node.wait(timeout=60) == 0
        outbox = tmp_path / f"node-{deployment.scenario.posts[0].name}" / "outbox.db"
        with sqlite3.connect(outbox) as db:
            counters = dict(db.execute("SELECT name, value FROM counters"))
            first_seq, last_seq = counters["first_seq"], counters["seq"]
            assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0

        def all_stored():
            record = next((n for n in store.nodes() if n.node_key == node_key), None)
            return record is not None and record.last_seq == last_seq

        wait_until(all_stored, 60, f"HQ to store seq {last_seq}")
        record = next(n for n in store.nodes() if n.node_key == node_key)
        made = range(first_seq, last_seq + 1)
        missing = [s for s in made if not store.already_seen(node_key, s)]
        assert missing == []
        assert record.batches == len(made)  # each batch stored once, none twice

        truth = Truth.read(deployment.truth_path)
        picture = Picture.from_store(store, recovered_from, recovered_from + RECOVERY_S)
        store.close()
    finally:
        deployment.stop()
        relay.close()
    # After all that, HQ's picture follows targets again: fused tracks updated after HQ's
    # restart lie on at least two different targets (measured: four, the stranded pair and
    # both camels; the walkers have left the camera's view by then). The picture's false
    # tracks are the known gap that tests/e2e/test_whole_stack.py records.
    followed = set()
    for t in np.arange(recovered_from + 5.0, recovered_from + RECOVERY_S, 1.0):
        targets = truth.at(t)
        for position in picture.at(t).values():
            nearest = min(targets, key=lambda k: np.linalg.norm(targets[k] - position))
            if np.linalg.norm(targets[nearest] - position) < MATCH_M:
                followed.add(nearest)
    assert len(followed) >= 2, followed
