"""The coordinates under the cursor, the scale bar and the distance/bearing tool of the
operator page, in headless chromium under HQ's Content-Security-Policy. The readout's MGRS
comes from the mgrs npm package and the measurement from GeographicLib's geodesic package,
both served by HQ; the references here are the mgrs PyPI package (GeoTrans) and pyproj's
geodesic on WGS84, applied to the latitude and longitude the page's own projection gives at
those pixels."""

from __future__ import annotations

import math
import re

import mgrs
import pytest
from pyproj import Geod, Proj

from tests.conftest import PROJECT_ROOT
from tests.integration.test_hq_page import CHROMIUM, chromium_page, running_hq, sign_in

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's chromium is not installed at /usr/bin/chromium "
                              "(apt-get install chromium)"),
    pytest.mark.skipif(not (PROJECT_ROOT / "node_modules" / "geographiclib-geodesic").is_dir(),
                       reason="the page's npm packages are not installed (make setup)"),
]  # fmt: skip

WGS84 = Geod(ellps="WGS84")
PIXELS = [(100, 100), (400, 300), (700, 650), (37, 512), (850, 90)]  # on the map canvas


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    with running_hq(tmp_path_factory.mktemp("hq")) as running:
        yield running


def test_the_readout_shows_the_mgrs_and_degrees_under_the_cursor_and_the_scale_bar_is_true(
    stack, tmp_path
):
    with chromium_page() as page:
        sign_in(page, stack.url, stack.token)
        page.wait_for_function("() => window.dunewatch !== undefined", timeout=15_000)
        box = page.locator("#map").bounding_box()
        # The page's projection and its inverse agree: a place is found where it is drawn.
        for lat, lon in [(14.13, 22.84), (14.2, 22.9), (14.05, 22.7)]:
            probe = page.evaluate("([lat, lon]) => window.dunewatch.probe(lat, lon)", [lat, lon])
            back = page.evaluate("([x, y]) => window.dunewatch.geodeticAt(x, y)",
                                 [probe["x"], probe["y"]])  # fmt: skip
            assert back == pytest.approx([lat, lon], abs=1e-9)
        for x, y in PIXELS:
            page.mouse.move(box["x"] + x, box["y"] + y)
            page.wait_for_function(
                "([x, y]) => { const c = window.dunewatch.state().cursor;"
                " return c !== null && c.x === x && c.y === y; }", arg=[x, y],
                timeout=5_000)  # fmt: skip
            state = page.evaluate("window.dunewatch.state()")
            lat, lon = page.evaluate("([x, y]) => window.dunewatch.geodeticAt(x, y)", [x, y])
            shown_mgrs, shown_degrees = state["readout"].split(" · ")
            assert shown_mgrs == state["cursor"]["mgrs"]
            _same_mgrs(shown_mgrs, lat, lon)
            assert shown_degrees == f"{lat:.5f}° N {lon:.5f}° E"
            assert page.locator("#cursor-readout").inner_text() == state["readout"]
        _scale_bar_is_true(page)
        page.locator("#zoom-in").click()
        page.locator("#zoom-in").click()
        _scale_bar_is_true(page)
        page.screenshot(path=str(tmp_path / "hq_page_coordinates.png"))
        assert page.problems == []


def _same_mgrs(shown: str, lat: float, lon: float) -> None:
    """`shown` ("34P FA 98621 62882") is the MGRS at 1 m of (lat, lon) by GeoTrans. Both
    truncate to the metre; where the point lies within a centimetre of a metre line, the
    two implementations' series may fall on either side of it, and one digit may differ."""
    reference = mgrs.MGRS().toMGRS(lat, lon, MGRSPrecision=5)
    zone, square, easting, northing = re.fullmatch(r"(\d+[A-Z]) ([A-Z]{2}) (\d{5}) (\d{5})",
                                                   shown).groups()  # fmt: skip
    if zone + square + easting + northing == reference:
        return
    utm = Proj(proj="utm", zone=int(zone[:-1]), ellps="WGS84", south=lat < 0)
    east, north = utm(lon, lat)
    near_a_line = min(abs(east - round(east)), abs(north - round(north))) < 0.01
    assert near_a_line and reference[:5] == zone + square, (shown, reference, east, north)
    assert abs(int(easting) - int(reference[5:10])) <= 1
    assert abs(int(northing) - int(reference[10:])) <= 1


