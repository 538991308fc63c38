"""The HQ API over a real SQLite store: every endpoint, with and without a token, roles,
bad input answered with a clear 4xx, audit rows for operator actions, GeoJSON exports."""

from __future__ import annotations

import math
import random
import sqlite3

import geojson
import pytest

from hq.api.models import TrackList
from hq.api.routers.tracks import current_tracks
from hq.store.records import BBox, FusedTrack, IngestBatch
from tests.unit.test_hq_api_support import NODE, TRACKS, ZONE, running_api
from wire.messages import TargetClass, TrackStatus

pytestmark = pytest.mark.unit
V1 = "/api/v1"

# (method, path, body, the least role that may call it)
ENDPOINTS = [
    ("GET", "/tracks", None, "viewer"),
    ("GET", "/tracks/1", None, "viewer"),
    ("PATCH", "/tracks/1", {"affiliation": "friend"}, "operator"),
    ("GET", "/tracks/1/history", None, "viewer"),
    ("GET", "/nodes", None, "viewer"),
    ("GET", "/nodes/tummo/post-1", None, "viewer"),
    ("GET", "/alerts", None, "viewer"),
    ("GET", "/alerts/distress-1", None, "viewer"),
    ("POST", "/alerts/distress-1/acknowledge", None, "operator"),
    ("POST", "/alerts/node-x/resolve", {"note": "post back"}, "operator"),
    ("GET", "/zones", None, "viewer"),
    ("GET", "/zones/wadi", None, "viewer"),
    ("POST", "/zones", {"name": "new", "points": [{"lat": 1, "lon": 2}, {"lat": 1, "lon": 3},
                                                 {"lat": 2, "lon": 3}]}, "admin"),
    ("PUT", "/zones/wadi", {"points": [{"lat": 1, "lon": 2}, {"lat": 1, "lon": 3},
                                       {"lat": 2, "lon": 3}]}, "admin"),
    ("GET", "/border", None, "viewer"),
    ("PUT", "/border", {"points": [{"lat": 23.5, "lon": 12.0}, {"lat": 22.8, "lon": 14.2}]},
     "admin"),
    ("GET", "/flow", None, "viewer"),
    ("GET", "/audit", None, "admin"),
    ("GET", "/exports/tracks.geojson", None, "operator"),
    ("GET", "/exports/tracks/1/history.geojson", None, "operator"),
    ("GET", "/exports/alerts.geojson", None, "operator"),
    ("GET", "/me", None, "viewer"),
]
ROLES = ["viewer", "operator", "admin"]


@pytest.fixture
def api(tmp_path):
    yield from running_api(tmp_path)


def call(api, method, path, body=None, role=None, **kw):
    headers = api.auth(role) if role else {}
    return api.client.request(method, V1 + path, json=body, headers=headers, **kw)


@pytest.mark.parametrize("method, path, body, least", ENDPOINTS)
def test_every_endpoint_refuses_a_caller_without_a_token(api, method, path, body, least):
    response = call(api, method, path, body)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "missing bearer token"}


@pytest.mark.parametrize("method, path, body, least", ENDPOINTS)
def test_every_endpoint_answers_the_roles_that_may_call_it_and_refuses_the_others(
        api, method, path, body, least):  # fmt: skip
    for role in ROLES:
        allowed = ROLES.index(role) >= ROLES.index(least)
        if not allowed:
            response = call(api, method, path, body, role)
            assert response.status_code == 403, (role, response.text)
            assert least in response.json()["detail"]
    response = call(api, method, path, body, least)  # once: some calls change state
    assert response.status_code in (200, 201), response.text


def test_health_needs_no_token_and_metrics_count_requests_and_auth_failures(api):
    assert api.client.get("/healthz").json() == {"status": "ok"}
    ready = api.client.get("/readyz")
    assert ready.status_code == 200 and all(ready.json()["checks"].values())
    assert api.client.get("/metrics").status_code == 401
    api.client.get(f"{V1}/tracks", headers={"Authorization": "Bearer dw_00000000_forged"})
    text = api.client.get("/metrics", headers=api.auth("viewer")).text
    assert 'dunewatch_api_auth_failures_total{reason="unknown_token"} 1.0' in text
    assert ('dunewatch_api_requests_total{handler="list_tracks",method="GET",status="401"}'
            in text)  # fmt: skip
    assert "dunewatch_api_sse_clients 0.0" in text


