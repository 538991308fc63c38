"""The ingest watchdog on a real SQLite store: a message unacknowledged longer than the bound
makes ingest stalled and raises a critical alert, cleared once it is acknowledged; an alert
the store cannot take yet is written at a later check, in order."""

import json
import sqlite3

import pytest

from hq.ingest.watchdog import STALL_ALERT_ID, IngestWatchdog, Unacknowledged
from hq.store.sqlite import SqliteStore

pytestmark = pytest.mark.unit


def stored_alert(db):
    with sqlite3.connect(db) as conn:
        row = conn.execute("SELECT alert FROM alerts WHERE alert_id = ?",
                           [STALL_ALERT_ID]).fetchone()  # fmt: skip
    return None if row is None else json.loads(row[0])


def test_the_oldest_unacknowledged_message_is_what_counts():
    waiting = Unacknowledged()
    assert waiting.oldest_age(100.0) == 0.0
    waiting.add((1, 1), 10.0)
    waiting.add((2, 1), 50.0)
    waiting.add((1, 1), 60.0)  # sent again: still waiting since it first came
    assert waiting.oldest_age(100.0) == 90.0
    waiting.remove((1, 1))
    assert waiting.oldest_age(100.0) == 50.0
    waiting.clear()
    assert waiting.oldest_age(100.0) == 0.0 and len(waiting) == 0


def test_a_stall_raises_an_alert_and_its_end_clears_it(tmp_path):
    db = tmp_path / "hq.db"
    published = []
    waiting = Unacknowledged()
    with SqliteStore(db) as store:
        watchdog = IngestWatchdog(waiting, store, max_age_s=30.0, on_alert=published.append)
        waiting.add((7, 1), 1000.0)
        watchdog.check(1020.0)
        assert not watchdog.stalled and stored_alert(db) is None
        watchdog.check(1031.0)
        assert watchdog.stalled
        alert = stored_alert(db)
        assert alert["active"] and alert["severity"] == "critical" and "31 s" in alert["message"]
        watchdog.check(1032.0)  # still stalled: no second alert
        assert watchdog.alerts_written == 1
        waiting.remove((7, 1))
        watchdog.check(1033.0)
        assert not watchdog.stalled and stored_alert(db)["active"] is False
        assert [b.alerts[0].active for b in published] == [True, False]


def test_an_alert_the_store_refuses_now_is_written_later_in_order(tmp_path):
    db = tmp_path / "hq.db"
    waiting = Unacknowledged()
    with SqliteStore(db) as store:
        watchdog = IngestWatchdog(waiting, store, max_age_s=5.0)
        with sqlite3.connect(db) as conn:  # a real refusal by the database
            conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON alerts "
                         "BEGIN SELECT RAISE(ABORT, 'disk full'); END")  # fmt: skip
        waiting.add((1, 1), 0.0)
        watchdog.check(10.0)
        waiting.remove((1, 1))
        watchdog.check(11.0)  # stalled and recovered, neither stored yet
        assert watchdog.stalled is False and watchdog.alerts_written == 0
        with sqlite3.connect(db) as conn:
            conn.execute("DROP TRIGGER refuse")
        watchdog.check(12.0)
        assert watchdog.alerts_written == 2 and stored_alert(db)["active"] is False
