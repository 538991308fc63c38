"""End-to-end acknowledgement and the outbox's bounds: the seq ranges HQ confirms, the
outbox forgetting exactly the confirmed batches, its bound in bytes, and a full disk
under it (the file's quota, SQLite's max_page_count, so that SQLite itself answers
SQLITE_FULL as on a full file system)."""

from __future__ import annotations

import sqlite3

import pytest
from pydantic import ValidationError

from edge.outbox import Outbox, OutboxFull
from edge.uplink import Uplink, UplinkConfig
from wire.delivery import Delivered, SeqRanges, decode, encode
from wire.secrets import signing_key_of

pytestmark = pytest.mark.unit


def test_seq_ranges_merge_as_numbers_arrive_in_any_order():
    held = SeqRanges()
    for seq in [5, 7, 6, 1, 2, 10, 3]:
        assert held.add(seq)
    assert not held.add(6)  # already held
    assert held.ranges() == [(1, 3), (5, 7), (10, 10)]
    held.add(4)
    assert held.ranges() == [(1, 7), (10, 10)]
    assert held.holds(4) and held.holds(10) and not held.holds(8) and not held.holds(0)


def test_seq_ranges_keep_only_the_newest_when_bounded():
    held = SeqRanges(max_ranges=3)
    for seq in [0, 2, 4, 6, 8]:
        held.add(seq)
    assert held.ranges() == [(4, 4), (6, 6), (8, 8)]


def test_a_confirmation_round_trips_and_refuses_unsorted_or_overlapping_ranges():
    message = Delivered(site="s", node="n", time=1.0, ranges=[(1, 3), (5, 9)])
    assert decode(encode(message)) == message
    assert message.holds(7) and not message.holds(4)
    for bad in ([(5, 9), (1, 3)], [(1, 5), (4, 9)], [(1, 3), (4, 9)], [(3, 1)], [(-1, 2)]):
        with pytest.raises(ValidationError):
            Delivered(site="s", node="n", time=1.0, ranges=bad)


def test_the_outbox_forgets_only_confirmed_numbered_batches(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", first_seq=100)
    numbered = [outbox.put_numbered("t", lambda seq: b"batch %d" % seq) for _ in range(5)]
    telemetry = outbox.put("telemetry", b"unnumbered")
    assert [seq for seq, _ in numbered] == [100, 101, 102, 103, 104]
    gone = outbox.confirm([(100, 101), (103, 103), (500, 600)])
    assert sorted(gone) == [numbered[0][1], numbered[1][1], numbered[3][1]]
    left = outbox.after(0)
    assert [m.seq for m in left] == [102, 104, None]
    assert left[-1].message_id == telemetry
    assert outbox.confirm([(100, 101)]) == []  # a repeated confirmation changes nothing
    assert outbox.depth() == 3 and outbox.counters.delivered == 3


def test_a_file_from_before_numbered_rows_is_upgraded_in_place(tmp_path):
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as db:
        db.execute(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, "
            "topic TEXT NOT NULL, payload BLOB NOT NULL, created REAL NOT NULL)"
        )
        db.execute("INSERT INTO messages (topic, payload, created) VALUES ('t', x'00', 1.0)")
    outbox = Outbox(path, first_seq=0)
    assert [m.seq for m in outbox.after(0)] == [None]
    seq, _ = outbox.put_numbered("t", lambda s: b"x")
    assert outbox.confirm([(seq, seq)]) and outbox.depth() == 1


def test_the_bound_in_bytes_drops_the_oldest_like_the_bound_in_messages(tmp_path):
    dropped = []
    outbox = Outbox(tmp_path / "outbox.db", max_messages=3, max_bytes=250,
                    on_overflow=dropped.append)  # fmt: skip
    for i in range(3):
        outbox.put("t", bytes([i]) * 100)
    # Three 100-byte messages under a bound of 3 messages: the bytes bound (250) holds two.
    assert outbox.depth() == 2 and outbox.size_bytes() == 200
    assert [m.payload[0] for m in outbox.after(0)] == [1, 2]
    assert outbox.counters.dropped_when_full == 1 and dropped == [1]
    outbox.put("t", b"y" * 1000)  # larger than the bound: stored alone
    assert outbox.depth() == 1 and outbox.size_bytes() == 1000
    reopened = Outbox(tmp_path / "outbox.db", max_bytes=250)
    assert reopened.size_bytes() == 1000  # the size is read back from the file


def test_a_full_disk_drops_the_oldest_to_make_room_and_never_raises_sqlite_errors(tmp_path):
    dropped = []
    outbox = Outbox(tmp_path / "outbox.db", first_seq=0, max_file_bytes=64 * 1024,
                    on_overflow=dropped.append)  # fmt: skip
    payload = b"z" * 3000
    seqs = []
    for _ in range(200):  # ~600 kB into a 64 kB file
        seq, _ = outbox.put_numbered("t", lambda s: payload)
        seqs.append(seq)
    counters = outbox.counters
    assert counters.dropped_disk_full > 0 and sum(dropped) == counters.dropped_disk_full
    # Every new batch found room (the oldest made way); the numbers kept rising without gaps.
    assert seqs == list(range(200)) and counters.lost_disk_full == 0
    held = [m.seq for m in outbox.after(0, limit=1000)]
    assert held == sorted(held) and held[-1] == 199
    assert outbox.depth() == len(held)  # the count follows the file


def test_a_message_larger_than_the_whole_quota_is_lost_with_a_clear_error(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", max_file_bytes=32 * 1024)
    outbox.put("t", b"small")
    with pytest.raises(OutboxFull, match="full"):
        outbox.put("t", b"z" * 200_000)
    assert outbox.counters.lost_disk_full == 1
    outbox.put("t", b"small again")  # the outbox still works
    assert outbox.after(0)[-1].payload == b"small again"


def test_a_message_over_the_brokers_size_limit_is_refused_before_it_is_stored(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", first_seq=0)
    uplink = Uplink(UplinkConfig(site="s", node="n", max_message_bytes=1000), outbox)
    assert uplink.send("t", b"x" * 1001) is None
    assert uplink.send_numbered("t", lambda seq: b"y" * 5000) is None
    assert outbox.depth() == 0 and uplink.counters.refused_too_large == 2
    assert uplink.send_numbered("t", lambda seq: b"fits") == 0  # the refused one used no number


@pytest.mark.parametrize(
    "data",
    [bytes(range(32)), b" \n" * 16, bytes(range(32)).hex().encode(),
     b"  " + bytes(range(32)).hex().upper().encode() + b"\n"],
)  # fmt: skip
def test_a_signing_key_reads_as_32_raw_bytes_or_64_hex_digits(data):
    key = signing_key_of(data, "a test")
    assert len(key) == 32
    assert key == (data if len(data) == 32 else bytes.fromhex(data.strip().decode()))


@pytest.mark.parametrize("data", [b"short", bytes(range(33)), b"zz" * 32, b"\xff" * 64])
def test_anything_else_is_refused_with_a_clear_error(data):
    with pytest.raises(ValueError, match="neither 32 raw bytes nor 64 hex digits"):
        signing_key_of(data, "a test")
