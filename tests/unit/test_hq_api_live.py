"""The live feed behind the SSE stream: snapshot then deltas, coalescing per track per tick,
filters that create and end tracks for a client's view, resume by Last-Event-ID, slow
clients resynced then dropped, publishing from many threads."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from hq.api.live import LiveFeed, StreamFilter
from hq.api.models import AlertOut, DeltaData, SnapshotData
from hq.store.records import BBox, IngestBatch, TrackLabel
from tests.unit.test_hq_api_support import an_alert, fused

pytestmark = pytest.mark.unit
T = 1_700_000_000.0


def parse(frame: bytes) -> tuple[str, str, dict]:
    fields = dict(line.split(": ", 1) for line in frame.decode().strip().split("\n"))
    return fields["id"], fields["event"], json.loads(fields["data"])


def publish(feed: LiveFeed, *tracks, alerts=()) -> None:
    feed.publish(IngestBatch(T, fused_tracks=tracks, alerts=alerts))


async def next_frame(frames) -> tuple[str, str, dict]:
    return parse(await asyncio.wait_for(anext(frames), 2.0))


def delta(data: dict) -> tuple[list, list, list]:
    DeltaData.model_validate(data)  # the documented schema of a delta event
    return ([t["global_id"] for t in data["created"]], [t["global_id"] for t in data["updated"]],
            data["ended"])  # fmt: skip


def test_a_client_gets_a_snapshot_then_one_delta_per_tick():
    async def scenario():
        feed = LiveFeed(heartbeat_s=60)
        feed.seed([fused(1, T), fused(2, T), fused(9, T, status="ended")], {}, [])
        sub, first = feed.subscribe(StreamFilter())
        _, event, data = parse(first[0])
        assert event == "snapshot" and SnapshotData.model_validate(data)
        assert [t["global_id"] for t in data["tracks"]] == [1, 2]  # the ended one is not live
        publish(feed, fused(1, T + 1), fused(3, T + 1), fused(2, T + 1, status="ended"),
                alerts=[an_alert("distress-7", T + 1)])  # fmt: skip
        feed.tick()
        frames = feed.frames(sub)
        _, event, data = await next_frame(frames)
        assert event == "delta" and delta(data) == ([3], [1], [2])
        assert data["alerts"][0]["alert_id"] == "distress-7"
        assert data["alerts"][0]["state"] == "open"
        feed.tick()  # nothing published: no event
        assert sub.queue.empty()

    asyncio.run(scenario())


def test_an_alert_operators_resolved_stays_resolved_when_hq_updates_it():
    async def scenario():
        feed = LiveFeed(heartbeat_s=60)
        feed.seed([], {}, [], resolved=["distress-1-100"])  # resolved before a restart
        sub, _ = feed.subscribe(StreamFilter())
        publish(feed, fused(1, T), alerts=[an_alert("distress-7", T)])
        feed.tick()
        _, _, data = await next_frame(feed.frames(sub))
        opened = AlertOut.model_validate(data["alerts"][0])
        feed.publish_alert(opened.model_copy(update={"state": "resolved"}))
        feed.tick()
        _, _, data = await next_frame(feed.frames(sub))
        assert data["alerts"][0]["state"] == "resolved"
        # HQ's alert rules refresh both groups' alerts afterwards: neither reopens.
        publish(feed, fused(1, T + 300), alerts=[an_alert("distress-7", T + 300),
                                                an_alert("distress-1-100", T + 300)])
        feed.tick()
        _, _, data = await next_frame(feed.frames(sub))
        assert data["alerts"] == []
        _, first = feed.subscribe(StreamFilter())
        assert parse(first[0])[2]["alerts"] == [], "no resolved alert in a new snapshot"

    asyncio.run(scenario())


def test_updates_are_coalesced_per_track_and_a_late_batch_does_not_roll_back():
    async def scenario():
        feed = LiveFeed()
        feed.seed([fused(1, T)], {}, [])
        sub, _ = feed.subscribe(StreamFilter())
        for k in range(1, 6):
            publish(feed, fused(1, T + k, lat=22.8 + k * 0.01))
        publish(feed, fused(1, T + 2, lat=10.0))  # from a post's backlog, older than T + 5
        feed.tick()
        _, _, data = await next_frame(feed.frames(sub))
        [track] = data["updated"]
        assert (track["time"], track["lat"]) == (T + 5, pytest.approx(22.85))

    asyncio.run(scenario())


def test_a_box_filter_creates_and_ends_tracks_as_they_cross_its_edge():
    async def scenario():
        feed = LiveFeed()
        feed.seed([fused(1, T, lat=22.5, lon=14.5), fused(2, T, lat=20.0, lon=14.5)], {}, [])
        box = StreamFilter(bbox=BBox(22.0, 14.0, 23.0, 15.0))
        sub, first = feed.subscribe(box)
        assert [t["global_id"] for t in parse(first[0])[2]["tracks"]] == [1]
        # 1 leaves the box, 2 enters it, 3 is born outside it.
        publish(feed, fused(1, T + 1, lat=24.0, lon=14.5), fused(2, T + 1, lat=22.1, lon=14.5),
                fused(3, T + 1, lat=10.0, lon=10.0))  # fmt: skip
        feed.tick()
        _, _, data = await next_frame(feed.frames(sub))
        assert delta(data) == ([2], [], [1])

    asyncio.run(scenario())


def test_an_operators_label_resends_the_track_and_moves_it_between_class_filters():
    async def scenario():
        feed = LiveFeed()
        feed.seed([fused(1, T, cls="person")], {}, [])
        vehicles, first = feed.subscribe(StreamFilter(classes=frozenset({"vehicle"})))
        assert parse(first[0])[2]["tracks"] == []
        feed.publish_label(TrackLabel(1, "friend", "vehicle", "op", T))
        feed.tick()
        _, _, data = await next_frame(feed.frames(vehicles))
        assert delta(data) == ([1], [], [])
        assert (data["created"][0]["affiliation"], data["created"][0]["fused_class"]) == (
            "friend", "person")

    asyncio.run(scenario())


def test_resume_replays_the_events_after_last_event_id_or_falls_back_to_a_snapshot():
    async def scenario():
        feed = LiveFeed(ring_events=3)
        ids = []
        for k in range(1, 6):
            publish(feed, fused(k, T + k))
            feed.tick()
            ids.append(f"{feed.epoch}-{k}")
        _, frames = feed.subscribe(StreamFilter(), last_event_id=ids[2])
        assert [parse(f)[:2] for f in frames] == [(ids[3], "delta"), (ids[4], "delta")]
        assert delta(parse(frames[0])[2]) == ([4], [], [])
        assert feed.subscribe(StreamFilter(), last_event_id=ids[4])[1] == []  # up to date
        for stale in (ids[0], "otherepoch-4", f"{feed.epoch}-99", "garbage"):
            _, frames = feed.subscribe(StreamFilter(), last_event_id=stale)
            assert [parse(f)[1] for f in frames] == ["snapshot"], stale
            assert parse(frames[0])[0] == ids[4]  # a snapshot carries the newest id

    asyncio.run(scenario())


def test_a_slow_client_is_resynced_with_a_snapshot_then_dropped_and_never_blocks_ticks():
    async def scenario():
        feed = LiveFeed(client_queue_events=2, max_resyncs=1)
        sub, _ = feed.subscribe(StreamFilter())
        for k in range(3):  # the third event finds the queue full
            publish(feed, fused(1, T + k))
            feed.tick()
        frames = feed.frames(sub)
        _, event, data = await next_frame(frames)
        assert event == "snapshot" and feed.counters.resyncs == 1
        for k in range(3, 7):  # falls behind again, without reading
            publish(feed, fused(1, T + k))
            feed.tick()
        with pytest.raises(StopAsyncIteration):
            await asyncio.wait_for(anext(frames), 2.0)
        assert feed.counters.drops == 1 and feed.clients == 0

    asyncio.run(scenario())


def test_a_quiet_stream_sends_heartbeats_with_the_last_id():
    async def scenario():
        feed = LiveFeed(heartbeat_s=0.05)
        publish(feed, fused(1, T))
        feed.tick()
        sub, _ = feed.subscribe(StreamFilter())
        event_id, event, data = await next_frame(feed.frames(sub))
        assert (event_id, event) == (f"{feed.epoch}-1", "heartbeat") and data["time"] > T

    asyncio.run(scenario())


def test_tracks_silent_for_stale_s_of_data_time_leave_the_stream():
    feed = LiveFeed(stale_s=100)
    feed.seed([fused(1, T), fused(2, T)], {}, [])
    sub, _ = feed.subscribe(StreamFilter())
    for k in range(1, 11):  # track 2 falls silent; the sweep runs every tenth event
        publish(feed, fused(1, T + 20 * k))
        feed.tick()
    events = [sub.queue.get_nowait() for _ in range(sub.queue.qsize())]
    assert [e.ended.tolist() for e in events if len(e.ended)] == [[2]]


def test_publishing_from_many_threads_keeps_the_newest_state_of_every_track():
    feed = LiveFeed()

    def ingest(offset):
        for k in range(200):
            publish(feed, *(fused(g, T + k + offset * 0.1) for g in range(50)))

    threads = [threading.Thread(target=ingest, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    feed.tick()
    sub, [snapshot] = feed.subscribe(StreamFilter())
    tracks = parse(snapshot)[2]["tracks"]
    assert len(tracks) == 50 and {t["time"] for t in tracks} == {T + 199 + 0.3}
    assert feed.counters.published_batches == 800


def test_a_committed_batch_without_fused_track_changes_still_brings_its_alerts():
    """Ingest's tick with only a post-health alert, an empty TrackBatch, a status: each is
    published (FusedTracks of no rows included) and its alerts reach the client."""
    from hq.store.records import FusedTracks

    async def scenario():
        feed = LiveFeed(heartbeat_s=60)
        feed.seed([fused(1, T)], {}, [])
        sub, _ = feed.subscribe(StreamFilter())
        silent = an_alert("node-silent-tummo~post-1", T + 1, None, None, "node_offline")
        feed.publish(IngestBatch(T + 1, fused_tracks=FusedTracks.of([]), alerts=[silent]))
        feed.publish(IngestBatch(T + 1, node_key="tummo/post-1", seq=4,
                                 fused_tracks=FusedTracks.of([])))  # fmt: skip
        feed.publish(IngestBatch(T + 1))
        feed.tick()
        _, event, data = await next_frame(feed.frames(sub))
        assert event == "delta" and delta(data) == ([], [], [])
        assert [a["alert_id"] for a in data["alerts"]] == ["node-silent-tummo~post-1"]
        assert feed.counters.published_batches == 3

    asyncio.run(scenario())


def test_a_stored_track_from_the_far_future_does_not_empty_the_seeded_picture():
    feed = LiveFeed(heartbeat_s=60)
    feed.seed([fused(1, T), fused(2, T), fused(3, 1e308)], {}, [])
    _, first = feed.subscribe(StreamFilter())
    _, event, data = parse(first[0])
    assert event == "snapshot" and [t["global_id"] for t in data["tracks"]] == [1, 2]