# -- tracks ----------------------------------------------------------------------------------


def test_current_tracks_filter_by_box_class_and_status_and_page(api):
    def ids(query):
        response = api.client.get(f"{V1}/tracks?{query}", headers=api.auth("viewer"))
        assert response.status_code == 200, response.text
        return [t["global_id"] for t in response.json()["tracks"]]

    assert ids("") == [1, 2, 3]
    assert ids("bbox=22.8,14.1,22.95,14.5") == [1, 2]
    assert ids("class=vehicle&class=animal") == [2, 3]
    assert ids("status=coasting") == []
    first = api.client.get(f"{V1}/tracks?limit=2", headers=api.auth("viewer")).json()
    assert first["total"] == 3 and first["next_after"] == 2
    last = api.client.get(f"{V1}/tracks?limit=2&after=2", headers=api.auth("viewer")).json()
    assert [t["global_id"] for t in last["tracks"]] == [3] and last["next_after"] is None


def test_a_track_comes_with_its_node_tracks_and_derived_motion(api):
    track = api.client.get(f"{V1}/tracks/2", headers=api.auth("viewer")).json()
    assert (track["lat"], track["lon"], track["target_class"]) == (22.90, 14.40, "vehicle")
    assert track["affiliation"] == "unknown"  # until an operator says otherwise
    assert track["speed"] == pytest.approx(5.0) and track["course"] == pytest.approx(36.8699)
    assert track["position_covariance"] == [[25.0, 1.5], [1.5, 20.0]]
    assert [s["track"]["track_id"] for s in track["source_tracks"]] == [102]


def test_an_operator_labels_a_track_and_the_audit_log_says_who(api):
    response = api.client.patch(f"{V1}/tracks/1", json={"target_class": "vehicle"},
                                headers=api.auth("operator"))  # fmt: skip
    assert response.status_code == 200
    response = api.client.patch(f"{V1}/tracks/1", json={"affiliation": "neutral"},
                                headers=api.auth("operator"))  # fmt: skip
    track = response.json()
    assert (track["target_class"], track["fused_class"], track["affiliation"]) == (
        "vehicle", "person", "neutral")  # the earlier class change is kept
    assert track["label"]["updated_by"] == "operator-user"
    vehicles = api.client.get(f"{V1}/tracks?class=vehicle", headers=api.auth("viewer")).json()
    assert [t["global_id"] for t in vehicles["tracks"]] == [1, 2]
    [entry] = [e for e in api.store.audit_log() if e.action == "track.label"][-1:]
    assert entry.actor == "operator-user"
    assert entry.details_dict()["previous"] == {"affiliation": None, "target_class": "vehicle"}
    assert api.store.verify_audit().ok


def random_tracks(rng: random.Random, first_id: int, count: int) -> list[FusedTrack]:
    """Tracks whose numbers reach the corners of float formatting (exponents, subnormals,
    negative zero, a course a hair below north) and whose 4x4 covariance has no two
    entries alike, so that a wrong index shows; some covariances hold NaN or infinity."""
    odd = [0.0, -0.0, 1e-7, -1.5e-7, 1e16, 1e22, 5e-324, 1.7976931348623157e308, 1e-20,
           -1e-20, 123456789.123456789, 0.1, 2.0**53]  # fmt: skip

    def number():
        if rng.random() < 0.3:
            return rng.choice(odd)
        return rng.uniform(-1, 1) * 10.0 ** rng.randint(-12, 12)

    tracks = []
    for gid in range(first_id, first_id + count):
        covariance = [number() + k * 1e-3 for k in range(16)]
        if rng.random() < 0.1:
            covariance[rng.choice([0, 1, 4, 5, 10, 11, 14, 15])] = rng.choice(
                [math.nan, math.inf, -math.inf])
        sources = [f"{NODE}:{rng.randint(0, 10**6)}", rng.choice(
            ['sïte/nöde:1', 'a"quote\\back:2', "line\u2028sep:3", "\U0001f42a/x:4", "c\x01:5"])]
        tracks.append(FusedTrack(
            gid, rng.uniform(0, 2e9), rng.uniform(-90, 90), rng.uniform(-180, 180), number(),
            (number(), number(), rng.choice([number(), -1e-20]), rng.choice([number(), 1.0])),
            tuple(covariance), rng.choice(list(TargetClass)), rng.choice(list(TrackStatus)),
            rng.random(), tuple(sources[:rng.randint(0, 2)])))  # fmt: skip
    return tracks


