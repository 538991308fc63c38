"""The outbox keeps every message on disk until delivered, and its bound drops the oldest."""

import subprocess
import sys
import time

import pytest

from edge.outbox import Outbox

pytestmark = pytest.mark.unit


def test_messages_survive_closing_and_reopening(tmp_path):
    path = tmp_path / "outbox.db"
    outbox = Outbox(path)
    ids = [outbox.put("t", f"m{k}".encode()) for k in range(5)]
    outbox.delete(ids[1])
    outbox.close()
    again = Outbox(path)
    assert [m.payload for m in again.after(0)] == [b"m0", b"m2", b"m3", b"m4"]
    assert again.depth() == 4


def test_sequence_numbers_keep_rising_across_restarts(tmp_path):
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, first_seq=0)
    first = [outbox.next_seq() for _ in range(3)]
    outbox.close()
    assert first == [0, 1, 2]
    assert Outbox(path, first_seq=0).next_seq() == 3
    assert Outbox(path).next_seq() == 4  # an existing file keeps its own numbers
    assert Outbox(path).first_seq == 0


def test_a_lost_outbox_numbers_on_past_the_old_one(tmp_path):
    # An old box numbered from its creation; its disk is replaced a while later: the new
    # file's numbers start above everything the old one could have used (2 batches/s).
    old = Outbox(tmp_path / "old.db")
    used = [old.next_seq() for _ in range(50)]  # faster than the clock: 50 numbers now...
    time.sleep(0.2)  # ...and 200 ms later the new file starts 200 numbers on
    new = Outbox(tmp_path / "new.db")
    assert new.next_seq() > max(used)
    assert abs(used[0] - time.time() * 1000) < 10_000  # the clock in ms


def test_ids_are_never_reused_after_the_outbox_empties(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db")
    last = outbox.put("t", b"a")
    outbox.delete(last)
    assert outbox.depth() == 0
    assert outbox.put("t", b"b") > last


def test_a_full_outbox_drops_the_oldest_counts_and_says_so(tmp_path):
    dropped = []
    outbox = Outbox(tmp_path / "outbox.db", max_messages=3, on_overflow=dropped.append)
    for k in range(5):
        outbox.put("t", bytes([k]))
    assert [m.payload for m in outbox.after(0)] == [b"\x02", b"\x03", b"\x04"]
    assert outbox.counters.dropped_when_full == 2 and dropped == [1, 1]
    assert outbox.depth() == 3


def test_deleting_twice_counts_one_delivery(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db")
    message_id = outbox.put("t", b"x")
    assert outbox.delete(message_id) and not outbox.delete(message_id)
    assert outbox.counters.delivered == 1


def test_a_killed_process_loses_nothing_it_had_stored(tmp_path):
    path = tmp_path / "outbox.db"
    # The child stores 200 messages, says so, and is killed with SIGKILL while it waits.
    child = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\n"
         "from edge.outbox import Outbox\n"
         f"o = Outbox({str(path)!r})\n"
         "for k in range(200): o.put('t', str(k).encode())\n"
         "print('stored', flush=True)\n"
         "time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert child.stdout.readline().strip() == "stored"
    child.kill()
    child.wait()
    assert [int(m.payload) for m in Outbox(path).after(0, limit=1000)] == list(range(200))


def test_a_numbered_batch_is_stored_with_its_number_or_not_at_all(tmp_path):
    path = tmp_path / "outbox.db"
    outbox = Outbox(path, first_seq=0)
    seq, message_id = outbox.put_numbered("t", lambda n: f"batch {n}".encode())
    assert (seq, outbox.after(0)[0].payload) == (0, b"batch 0")

    def broken(n):
        raise RuntimeError("encoding failed")

    with pytest.raises(RuntimeError, match="encoding failed"):
        outbox.put_numbered("t", broken)
    # The failed batch took no number: the next one follows without a gap.
    assert outbox.put_numbered("t", lambda n: f"batch {n}".encode())[0] == 1
    assert [m.payload for m in outbox.after(0)] == [b"batch 0", b"batch 1"]
    assert Outbox(path).next_seq() == 2  # the file keeps its numbers
