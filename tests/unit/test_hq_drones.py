"""Our own drones at HQ: ingest stores their telemetry, the API serves it (GET /drones, a
drone's history, the live stream's snapshot and deltas, GeoJSON), and the TAK streamer
sends them as friendly UAVs with their cameras' footprints."""

from __future__ import annotations

import asyncio
import math
import xml.etree.ElementTree as ET

import pytest

from hq.api.live import LiveFeed, StreamFilter
from hq.api.models import DeltaData, DroneOut, SnapshotData
from hq.store.records import BBox, IngestBatch
from hq.tak import TakConfig, TakStreamer
from hq.tak.cot import cot_time
from tests.unit.test_hq_api_live import next_frame, parse
from tests.unit.test_hq_api_support import running_api
from tests.unit.test_hq_ingest_group import make_ingest
from wire import topics
from wire.messages import CameraFootprint, VehicleTelemetry, encode

pytestmark = pytest.mark.unit
V1 = "/api/v1"
# A camera looking down and ahead: its four ground corners, top-left first (lon, lat).
CORNERS = [(14.140, 22.860), (14.150, 22.860), (14.148, 22.852), (14.142, 22.852)]


def telemetry(t, node="post-1", sysid=1, lat=22.85, corners=CORNERS, **more):
    fields = dict(
        site="tummo",
        node=node,
        sysid=sysid,
        time=float(t),
        lat=lat,
        lon=14.145,
        alt=950.0,
        velocity_enu=(6.0, 8.0, -0.5),
        heading_deg=-10.0,
        battery_remaining=0.64,
        link_connected=True,
        packet_loss=0.03,
        footprints=[CameraFootprint(camera="gimbal-thermal", corners=corners)],
    )
    fields.update(more)
    return VehicleTelemetry(**fields)


# -- ingest -----------------------------------------------------------------------------------


def test_ingest_stores_a_posts_telemetry_and_hands_it_to_the_live_stream(tmp_path):
    committed = []
    ingest = make_ingest(tmp_path / "hq.db", on_commit=committed.append)
    message = telemetry(100.0)
    topic = topics.telemetry("tummo", "post-1")
    assert ingest.handle(topic, encode(message), 101.0) == "stored"
    assert ingest.store.drones() == [message]
    assert [b.telemetry for b in committed] == [[message]]
    # Another post's drone on this post's topic is refused, not stored.
    assert ingest.handle(topic, encode(telemetry(102.0, node="post-2")), 103.0) == "dead_letter"
    assert ingest.store.drones() == [message]
    assert ingest.counters.telemetry == 1


# -- the API ----------------------------------------------------------------------------------


@pytest.fixture
def api(tmp_path):
    yield from running_api(tmp_path)


def test_get_drones_names_each_by_post_and_system_id_with_its_footprint(api):
    now = api.now
    api.store.commit_ingest_many([
        IngestBatch(now, telemetry=[telemetry(now - 2, lat=22.85)]),
        IngestBatch(now, telemetry=[telemetry(now - 1, lat=22.86)]),  # the newest of drone 1
        IngestBatch(now, telemetry=[telemetry(now - 1, node="post-2", lat=22.70,
                                              corners=[CORNERS[0], None, None, CORNERS[3]],
                                              battery_remaining=None, link_connected=None)]),
    ])  # fmt: skip
    assert api.client.get(V1 + "/drones").status_code == 401
    response = api.client.get(V1 + "/drones", headers=api.auth("viewer"))
    assert response.status_code == 200
    drones = [DroneOut.model_validate(d) for d in response.json()["drones"]]
    assert [d.label for d in drones] == ["tummo/post-1 drone 1", "tummo/post-2 drone 1"]
    first, second = drones
    assert (first.drone_id, first.site, first.node, first.system_id) == (
        "tummo/post-1/1", "tummo", "post-1", 1)  # fmt: skip
    assert (first.time, first.lat, first.lon, first.alt) == (now - 1, 22.86, 14.145, 950.0)
    assert first.heading == pytest.approx(350.0)
    assert first.ground_speed == pytest.approx(10.0) and first.climb_rate == -0.5
    assert first.course == pytest.approx(math.degrees(math.atan2(6.0, 8.0)))
    assert (first.battery_remaining, first.link, first.packet_loss) == (0.64, "ok", 0.03)
    [footprint] = first.footprints
    assert footprint.camera == "gimbal-thermal"
    assert [(c.lat, c.lon) for c in footprint.corners] == [(lat, lon) for lon, lat in CORNERS]
    assert second.link == "unknown" and second.battery_remaining is None
    assert second.footprints[0].corners[1] is None


