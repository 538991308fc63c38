"""The API over each store backend: what operators do through it lands in the store, with
its audit row, whichever backend HQ runs on."""

import time

import pytest
from fastapi.testclient import TestClient

from hq.api.app import create_app
from hq.api.live import LiveFeed
from tests.store_backends import BACKENDS, backend_of
from tests.unit.test_hq_api_support import fill, make_tokens, settings

pytestmark = pytest.mark.unit
V1 = "/api/v1"


@pytest.fixture(params=BACKENDS)
def api(request, tmp_path):
    with backend_of(request.param, tmp_path) as backend:
        config = settings(tmp_path, auth_failures=1000).model_copy(
            update={"store": backend.location})  # fmt: skip
        store = backend.open()
        fill(store, time.time())
        tokens = make_tokens(store)
        with TestClient(create_app(store, config, LiveFeed(tick_s=0.05))) as client:
            yield client, store, {role: {"Authorization": f"Bearer {token}"}
                                  for role, token in tokens.items()}  # fmt: skip
        store.close()


def test_operators_work_through_the_api_on_every_backend(api):
    client, store, auth = api
    listed = client.get(f"{V1}/tracks", headers=auth["viewer"]).json()
    assert [t["global_id"] for t in listed["tracks"]] == [1, 2, 3] and listed["total"] == 3
    labelled = client.patch(f"{V1}/tracks/2", json={"affiliation": "suspect"},
                            headers=auth["operator"])  # fmt: skip
    assert labelled.status_code == 200 and labelled.json()["affiliation"] == "suspect"
    assigned = client.post(f"{V1}/alerts/distress-1/assign", json={"assignee": "team-north"},
                           headers=auth["operator"])  # fmt: skip
    assert (assigned.json()["state"], assigned.json()["assigned_to"]) == ("acknowledged",
                                                                          "team-north")
    resolved = client.post(f"{V1}/alerts/distress-1/resolve", json={"note": "found, safe"},
                           headers=auth["operator"])  # fmt: skip
    assert (resolved.json()["state"], resolved.json()["resolution_note"]) == ("resolved",
                                                                              "found, safe")
    zone = {"name": "dune", "points": [{"lat": 22.0, "lon": 13.0}, {"lat": 22.0, "lon": 13.5},
                                       {"lat": 22.5, "lon": 13.5}]}  # fmt: skip
    assert client.post(f"{V1}/zones", json=zone, headers=auth["admin"]).status_code == 201
    zones = client.get(f"{V1}/zones", headers=auth["viewer"]).json()["zones"]
    assert [z["name"] for z in zones] == ["dune", "wadi"]  # the configured one and the new
    actions = [(e.actor, e.action) for e in store.audit_log() if e.action != "token.create"]
    assert actions == [("operator-user", "track.label"), ("operator-user", "alert.acknowledge"),
                       ("operator-user", "alert.assign"), ("operator-user", "alert.resolve"),
                       ("admin-user", "zone.create")]  # fmt: skip
    assert store.verify_audit().ok