def _scale_bar_is_true(page) -> None:
    """The bar's two ends are as far apart on WGS84 as the length it is labelled with."""
    bar = page.evaluate("window.dunewatch.state().scaleBar")
    start = page.evaluate("([x, y]) => window.dunewatch.geodeticAt(x, y)", [bar["left"], bar["y"]])
    end = page.evaluate("([x, y]) => window.dunewatch.geodeticAt(x, y)",
                        [bar["left"] + bar["pixels"], bar["y"]])  # fmt: skip
    _, _, metres = WGS84.inv(start[1], start[0], end[1], end[0])
    assert 40 <= bar["pixels"] <= 250
    assert metres == pytest.approx(bar["metres"], rel=0.005), (bar, metres)
    mantissa = bar["metres"] / 10 ** math.floor(math.log10(bar["metres"]))
    assert any(mantissa == pytest.approx(step) for step in (1, 2, 5))  # a round distance


MEASURED = [((150, 200), (700, 560)), ((600, 100), (120, 90)), ((400, 400), (402, 700))]
MEASURE_COLOUR = (244, 143, 177)  # the tool's line, #f48fb1
# Read after two animation frames: the page draws the map on the frame after a change, and
# a read between its clearing and its drawing sees an empty canvas.
PIXEL = """async ([x, y]) => {
    for (let k = 0; k < 2; k++) await new Promise((done) => requestAnimationFrame(done));
    const canvas = document.getElementById("map");
    const scale = canvas.width / canvas.getBoundingClientRect().width;
    return Array.from(canvas.getContext("2d")
        .getImageData(Math.round(x * scale), Math.round(y * scale), 1, 1).data);
}"""


def test_two_clicks_measure_the_geodesic_distance_and_bearing(stack, tmp_path):
    with chromium_page() as page:
        sign_in(page, stack.url, stack.token)
        page.wait_for_function("() => window.dunewatch && window.dunewatch.state().measure",
                               timeout=15_000)  # fmt: skip
        box = page.locator("#map").bounding_box()
        tool = page.locator("#measure")
        tool.click()
        assert tool.get_attribute("aria-pressed") == "true"
        for a, b in MEASURED:
            for x, y in (a, b):
                page.mouse.click(box["x"] + x, box["y"] + y)
            page.wait_for_function("() => window.dunewatch.state().measure.result !== null",
                                   timeout=5_000)  # fmt: skip
            measure = page.evaluate("window.dunewatch.state().measure")
            start = page.evaluate("([x, y]) => window.dunewatch.geodeticAt(x, y)", list(a))
            end = page.evaluate("([x, y]) => window.dunewatch.geodeticAt(x, y)", list(b))
            assert measure["points"][0] == pytest.approx(start, abs=1e-12)
            assert measure["points"][1] == pytest.approx(end, abs=1e-12)
            azimuth, _, metres = WGS84.inv(start[1], start[0], end[1], end[0])
            result = measure["result"]
            assert result["metres"] == pytest.approx(metres, abs=1e-6)
            assert result["bearing"] == pytest.approx(azimuth % 360, abs=1e-9)
            shown = page.locator("#measure-readout").inner_text()
            assert shown == result["text"]
            distance = f"{metres / 1000:.2f} km" if metres >= 1000 else f"{metres:.1f} m"
            assert shown == f"{distance} · bearing {azimuth % 360:05.1f}°"
            # The line is drawn between the two clicks.
            middle = [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2]
            red, green, blue, _ = page.evaluate(PIXEL, middle)
            assert (red, green, blue) == pytest.approx(MEASURE_COLOUR, abs=40)
        page.screenshot(path=str(tmp_path / "hq_page_measure.png"))
        # While measuring, a click selects no track; off again, the line is gone.
        assert page.evaluate("window.dunewatch.state().selected") is None
        tool.click()
        assert page.locator("#measure-readout").inner_text() == ""
        assert page.evaluate("window.dunewatch.state().measure.points") == []
        assert page.problems == []
