"""HQ's CoT stream read by a real third-party TAK consumer: pytak's receive worker on a
loopback TCP listener, fed by a TakStreamer over a real SQLite store. Every event parses,
says the right thing, ended tracks and cleared alerts are withdrawn, and a dropped
connection is re-established."""

import asyncio
import math
import time
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import UTC, datetime

import pytak
import pytest

from hq.store.records import FusedTrack, IngestBatch
from hq.store.sqlite import SqliteStore
from hq.tak import StoreSource, TakConfig, TakStreamer, cot
from wire.messages import Alert

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]
PERIOD, STALE_FACTOR = 0.2, 3.0
STALE = PERIOD * STALE_FACTOR
COVARIANCE = (36.0, 4.0, 0, 0, 4.0, 9.0, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.5)
# global id -> class, status, (ve, vn), the type, course and speed TAK must get
TRACKS = {
    1: ("person", "confirmed", (1.0, -1.0), "a-u-G", 135.0, math.sqrt(2.0)),
    2: ("vehicle", "coasting", (-8.0, 0.0), "a-u-G-E-V", 270.0, 8.0),
    3: ("aircraft", "confirmed", (0.0, 30.0), "a-u-A", 0.0, 30.0),
    4: ("person", "ended", (0.0, 0.0), None, None, None),  # ended before HQ streamed: never shown
    5: ("vehicle", "tentative", (1.0, 1.0), None, None, None),  # not confirmed: not shown
}
DISTRESS_UID = "dunewatch-distress-distress-g1"


def uid(gid):
    return f"dunewatch-track-{gid}"


def a_track(gid, t, status=None):
    cls, default_status, velocity, *_ = TRACKS[gid]
    return FusedTrack(gid, t, 22.80 + gid / 1000, 14.10, 600.0, (0.0, 0.0, *velocity),
                      COVARIANCE, cls, status or default_status, 0.9)  # fmt: skip


def an_alert(alert_id, kind, t, active=True):
    return Alert(site="hq", node="fusion", alert_id=alert_id, alert_type=kind,
                 severity="critical", time=t, message="track 1 has been still for 10 min",
                 lat=22.801, lon=14.10, track_ids=[1], active=active)  # fmt: skip


def seconds(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC).timestamp()


class PytakListener:
    """A TAK end point on a free loopback port: each connection read by pytak's RXWorker."""

    def __init__(self):
        self.connections = []  # per connection: a list of (receive time, parsed event)
        self._tasks, self._writers = [], []
        self.server = None

    async def start(self):
        self.server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def _accept(self, reader, writer):
        queue, received = asyncio.Queue(), []
        self.connections.append(received)
        self._writers.append(writer)
        worker = pytak.RXWorker(queue, {"TAK_PROTO": "0"}, reader)  # plain XML CoT
        self._tasks.append(asyncio.current_task())
        while not reader.at_eof():
            await worker.run_once()  # pytak frames the stream into events onto its queue
            while not queue.empty():
                received.append((time.time(), ET.fromstring(queue.get_nowait())))

    async def wait_for(self, connection, done, timeout=15.0):
        deadline = time.monotonic() + timeout
        while len(self.connections) <= connection or not done(self.connections[connection]):
            assert time.monotonic() < deadline, f"timed out; got {self.connections!r:.2000}"
            await asyncio.sleep(0.02)
        return self.connections[connection]

    def drop(self, connection):
        self._writers[connection].close()
        self._tasks[connection].cancel()

    async def close(self):
        self.server.close()
        await self.server.wait_closed()


def uids(received):
    return {event.get("uid") for _, event in received}


def test_pytak_reads_every_event_of_the_stream_from_a_real_store(tmp_path):
    asyncio.run(_scenario(tmp_path))