def model_path_body(api, bbox=None, classes=None, status=None, after=None, limit=1000):
    """The track list as its models write it: a TrackOut per track (track_out, labels
    applied) and TrackList's own serialiser; what the list endpoint must answer."""
    tracks = current_tracks(api.client.app.state.context, bbox, classes, status)
    page = [t for t in tracks if after is None or t.global_id > after][:limit]
    more = len(page) == limit and page[-1].global_id != tracks[-1].global_id
    result = TrackList.model_construct(total=len(tracks), tracks=page,
                                       next_after=page[-1].global_id if more else None)
    return result.__pydantic_serializer__.to_json(result)


def test_the_track_list_writes_byte_for_byte_what_its_models_would(api):
    rng = random.Random(8)
    api.store.commit_ingest(IngestBatch(api.now, fused_tracks=random_tracks(rng, 10, 300)))
    operator = api.auth("operator")
    for gid in rng.sample(range(10, 310), 40):  # labels: class, affiliation or both
        change = rng.choice([{"target_class": rng.choice(list(TargetClass))},
                             {"affiliation": "suspect"},
                             {"target_class": "animal", "affiliation": "friend"}])  # fmt: skip
        assert api.client.patch(f"{V1}/tracks/{gid}", json=change,
                                headers=operator).status_code == 200  # fmt: skip
    box = BBox(-30.0, -60.0, 45.0, 100.0)
    queries = [
        {}, {"limit": 7}, {"limit": 7, "after": 150}, {"after": 10**12},
        {"classes": [TargetClass.VEHICLE, TargetClass.ANIMAL]},
        {"classes": [TargetClass.PERSON], "limit": 5, "after": 100},
        {"status": TrackStatus.COASTING}, {"bbox": box},
        {"bbox": box, "classes": [TargetClass.UNKNOWN], "status": TrackStatus.CONFIRMED},
    ]  # fmt: skip
    for query in queries:
        params = [("class", str(c)) for c in query.get("classes", [])]
        params += [(k, str(v)) for k, v in query.items() if k in ("status", "after", "limit")]
        if "bbox" in query:
            params.append(("bbox", ",".join(str(x) for x in vars(query["bbox"]).values())))
        response = api.client.get(f"{V1}/tracks", params=params, headers=api.auth("viewer"))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        expected = model_path_body(api, **query)
        assert response.content == expected, query
    # The cases did come up: labelled tracks, and covariances written as null (NaN, inf).
    everything = api.client.get(f"{V1}/tracks", headers=api.auth("viewer")).json()["tracks"]
    assert sum(t["label"] is not None for t in everything) == 40
    assert any(None in row for t in everything for row in t["velocity_covariance"])


def test_paging_with_next_after_visits_every_track_once_in_order(api):
    api.store.commit_ingest(IngestBatch(api.now,
                                        fused_tracks=random_tracks(random.Random(3), 10, 50)))
    seen, after, pages = [], None, 0
    while True:
        query = "limit=8" + ("" if after is None else f"&after={after}")
        page = api.client.get(f"{V1}/tracks?{query}", headers=api.auth("viewer")).json()
        assert page["total"] == 53
        seen += [t["global_id"] for t in page["tracks"]]
        pages, after = pages + 1, page["next_after"]
        if after is None:
            break
    assert seen == [*TRACKS, *range(10, 60)] and pages == 7


# -- history ---------------------------------------------------------------------------------


