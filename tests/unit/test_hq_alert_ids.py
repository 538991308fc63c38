"""Alert ids: HQ's own are URL-safe, a post's live in its namespace and replace no other
alert (a real SQLite store), and the API acknowledges and resolves them, old ids with a
slash included."""

import re

import pytest

from hq.alerts import AlertConfig, NodeHealthDetector
from hq.alerts.events import post_alert_id
from hq.store.records import IngestBatch
from tests.unit.test_hq_api_support import an_alert, running_api
from tests.unit.test_hq_ingest_group import START, make_ingest
from wire import topics
from wire.messages import Alert, DroneLink, NodeStatus, encode

pytestmark = pytest.mark.unit
URL_SAFE = re.compile(r"[A-Za-z0-9_.~-]+")


def test_every_post_health_alert_id_is_url_safe():
    detector = NodeHealthDetector(AlertConfig(border=((0.0, 0.0), (1.0, 1.0)), home=(0.0, 1.0),
                                              node_silence_s=10.0))  # fmt: skip
    status = NodeStatus(site="tummo", node="west-1", state="offline", time=100.0,
                        software_version="1", outbox_depth=10**6,
                        drones=[DroneLink(sysid=3, connected=False, packet_loss=1.0,
                                          battery_remaining=0.01)])  # fmt: skip
    events = detector.status(status, 100.0) + detector.silence(200.0)
    ids = sorted(e.alert_id for e in events)
    assert ids == ["backlog-tummo~west-1", "battery-tummo~west-1~3", "drone-link-tummo~west-1~3",
                   "node-offline-tummo~west-1", "node-silent-tummo~west-1"]  # fmt: skip
    assert all(URL_SAFE.fullmatch(i) for i in ids)


def test_a_posts_alert_lives_in_its_namespace_and_replaces_no_other(tmp_path):
    ingest = make_ingest(tmp_path / "hq.db")
    hq_alert = an_alert("node-offline-tummo~east-1", START, None, None, "node_offline")
    ingest.store.commit_ingest(IngestBatch(START, alerts=[hq_alert]))
    for node in ("west-1", "east-1"):
        forged = Alert(site="tummo", node=node, alert_id="node-offline-tummo~east-1",
                       alert_type="node_offline", severity="info", time=START + 200,
                       message="fine", active=False)  # fmt: skip
        assert ingest.handle(topics.alerts("tummo", node), encode(forged), START) == "stored"
    stored = {r.alert.alert_id: r.alert for r in ingest.store.alerts(limit=10)}
    assert set(stored) == {"node-offline-tummo~east-1",
                           "post~tummo~west-1~node-offline-tummo~east-1",
                           "post~tummo~east-1~node-offline-tummo~east-1"}  # fmt: skip
    assert stored["node-offline-tummo~east-1"] == hq_alert  # untouched
    for bad in ("a/b", "x" * 129, "with space", "ä"):
        forged = Alert(site="tummo", node="west-1", alert_id=bad, alert_type="node",
                       severity="info", time=START, message="?")  # fmt: skip
        assert ingest.handle(topics.alerts("tummo", "west-1"), encode(forged), START) == (
            "dead_letter")
    ingest.store.close()


def test_the_prefix_of_a_posts_alert_id_says_whose_it_is():
    assert post_alert_id("a", "b", "c~d") == "post~a~b~c~d"
    # Site and node names hold no "~", so no other post's prefix reads as "post~a~b~".
    with pytest.raises(ValueError, match="pattern"):
        NodeStatus(site="a", node="b~c", state="online", time=0.0, software_version="1")
    with pytest.raises(ValueError, match="only letters"):
        post_alert_id("a", "b", "c/d")


@pytest.fixture
def api(tmp_path):
    yield from running_api(tmp_path)


@pytest.mark.parametrize("alert_id", ["node-offline-tummo~post-1", "node-offline-tummo/post-1",
                                      "post~tummo~post-1~a.b_c-d"])  # fmt: skip
def test_operators_acknowledge_and_resolve_any_alert_through_the_api(api, alert_id):
    api.store.commit_ingest(IngestBatch(api.now, alerts=[
        an_alert(alert_id, api.now, None, None, "node_offline")]))  # fmt: skip
    headers = api.auth("operator")
    path = f"/api/v1/alerts/{alert_id}"
    assert api.client.get(path, headers=headers).json()["alert_id"] == alert_id
    acknowledged = api.client.post(f"{path}/acknowledge", headers=headers)
    assert acknowledged.status_code == 200, acknowledged.text
    assert acknowledged.json()["state"] == "acknowledged"
    resolved = api.client.post(f"{path}/resolve", json={"note": "seen"}, headers=headers)
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    encoded = alert_id.replace("/", "%2F")  # as a page's encodeURIComponent sends it
    assert api.client.get(f"/api/v1/alerts/{encoded}", headers=headers).json()["state"] == (
        "resolved")
