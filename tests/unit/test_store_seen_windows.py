"""PostgreSQL's early "seen before?" answers: one read per window of a post's seqs, this
process's commits added at once, another writer's commits seen once the window expires."""

import time

import pytest

from hq.store.postgresql.seen import SeenWindows

pytestmark = pytest.mark.unit


def test_answers_come_from_one_read_per_window_and_expire():
    stored = {"a/1": {3, 5}}
    reads = []

    def read(node, low, high):
        reads.append((node, low, high))
        return [s for s in stored.get(node, ()) if low <= s <= high]

    windows = SeenWindows(read, span=10, ttl_s=0.2)
    assert [windows.seen("a/1", s) for s in range(3, 9)] == [True, False, True, False, False,
                                                             False]  # fmt: skip
    assert reads == [("a/1", 3, 13)]
    windows.committed([("a/1", 6)])  # this process stored seq 6: seen at once
    assert windows.seen("a/1", 6)
    stored["a/1"].add(7)  # another writer stored seq 7: not known until the window expires
    assert not windows.seen("a/1", 7)
    time.sleep(0.25)
    assert windows.seen("a/1", 7) and len(reads) == 2
    assert not windows.seen("a/1", 40) and reads[-1] == ("a/1", 40, 50)  # past the window
    assert not windows.seen("b/2", 3) and reads[-1][0] == "b/2"  # each post its own
