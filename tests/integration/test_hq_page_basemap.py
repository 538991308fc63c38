"""The operator page's offline basemap in headless chromium: OpenLayers and Natural Earth's
countries (the npm packages `make setup` installs) served by HQ itself, drawn in the page's
own projection under the live picture, and following its pans and zooms. Where the page
puts a place must be in that place's country on the basemap."""

from __future__ import annotations

import json

import httpx2 as httpx
import pytest

from tests.conftest import PROJECT_ROOT
from tests.integration.test_hq_page import CHROMIUM, chromium_page, running_hq, sign_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium)"),
    pytest.mark.skipif(not (PROJECT_ROOT / "node_modules" / "ol").is_dir(),
                       reason="the page's npm packages are not installed (make setup)"),
]  # fmt: skip

# Places on either side of the Libya-Niger border near Tummo, and one in Chad, each well
# inside its country (tens of kilometres from any border).
PLACES = [((23.60, 13.20), "Libya"), ((22.20, 13.20), "Niger"), ((21.50, 16.50), "Chad")]


def test_hq_serves_the_basemap_and_the_page_draws_it_under_the_picture(tmp_path):
    with running_hq(tmp_path) as stack:
        script = httpx.get(f"{stack.url}/vendor/ol/dist/ol.js")
        assert script.status_code == 200 and script.text.startswith("var ol=")
        atlas = httpx.get(f"{stack.url}/vendor/world-atlas/countries-50m.json")
        assert atlas.status_code == 200 and json.loads(atlas.content)["type"] == "Topology"
        assert httpx.get(f"{stack.url}/vendor/nothing.js").status_code == 404
        with chromium_page() as page:
            requested = []
            page.on("request", lambda request: requested.append(request.url))
            sign_in(page, stack.url, stack.token)
            page.wait_for_function(
                "() => window.dunewatch && window.dunewatch.state().basemap !== null",
                timeout=30_000)  # fmt: skip
            countries = page.evaluate("window.dunewatch.state().basemap.countries")
            assert countries > 200  # Natural Earth's 1:50m countries
            # Nothing but HQ itself: no tiles, no CDN.
            assert requested and all(url.startswith(stack.url) for url in requested), requested
            for _ in range(4):  # zoom out until all three places are on the map
                page.locator("#zoom-out").click()
            _places_are_in_their_countries(page)
            # Pan with the keyboard: the basemap moves with the picture.
            before = [page.evaluate("([lat, lon]) => window.dunewatch.probe(lat, lon)", p)
                      for p, _ in PLACES]  # fmt: skip
            page.locator("#map").focus()
            page.keyboard.press("ArrowRight")
            page.keyboard.press("ArrowDown")
            after = _places_are_in_their_countries(page)
            for old, new in zip(before, after, strict=True):
                assert (new["x"] - old["x"], new["y"] - old["y"]) == pytest.approx((-60, -60))
            page.screenshot(path=str(tmp_path / "hq_page_basemap.png"))
            assert page.problems == []


def _places_are_in_their_countries(page) -> list[dict]:
    box = page.locator("#map").bounding_box()
    probes = []
    for (lat, lon), country in PLACES:
        probe = page.evaluate("([lat, lon]) => window.dunewatch.probe(lat, lon)", [lat, lon])
        assert 0 <= probe["x"] <= box["width"] and 0 <= probe["y"] <= box["height"], probe
        assert probe["country"] == country, (lat, lon, probe)
        probes.append(probe)
    return probes