async def _scenario(tmp_path):
    listener = PytakListener()
    port = await listener.start()
    store = SqliteStore(tmp_path / "hq.db")
    t0 = time.time()
    store.commit_ingest(IngestBatch(received=t0, fused_tracks=[a_track(g, t0) for g in TRACKS],
                                    alerts=[an_alert("distress-g1", "distress", t0),
                                            an_alert("crossing-g2", "border_crossing", t0)]))
    config = TakConfig(host="127.0.0.1", port=port, period_s=PERIOD, stale_factor=STALE_FACTOR)
    streamer = TakStreamer(config, StoreSource(store)).start()
    try:
        # 1. Live tracks and the open distress alert, several periods of them.
        live = {uid(1), uid(2), uid(3), DISTRESS_UID}
        first = await listener.wait_for(0, lambda got: all(
            sum(e.get("uid") == u for _, e in got) >= 3 for u in live))  # fmt: skip
        assert uids(first) == live  # no ended, tentative or border-crossing events
        for received, event in first:
            assert event.tag == "event" and event.get("how") == "m-f"
            # stale is the send time plus STALE, and the send time is just before receipt
            assert 0.0 <= received + STALE - seconds(event.get("stale")) < 2.0
            if event.get("uid") == DISTRESS_UID:
                assert event.get("type") == "b-a-o-tbl"
                assert event.find("detail/emergency").get("type") == "911 Alert"
                assert "stranded" in event.find("detail/remarks").text
                assert float(event.find("point").get("lat")) == pytest.approx(22.801)
                continue
            gid = int(event.get("uid").rsplit("-", 1)[1])
            _, _, _, type_, course, speed = TRACKS[gid]
            assert event.get("type") == type_
            assert seconds(event.get("time")) == seconds(event.get("start")) == pytest.approx(
                t0, abs=1e-3)  # fmt: skip
            point = event.find("point")
            assert float(point.get("lat")) == pytest.approx(22.80 + gid / 1000, abs=1e-7)
            assert float(point.get("lon")) == pytest.approx(14.10) and point.get("hae") == "600.0"
            assert float(point.get("ce")) == pytest.approx(
                cot.circular_error([[36.0, 4.0], [4.0, 9.0]]), abs=0.05)  # fmt: skip
            assert float(point.get("le")) == cot.UNKNOWN_ERROR
            motion = event.find("detail/track")
            assert float(motion.get("course")) == pytest.approx(course, abs=0.05)
            assert float(motion.get("speed")) == pytest.approx(speed, abs=0.005)

        # 2. Track 1 ends and the distress alert clears: each is withdrawn, stale now.
        t1 = time.time()
        store.commit_ingest(IngestBatch(received=t1, fused_tracks=[a_track(1, t1, "ended")],
                                        alerts=[an_alert("distress-g1", "distress", t1,
                                                         active=False)]))  # fmt: skip
        seen_before = len(listener.connections[0])

        def withdrawn(got):
            return {uid(1), DISTRESS_UID} <= uids(got[seen_before:])

        got = await listener.wait_for(0, withdrawn)
        later = got[seen_before:]
        for received, event in later:
            if event.get("uid") in (uid(1), DISTRESS_UID):
                assert 0.0 <= received - seconds(event.get("stale")) < 2.0
        cancel = [e for _, e in later if e.get("uid") == DISTRESS_UID]
        assert len(cancel) == 1 and cancel[0].find("detail/emergency").get("cancel") == "true"
        [end] = [e for _, e in later if e.get("uid") == uid(1)]  # sent once, then forgotten
        assert seconds(end.get("start")) <= seconds(end.get("stale"))  # a well-formed removal

        # 3. The consumer drops the connection: the streamer reconnects and goes on.
        listener.drop(0)
        await listener.wait_for(1, lambda got: Counter(e.get("uid") for _, e in got)[uid(3)] >= 3)
        assert streamer.counters.reconnects >= 1
    finally:
        await asyncio.to_thread(streamer.stop)
    await listener.wait_for(1, lambda got: listener._tasks[1].done())
    second = listener.connections[1]
    # Every period's events arrived whole on the new connection: the same count of each.
    counts = Counter(e.get("uid") for _, e in second)
    assert set(counts) == {uid(2), uid(3)} and counts[uid(2)] == counts[uid(3)] >= 3
    counters = streamer.counters
    assert counters.skipped == 0 and counters.connects == counters.reconnects + 1
    received_total = sum(len(c) for c in listener.connections)
    assert received_total <= counters.sent <= received_total + len(live)  # at most one lost
    await listener.close()
    store.close()


class FlakySource:
    """One live track; every other read fails, as a store under trouble might."""

    def __init__(self):
        self.reads = 0

    def current_tracks(self):
        self.reads += 1
        if self.reads % 2 == 0:
            raise OSError("disk I/O error")
        return [a_track(3, time.time())]

    def open_alerts(self):
        return []

    def labels(self):
        return {}

    def drones(self):
        return []


def test_the_streamer_backs_off_while_nobody_listens_and_survives_a_failing_source():
    asyncio.run(_backoff_scenario())


async def _backoff_scenario():
    listener = PytakListener()
    port = await listener.start()
    await listener.close()  # nobody listens on the port for now
    config = TakConfig(host="127.0.0.1", port=port, period_s=0.05, backoff_min_s=0.1,
                       backoff_max_s=0.4)  # fmt: skip
    source = FlakySource()
    streamer = TakStreamer(config, source).start()
    try:
        await asyncio.sleep(1.5)
        refused = streamer.counters.errors - source.reads // 2  # less the failed reads
        # 30 periods; waits doubling 0.1, 0.2, 0.4, 0.4 ... s allow about 5 attempts, not 15
        assert 3 <= refused <= 8
        assert streamer.counters.connects == 0 and streamer.counters.sent == 0
        listener.server = await asyncio.start_server(listener._accept, "127.0.0.1", port)
        got = await listener.wait_for(0, lambda got: len(got) >= 5)
        assert uids(got) == {uid(3)}
    finally:
        await asyncio.to_thread(streamer.stop)
    assert streamer.counters.connects == 1 and streamer.counters.skipped == 0
    await listener.close()
