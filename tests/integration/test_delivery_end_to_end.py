"""End-to-end acknowledgement against real processes: a post streaming at 20 Hz through the
node's own uplink and outbox, `python -m hq run` on SQLite, and a mosquitto killed with
-9 and restarted empty (its persistence file deleted), so that every message it had
PUBACKed and not yet handed to HQ is gone with it, and HQ's session too: once in the
middle of the stream, once while HQ itself was down (killed with -9) and the broker
held seconds of the post's batches for HQ's session. The post deletes a batch only
when HQ confirms its store holds it, so it sends those again: HQ's store ends with
every batch the post made, each once."""

import time

import pytest

from bench.chaos_rig import DeliveryRig

pytestmark = pytest.mark.integration


def wait_until(predicate, timeout_s, what):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def test_a_broker_killed_and_restarted_empty_loses_no_batch_and_stores_none_twice(tmp_path):
    rig = DeliveryRig(tmp_path, posts=1, rate_hz=20.0, confirm_timeout_s=2.0)
    try:
        rig.start()
        wait_until(lambda: rig.tally()[0].stored >= 60, 60, "the first batches in the store")
        rig.kill_broker(keep_persistence=False)
        time.sleep(3.0)  # the post goes on numbering and storing
        rig.broker.start()
        time.sleep(8.0)
        rig.hq.kill()  # HQ down: the broker queues the post's batches for HQ's session
        time.sleep(3.0)
        rig.kill_broker(keep_persistence=False)  # and they are gone with it
        rig.broker.start()
        rig.start_hq()
        # The post stops (SIGTERM) once the store caught up; it flushes what is left.
        wait_until(lambda: rig.tally()[0].missing < 40, 90, "the store to catch up")
        assert rig.posts["post-1"].stop(timeout=30) == 0, rig.posts["post-1"].tail()
        wait_until(rig.all_stored, 60, f"every batch stored: {rig.tally()}")
    finally:
        rig.stop()
    (tally,) = rig.tally()
    assert tally.produced >= 200  # the stream ran through the crash
    assert tally.missing == 0 and tally.stored == tally.produced
    assert tally.counted_twice == 0  # the store's batch counter agrees: none stored twice
    log = (tmp_path / "post-1.log").read_text()
    # It was the end-to-end acknowledgement that saved them: the post sent batches again.
    assert "sending" in log and "stored messages again" in log