def test_history_is_decimated_for_a_long_window_and_keeps_both_ends(api):
    t0, t1 = api.now - 4000, api.now + 1
    response = api.client.get(f"{V1}/tracks/1/history?t0={t0}&t1={t1}&max_points=100",
                              headers=api.auth("viewer"))  # fmt: skip
    points = response.json()["points"]
    assert 50 < len(points) <= 100
    assert points[0]["time"] == pytest.approx(api.now - 3600) and points[-1]["time"] == api.now
    assert [p["time"] for p in points] == sorted(p["time"] for p in points)


def test_history_of_a_track_that_never_existed_is_404_and_an_empty_window_is_empty(api):
    missing = api.client.get(f"{V1}/tracks/999/history", headers=api.auth("viewer"))
    assert missing.status_code == 404 and "999" in missing.json()["detail"]
    empty = api.client.get(f"{V1}/tracks/2/history?t0=1000&t1=2000", headers=api.auth("viewer"))
    assert empty.status_code == 200 and empty.json()["points"] == []


# -- nodes, zones, flow, audit ---------------------------------------------------------------


def test_nodes_report_liveness_uplink_and_drone_health(api):
    [node] = api.client.get(f"{V1}/nodes", headers=api.auth("viewer")).json()["nodes"]
    assert node["node_key"] == "tummo/post-1" and node["alive"] is True
    assert node["outbox_depth"] == 4 and node["last_seq"] == 1 and node["batches"] == 1
    assert node["drones"][0]["battery_remaining"] == 0.55
    missing = api.client.get(f"{V1}/nodes/tummo/nope", headers=api.auth("viewer"))
    assert missing.status_code == 404


def test_zones_come_from_the_config_and_admins_change_them_audited(api):
    zone = api.client.get(f"{V1}/zones/wadi", headers=api.auth("viewer")).json()
    assert [[p["lat"], p["lon"]] for p in zone["points"]] == ZONE
    points = [{"lat": 21.0, "lon": 12.0}, {"lat": 21.0, "lon": 12.5}, {"lat": 21.5, "lon": 12.5}]
    created = api.client.post(f"{V1}/zones", json={"name": "oasis", "points": points},
                              headers=api.auth("admin"))  # fmt: skip
    assert created.status_code == 201 and created.json()["updated_by"] == "admin-user"
    again = api.client.post(f"{V1}/zones", json={"name": "oasis", "points": points},
                            headers=api.auth("admin"))  # fmt: skip
    assert again.status_code == 409
    absent = api.client.put(f"{V1}/zones/nowhere", json={"points": points},
                            headers=api.auth("admin"))  # fmt: skip
    assert absent.status_code == 404
    names = [z["name"] for z in api.client.get(f"{V1}/zones", headers=api.auth("viewer"))
             .json()["zones"]]  # fmt: skip
    assert names == ["oasis", "wadi"]
    assert [e.action for e in api.store.audit_log()][-1] == "zone.create"


def test_flow_is_empty_without_ingest_in_the_process_and_refuses_a_reversed_window(api):
    assert api.client.get(f"{V1}/flow", headers=api.auth("viewer")).json() == {"rows": []}
    reversed_ = api.client.get(f"{V1}/flow?since=10&until=5", headers=api.auth("viewer"))
    assert reversed_.status_code == 422


def test_the_audit_log_pages_for_admins(api):
    tokens_created = api.store.audit_log()  # the fixture's tokens, audited as they were made
    assert [e.action for e in tokens_created] == ["token.create"] * 3
    for n in range(3):
        api.store.append_audit("someone", "test.action", {"n": n})
    page = api.client.get(f"{V1}/audit?limit=2&after_seq={tokens_created[-1].seq}",
                          headers=api.auth("admin")).json()  # fmt: skip
    assert [e["details"] for e in page["entries"]] == [{"n": 0}, {"n": 1}]
    rest = api.client.get(f"{V1}/audit?after_seq={page['next_after']}",
                          headers=api.auth("admin")).json()  # fmt: skip
    assert [e["details"] for e in rest["entries"]] == [{"n": 2}] and rest["next_after"] is None


# -- alerts ----------------------------------------------------------------------------------


