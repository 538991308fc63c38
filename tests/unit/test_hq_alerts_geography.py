"""The detectors' geography is the store's, current: a zone drawn, the border moved or a
place added (each an audited operator action) is in use from the next refresh, on SQLite
and PostgreSQL; without a change, a refresh reads nothing but the audit log's end."""

import pytest

from hq.alerts import AlertConfig, CrossingDetector, DistressDetector, StoreGeography, TrackView
from hq.store.records import Place
from tests.store_backends import BACKENDS, backend_of
from wire.geo import EnuFrame

pytestmark = pytest.mark.unit

FRAME = EnuFrame(22.0, 14.0, 600.0)


def geodetic(e, n):
    lat, lon, _ = FRAME.to_geodetic(e, n, 0.0)
    return float(lat), float(lon)


@pytest.fixture(params=BACKENDS)
def store(request, tmp_path):
    with backend_of(request.param, tmp_path) as backend:
        opened = backend.open()
        yield opened
        opened.close()


def test_a_change_in_the_store_reaches_the_detectors_at_the_next_refresh(store):
    store.seed_geography([geodetic(-5000, 1000), geodetic(5000, 1000)], {}, [], 0.0)
    geography = StoreGeography(store, FRAME, geodetic(0, 0))
    config = AlertConfig(
        border=(), home=geodetic(0, 0), distress_dwell_s=30.0, crossing_class_wait_s=0.0
    )  # a class sure at once: no waiting
    crossings = CrossingDetector(config, FRAME, geography)
    distress = DistressDetector(config, FRAME, geography)
    assert not geography.refresh()  # nothing changed
    version = geography.version

    def drive(gid, t0, points):
        return [
            event
            for k, (east, north) in enumerate(points)
            for detector in (crossings, distress)
            for event in detector.update(TrackView(gid, t0 + k, east, north, "vehicle"))
        ]

    # The seeded border: a crossing northwards at 1000 m.
    assert [e.kind for e in drive(1, 0.0, [(0.0, 980.0), (0.0, 1020.0)])] == ["border_crossing"]
    # An admin moves the border to 2000 m and draws a zone: neither is in use before the
    # refresh, both are after it.
    store.put_border([geodetic(-5000, 2000), geodetic(5000, 2000)], "admin", 10.0)
    store.put_zone("well", [geodetic(-50, 2500), geodetic(50, 2500), geodetic(50, 2600),
                            geodetic(-50, 2600)], "admin", 10.0, create=True)  # fmt: skip
    assert geography.refresh() and geography.version == version + 1
    assert not geography.refresh()
    events = drive(2, 20.0, [(0.0, 980.0), (0.0, 1020.0), (0.0, 1980.0), (0.0, 2020.0),
                             (0.0, 2550.0)])  # fmt: skip
    assert [e.kind for e in events] == ["border_crossing", "zone_entry"]
    assert events[0].time == pytest.approx(22.5, abs=0.05)  # at 2000 m, between 1980 and 2020


def test_a_place_added_stops_distress_there(store):
    store.seed_geography([geodetic(-5000, 1000), geodetic(5000, 1000)], {}, [], 0.0)
    geography = StoreGeography(store, FRAME, geodetic(0, 0))
    config = AlertConfig(border=(), home=geodetic(0, 0), distress_dwell_s=30.0)
    store.put_place(Place("oasis camp", *geodetic(3000, -3000), 500.0, "admin", 5.0))
    assert geography.refresh()
    distress = DistressDetector(config, FRAME, geography)
    events = [
        e
        for t in range(80)
        for e in distress.update(TrackView(1, float(t), 3000.0, -3000.0, "person"))
    ]
    assert not events  # help is at hand there


def test_hq_without_an_api_alerts_on_the_border_of_its_config(tmp_path):
    from hq.config import AlertSection, HqConfig
    from hq.run import build_ingest
    from hq.store.sqlite import SqliteStore

    config = HqConfig(origin=(22.0, 14.0, 600.0), home=geodetic(0, 0),
                      border=[geodetic(-5000, 1000), geodetic(5000, 1000)],
                      store=str(tmp_path / "hq.db"),
                      alerts=AlertSection(crossing_class_wait_s=0.0))  # fmt: skip
    with SqliteStore(tmp_path / "hq.db") as store:  # a first start: nothing stored yet
        ingest = build_ingest(config, store)
        events = [
            e
            for t, north in ((0.0, 980.0), (1.0, 1020.0))
            for e in ingest.crossings.update(TrackView(1, t, 0.0, north, "vehicle"))
        ]
        assert store.border() is not None
    assert [e.kind for e in events] == ["border_crossing"]
