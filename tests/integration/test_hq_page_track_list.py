"""The track list beside the operator's map, in headless chromium: filtered by class,
affiliation, post, age and speed, sorted by any column, and a click on a row centres the
map on that track and selects it. HQ's own API is the reference for what each track is."""

from __future__ import annotations

import time

import pytest

from tests.integration.test_hq_ingest import publisher
from tests.integration.test_hq_page import CHROMIUM, NODE, SITE, chromium_page, running_hq, sign_in
from tests.integration.test_hq_page_symbols import fused_ids, publish

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium)"),
]  # fmt: skip

# (track id, class, metres east and north of the post, m/s east and north)
OBJECTS = [(1, "person", (600.0, 900.0), (0.0, 0.0)),
           (2, "vehicle", (1400.0, 900.0), (12.0, 0.0)),
           (3, "person", (1000.0, 300.0), (0.0, 1.2)),
           (4, "animal", (200.0, 1500.0), (0.5, 0.0)),
           (5, "unknown", (-800.0, 400.0), (0.0, -3.0))]  # fmt: skip
AFFILIATIONS = {1: "hostile", 5: "neutral"}  # by the post's track id; the rest stay unknown

LISTED = "window.dunewatch ? window.dunewatch.state().trackList : []"


def test_the_track_list_filters_sorts_and_centres_the_map_on_a_track(tmp_path):
    with running_hq(tmp_path) as stack:
        client = publisher(NODE, stack.broker_port, stack.passwords)
        api = stack.api()
        try:
            start = time.time()
            for seq in range(3):
                publish(client, seq, OBJECTS, time.time() - start)
                time.sleep(0.3)
            ids = fused_ids(api, len(OBJECTS))
            for node_track, affiliation in AFFILIATIONS.items():
                answer = api.patch(f"/api/v1/tracks/{ids[node_track]}",
                                   json={"affiliation": affiliation})  # fmt: skip
                assert answer.status_code == 200, answer.text
            with chromium_page() as page:
                sign_in(page, stack.url, stack.token)
                page.wait_for_function(
                    """(n) => window.dunewatch && window.dunewatch.state().trackList.length === n
                        && window.dunewatch.state().tracks.filter(
                            (t) => t.affiliation !== "unknown").length === 2""",
                    arg=len(OBJECTS), timeout=20_000)  # fmt: skip
                reference = {t["global_id"]: t for t in api.get("/api/v1/tracks").json()["tracks"]}
                assert set(reference) == set(ids.values())
                _sorts(page, reference)
                _filters(page, reference, ids)
                _a_click_centres_the_map_on_the_track(page, ids[2])
                page.screenshot(path=str(tmp_path / "hq_page_track_list.png"))
                assert page.problems == []
        finally:
            client.loop_stop()
            client.disconnect()
            api.close()


def _listed(page, expected: list[int]) -> None:
    page.wait_for_function(f"(ids) => JSON.stringify({LISTED}) === JSON.stringify(ids)",
                           arg=expected, timeout=5_000)  # fmt: skip
    rows = page.locator("#track-rows tr")
    assert [int(r) for r in rows.evaluate_all("rs => rs.map((r) => r.dataset.trackId)")] == expected


def _sorts(page, reference: dict[int, dict]) -> None:
    by_id = sorted(reference)
    _listed(page, by_id)  # the first order: by id
    speed = page.locator('button[data-sort="speed"]')
    speed.click()
    _listed(page, sorted(reference, key=lambda g: (reference[g]["speed"], g)))
    speed.click()
    _listed(page, sorted(reference, key=lambda g: (-reference[g]["speed"], g)))
    header = page.locator('th[data-column="speed"]')
    assert header.get_attribute("aria-sort") == "descending"
    page.locator('button[data-sort="class"]').click()
    _listed(page, sorted(reference, key=lambda g: (reference[g]["target_class"], g)))
    page.locator('button[data-sort="id"]').click()
    _listed(page, by_id)


def _filters(page, reference: dict[int, dict], ids: dict[int, int]) -> None:
    everything = sorted(reference)
    page.select_option("#filter-class", "person")
    _listed(page, sorted([ids[1], ids[3]]))
    page.select_option("#filter-class", "")
    page.select_option("#filter-affiliation", "hostile")
    _listed(page, [ids[1]])
    page.select_option("#filter-affiliation", "neutral")
    _listed(page, [ids[5]])
    page.select_option("#filter-affiliation", "")
    page.fill("#filter-speed", "1")
    _listed(page, sorted(g for g, t in reference.items() if t["speed"] >= 1.0))
    assert sorted([ids[2], ids[3], ids[5]]) == sorted(g for g, t in reference.items()
                                                      if t["speed"] >= 1.0)  # fmt: skip
    page.fill("#filter-speed", "")
    page.select_option("#filter-post", f"{SITE}/{NODE}")
    _listed(page, everything)
    assert set(page.locator("#track-rows td:nth-child(4)").all_inner_texts()) == {f"{SITE}/{NODE}"}
    page.select_option("#filter-post", "")
    # Ages: the post stopped publishing; every track is older than a second, none an hour.
    time.sleep(1.2)
    page.fill("#filter-age", "3600")
    _listed(page, everything)
    page.fill("#filter-age", "1")
    _listed(page, [])
    assert page.locator("#track-list-count").inner_text() == "(0)"
    page.fill("#filter-age", "")
    _listed(page, everything)


def _a_click_centres_the_map_on_the_track(page, global_id: int) -> None:
    page.locator(f'#track-rows tr[data-track-id="{global_id}"]').click()
    page.wait_for_function(f"() => window.dunewatch.state().selected === {global_id}",
                           timeout=5_000)  # fmt: skip
    page.locator("#details").get_by_text(f"Track {global_id}").wait_for(timeout=10_000)
    box = page.locator("#map").bounding_box()
    track = next(t for t in page.evaluate("window.dunewatch.state().tracks")
                 if t["id"] == global_id)  # fmt: skip
    assert track["x"] == pytest.approx(box["width"] / 2, abs=0.5)
    assert track["y"] == pytest.approx(box["height"] / 2, abs=0.5)