def test_a_drones_history_is_decimated_and_its_window_checked(api):
    now = api.now
    api.store.commit_ingest_many([IngestBatch(now, telemetry=[telemetry(now - 100 + k)])
                                  for k in range(100)])  # fmt: skip
    path = V1 + "/drones/tummo/post-1/1/history"
    viewer = api.auth("viewer")
    full = api.client.get(path, headers=viewer, params={"t0": now - 200, "t1": now}).json()
    assert [p["time"] for p in full["points"]] == [now - 100 + k for k in range(100)]
    assert full["drone_id"] == "tummo/post-1/1"
    cut = api.client.get(
        path, headers=viewer, params={"t0": now - 200, "t1": now, "max_points": 10}
    ).json()
    times = [p["time"] for p in cut["points"]]
    assert len(times) <= 10 and times[0] == now - 100 and times[-1] == now - 1
    assert api.client.get(V1 + "/drones/tummo/post-1/2/history", headers=viewer).status_code == 404
    assert api.client.get(path, headers=viewer, params={"t0": now, "t1": now - 5}
                          ).status_code == 422  # fmt: skip
    assert api.client.get(V1 + "/drones/tummo/post-1/0/history", headers=viewer
                          ).status_code == 422  # fmt: skip


def test_the_drones_geojson_export_has_lon_lat_points_and_closed_anticlockwise_footprints(api):
    now = api.now
    api.store.commit_ingest_many([IngestBatch(now, telemetry=[
        telemetry(now), telemetry(now, sysid=2, corners=[CORNERS[0], None, CORNERS[2], CORNERS[3]])
    ])])  # fmt: skip
    path = V1 + "/exports/drones.geojson"
    assert api.client.get(path, headers=api.auth("viewer")).status_code == 403
    response = api.client.get(path, headers=api.auth("operator"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/geo+json")
    features = response.json()["features"]
    points = [f for f in features if f["geometry"]["type"] == "Point"]
    polygons = [f for f in features if f["geometry"]["type"] == "Polygon"]
    assert [p["id"] for p in points] == ["tummo/post-1/1", "tummo/post-1/2"]
    assert points[0]["geometry"]["coordinates"] == [14.145, 22.85, 950.0]
    [polygon] = polygons  # drone 2's footprint has a corner in the sky: no polygon
    assert polygon["id"] == "tummo/post-1/1/gimbal-thermal"
    assert polygon["properties"]["label"] == "tummo/post-1 drone 1"
    [ring] = polygon["geometry"]["coordinates"]
    assert ring[0] == ring[-1] and len(ring) == 5
    assert {tuple(p) for p in ring} == set(CORNERS)
    lon = [p[0] for p in ring]
    lat = [p[1] for p in ring]
    area = sum(lon[k] * lat[k + 1] - lon[k + 1] * lat[k] for k in range(4)) / 2
    assert area > 0  # RFC 7946: an exterior ring goes anticlockwise
    actions = [e.action for e in api.store.audit_log(limit=1000)]
    assert actions[-1] == "export.drones"


# -- the live stream --------------------------------------------------------------------------


def test_the_live_stream_carries_drones_in_its_snapshot_and_deltas_whatever_the_filter():
    async def scenario():
        feed = LiveFeed(heartbeat_s=60)
        feed.seed([], {}, [], drones=[telemetry(10.0)])
        far_away = StreamFilter(bbox=BBox(0.0, 0.0, 1.0, 1.0))  # the drones are not in it
        sub, first = feed.subscribe(far_away)
        _, event, data = parse(first[0])
        assert event == "snapshot" and SnapshotData.model_validate(data)
        assert [d["label"] for d in data["drones"]] == ["tummo/post-1 drone 1"]
        # Two messages of drone 1 and one of another post's drone 1 in one tick; then an
        # older one from a post's backlog, which changes nothing.
        for message in (telemetry(11.0, lat=22.851), telemetry(12.0, lat=22.852),
                        telemetry(11.5, node="post-2", lat=22.7)):  # fmt: skip
            feed.publish(IngestBatch(12.0, telemetry=[message]))
        feed.tick()
        frames = feed.frames(sub)
        _, event, data = await next_frame(frames)
        assert event == "delta" and DeltaData.model_validate(data)
        assert [(d["drone_id"], d["time"], d["lat"]) for d in data["drones"]] == [
            ("tummo/post-1/1", 12.0, 22.852), ("tummo/post-2/1", 11.5, 22.7)]  # fmt: skip
        assert data["created"] == data["updated"] == data["ended"] == []
        feed.publish(IngestBatch(13.0, telemetry=[telemetry(9.0, lat=20.0)]))
        feed.tick()
        assert sub.queue.empty()
        _, _, snapshot = parse(feed.snapshot_frame(StreamFilter()))
        assert {(d["drone_id"], d["lat"]) for d in snapshot["drones"]} == {
            ("tummo/post-1/1", 22.852), ("tummo/post-2/1", 22.7)}  # fmt: skip

    asyncio.run(scenario())


# -- Cursor-on-Target -------------------------------------------------------------------------


class DroneSource:
    def __init__(self, drones):
        self.telemetry = list(drones)

    def current_tracks(self):
        return []

    def open_alerts(self):
        return []

    def labels(self):
        return {}

    def drones(self):
        return self.telemetry


def events_of(streamer, now):
    return {e.get("uid"): e for e in map(ET.fromstring, streamer.poll(now))}


def test_tak_gets_each_drone_as_a_friendly_uav_and_its_footprint_as_a_closed_shape():
    now = 1_700_000_000.0
    source = DroneSource(
        [telemetry(now - 1), telemetry(now - 1, node="post-2", corners=[None, *CORNERS[1:]])]
    )
    streamer = TakStreamer(TakConfig(host="127.0.0.1", port=8087, period_s=5.0), source)
    events = events_of(streamer, now)
    drone_1 = "dunewatch-drone-tummo-post-1-1"
    footprint_1 = f"{drone_1}-footprint-gimbal-thermal"
    assert set(events) == {drone_1, "dunewatch-drone-tummo-post-2-1", footprint_1}
    drone = events[drone_1]
    assert drone.get("type") == "a-f-A-M-F-Q" and drone.get("how") == "m-g"
    assert drone.find("detail/contact").get("callsign") == "tummo/post-1 drone 1"
    point = drone.find("point")
    assert (float(point.get("lat")), float(point.get("lon")), float(point.get("hae"))) == (
        22.85, 14.145, 950.0)  # fmt: skip
    assert float(drone.find("detail/track").get("speed")) == pytest.approx(10.0)
    assert drone.find("detail/status").get("battery") == "64"
    shape = events[footprint_1]
    assert shape.get("type") == "u-d-f"
    links = [tuple(map(float, link.get("point").split(","))) for link in shape.iter("link")]
    assert links == [(lat, lon) for lon, lat in (*CORNERS, CORNERS[0])]
    # The drone falls silent: it and its footprint are withdrawn once (stale now), then gone.
    source.telemetry = [telemetry(now - 1, node="post-2")]
    later = now + streamer.config.drone_silence_s + 5
    withdrawn = events_of(streamer, later)
    assert drone_1 in withdrawn and footprint_1 in withdrawn
    for uid in (drone_1, footprint_1):
        assert withdrawn[uid].get("stale") == cot_time(later)  # TAK drops it at once
    assert drone_1 not in events_of(streamer, later + 5)