def test_acknowledge_then_resolve_records_who_and_when_in_the_audit_log(api):
    ack = api.client.post(f"{V1}/alerts/distress-1/acknowledge", headers=api.auth("operator"))
    assert ack.status_code == 200
    assert (ack.json()["state"], ack.json()["acknowledged_by"]) == ("acknowledged",
                                                                    "operator-user")
    twice = api.client.post(f"{V1}/alerts/distress-1/acknowledge", headers=api.auth("operator"))
    assert twice.status_code == 409
    done = api.client.post(f"{V1}/alerts/distress-1/resolve", json={"note": "found, safe"},
                           headers=api.auth("admin"))  # fmt: skip
    assert done.json()["state"] == "resolved" and done.json()["resolved_by"] == "admin-user"
    assert api.client.post(f"{V1}/alerts/distress-1/resolve", json={},
                           headers=api.auth("admin")).status_code == 409  # fmt: skip
    actions = [(e.actor, e.action, e.details_dict()["alert_id"]) for e in api.store.audit_log()
               if e.action.startswith("alert.")]  # fmt: skip
    assert actions == [("operator-user", "alert.acknowledge", "distress-1"),
                       ("admin-user", "alert.resolve", "distress-1")]  # fmt: skip
    by_state = {s: [a["alert_id"] for a in api.client.get(
        f"{V1}/alerts?state={s}", headers=api.auth("viewer")).json()["alerts"]]
        for s in ("open", "acknowledged", "resolved")}  # fmt: skip
    assert by_state == {"open": ["node-x"], "acknowledged": [], "resolved": ["distress-1"]}


def test_a_viewer_cannot_acknowledge_and_nothing_changes(api):
    response = api.client.post(f"{V1}/alerts/distress-1/acknowledge", headers=api.auth("viewer"))
    assert response.status_code == 403
    assert api.client.get(f"{V1}/alerts/distress-1",
                          headers=api.auth("viewer")).json()["state"] == "open"  # fmt: skip
    assert not [e for e in api.store.audit_log() if e.action.startswith("alert.")]


# -- exports ---------------------------------------------------------------------------------


def test_track_export_is_rfc7946_geojson_with_lon_lat_order_and_is_audited(api):
    response = api.client.get(f"{V1}/exports/tracks.geojson", headers=api.auth("operator"))
    assert response.headers["content-type"] == "application/geo+json"
    collection = geojson.loads(response.text)
    assert collection.is_valid and collection["type"] == "FeatureCollection"
    for feature in collection["features"]:
        lat, lon, _ = TRACKS[feature["id"]]
        assert feature["geometry"]["coordinates"][:2] == [lon, lat]  # longitude first
        assert feature["properties"]["global_id"] == feature["id"]
    [entry] = [e for e in api.store.audit_log() if e.action == "export.tracks"]
    assert entry.actor == "operator-user" and entry.details_dict()["features"] == 3


def test_history_export_is_a_linestring_in_time_order(api):
    response = api.client.get(f"{V1}/exports/tracks/1/history.geojson?t0={api.now - 4000}"
                              f"&t1={api.now + 1}&max_points=10",
                              headers=api.auth("operator"))  # fmt: skip
    collection = geojson.loads(response.text)
    assert collection.is_valid
    [feature] = collection["features"]
    line = feature["geometry"]
    assert line["type"] == "LineString" and len(line["coordinates"]) == 10
    assert line["coordinates"][0] == [pytest.approx(14.10), pytest.approx(22.80)]
    assert len(feature["properties"]["times"]) == 10


def test_alert_export_keeps_alerts_without_a_position_with_a_null_geometry(api):
    response = api.client.get(f"{V1}/exports/alerts.geojson", headers=api.auth("operator"))
    collection = geojson.loads(response.text)
    assert collection.is_valid
    by_id = {f["id"]: f for f in collection["features"]}
    assert by_id["distress-1"]["geometry"]["coordinates"] == [14.2, 22.9]
    assert by_id["node-x"]["geometry"] is None


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("path, status, words", [
    ("/tracks?bbox=1,2,3", 422, "query.bbox: String should match pattern"),
    ("/tracks?bbox=a,b,c,d", 422, "query.bbox"),
    ("/tracks?bbox=nan,1,2,3", 422, "query.bbox"),
    ("/tracks?bbox=0,0,1,1e999", 422, "query.bbox"),
    ("/tracks?bbox=23,14,22,15", 422, "south <= north"),
    ("/tracks?bbox=0,0,1,200", 422, "longitudes in [-180, 180]"),
    ("/tracks?class=dragon", 422, "class"),
    ("/tracks?limit=1000000", 422, "limit"),
    ("/tracks?limit=0", 422, "limit"),
    ("/tracks/-1", 422, "global_id"),
    ("/tracks/abc", 422, "global_id"),
    ("/tracks/99999999999999999999999", 422, "global_id"),
    ("/tracks/424242", 404, "no track"),
    ("/tracks/1/history?t0=100&t1=50", 422, "t0 < t1"),
    ("/tracks/1/history?t0=0&t1=90000000", 422, "longer than"),
    ("/tracks/1/history?t0=nan", 422, "t0"),
    ("/tracks/1/history?t1=inf", 422, "t1"),
    ("/tracks/1/history?max_points=1", 422, "max_points"),
    ("/alerts?state=bogus", 422, "state"),
    ("/alerts/nope", 404, "no alert"),
    ("/audit?limit=99999", 422, "limit"),
    ("/zones/no%20spaces", 422, "name"),
])  # fmt: skip
def test_bad_parameters_get_a_clear_4xx(api, path, status, words):
    response = api.client.get(V1 + path, headers=api.auth("admin"))
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


@pytest.mark.parametrize("content, content_type, status, words", [
    (b'{"affiliation": "friend"', "application/json", 422, "JSON"),
    (b'{"affiliation": "friend"}', "text/plain", 415, "application/json"),
    (b'{"affiliation": "friend"}', None, 415, "application/json"),
    (b'{"affiliation": "ally"}', "application/json", 422, "affiliation"),
    (b'{"colour": "red"}', "application/json", 422, "colour"),
    (b"{}", "application/json", 422, "affiliation, target_class or both"),
    (b"[1, 2]", "application/json", 422, "body"),
    (b'{"affiliation": "' + b"x" * 100_000 + b'"}', "application/json", 413, "exceeds"),
])  # fmt: skip
def test_bad_bodies_get_a_clear_4xx(api, content, content_type, status, words):
    headers = api.auth("operator") | ({"Content-Type": content_type} if content_type else {})
    response = api.client.patch(f"{V1}/tracks/1", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert words in response.json()["detail"]


def test_a_malformed_body_from_an_anonymous_caller_is_401_not_a_validation_answer(api):
    response = api.client.patch(f"{V1}/tracks/1", content=b"{oops",
                                headers={"Content-Type": "application/json"})  # fmt: skip
    assert response.status_code == 401


@pytest.mark.parametrize("header, reason", [
    ("Bearer dw_00000000_forgedforgedforged", "unknown token"),
    ("Bearer not-even-the-format", "malformed token"),
    ("Basic dXNlcjpwYXNz", "Bearer <token>"),
    ("Bearer ", "Bearer <token>"),
])  # fmt: skip
def test_forged_or_malformed_tokens_are_401(api, header, reason):
    response = api.client.get(f"{V1}/tracks", headers={"Authorization": header})
    assert response.status_code == 401 and reason in response.json()["detail"]


def test_a_token_whose_secret_is_altered_is_refused(api):
    token = api.tokens["admin"]
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = api.client.get(f"{V1}/tracks", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401 and response.json()["detail"] == "unknown token"


def test_tokens_are_stored_hashed(api):
    with sqlite3.connect(api.settings.store) as conn:
        stored = " ".join(str(v) for row in conn.execute("SELECT * FROM api_tokens")
                          for v in row)  # fmt: skip
    for token in api.tokens.values():
        assert token.split("_", 2)[2] not in stored


def test_a_streamed_body_without_content_length_is_cut_at_the_limit(api):
    def chunks():
        yield b'{"affiliation": "'
        for _ in range(100):
            yield b"x" * 1000

    response = api.client.patch(f"{V1}/tracks/1", content=chunks(),
                                headers=api.auth("operator") | {"Content-Type":
                                                                "application/json"})
    assert response.status_code == 413 and "exceeds" in response.json()["detail"]


def test_cors_is_closed_by_default(api):
    response = api.client.options(f"{V1}/tracks", headers={
        "Origin": "http://elsewhere.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in response.headers
