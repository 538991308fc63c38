"""Through ingest and fusion, as a post's batches arrive: a node track that coasts across
the border (its velocity wrong, its state a prediction) raises nothing; one measured on
both sides raises one crossing, stored with its class."""

import numpy as np
import pytest

from hq.config import HqConfig
from hq.run import build_ingest
from hq.store.sqlite import SqliteStore
from wire import topics
from wire.geo import EnuFrame
from wire.messages import Track, TrackBatch, encode

pytestmark = pytest.mark.unit

FRAME = EnuFrame(22.0, 14.0, 600.0)
T0 = 1_800_000_000.0


def geodetic(e, n):
    lat, lon, _ = FRAME.to_geodetic(e, n, 0.0)
    return float(lat), float(lon)


def batch(seq, north, status="confirmed", last_measured=None, target_class="person"):
    t = T0 + seq
    lat, lon = geodetic(0.0, north)
    track = Track(track_id=1, time=t, lat=lat, lon=lon, alt=FRAME.alt, position_enu=(0.0, north),
                  velocity_enu=(0.0, 4.0), position_covariance=[[4.0, 0.0], [0.0, 4.0]],
                  velocity_covariance=[[0.25, 0.0], [0.0, 0.25]], target_class=target_class,
                  status=status, quality=0.95, hits=10, last_measured=last_measured)  # fmt: skip
    return TrackBatch(site="tummo", node="west-1", seq=seq, sent=t,
                      frame_origin=(FRAME.lat, FRAME.lon, FRAME.alt), tracks=[track])  # fmt: skip


@pytest.mark.parametrize("measured_across", [False, True])
def test_only_a_measured_crossing_is_stored(tmp_path, measured_across):
    config = HqConfig(origin=(FRAME.lat, FRAME.lon, FRAME.alt), home=geodetic(0, 0),
                      border=[geodetic(-5000, 1000), geodetic(5000, 1000)],
                      store=str(tmp_path / "hq.db"))  # fmt: skip
    with SqliteStore(tmp_path / "hq.db") as store:
        ingest = build_ingest(config, store)
        norths = 960.0 + 4.0 * np.arange(20)  # 960 m to 1036 m: across at 1000 m
        for seq, north in enumerate(norths.tolist()):
            if measured_across or seq < 5:
                message = batch(seq, north, last_measured=T0 + seq)
            else:  # detections stop at 976 m: the rest is the tracker's prediction
                message = batch(seq, north, status="coasting", last_measured=T0 + 4)
            outcome = ingest.handle(topics.tracks("tummo", "west-1"), encode(message),
                                    T0 + seq)  # fmt: skip
            assert outcome == "stored"
        crossings = [r.alert for r in store.alerts(limit=100)
                     if r.alert.alert_type == "border_crossing"]  # fmt: skip
        (fused,) = store.current_tracks()
    assert len(crossings) == int(measured_across)
    if measured_across:
        assert crossings[0].time == pytest.approx(T0 + 10.0, abs=0.1)
        assert "person" in crossings[0].message and "outbound" in crossings[0].message
    assert fused.quality == pytest.approx(0.95)  # the post's, not a constant 1.0


def test_a_crossing_waiting_for_its_class_is_settled_when_a_tick_ends_the_track(tmp_path):
    """A young track crosses (its class not yet sure for the wait), is seen a few seconds
    more, then its post falls silent: the stale sweep that ends it must decide the crossing
    (it was lost when only the batches, not the ticks, went through the crossing detector)."""
    config = HqConfig(origin=(FRAME.lat, FRAME.lon, FRAME.alt), home=geodetic(0, 0),
                      border=[geodetic(-5000, 1000), geodetic(5000, 1000)],
                      store=str(tmp_path / "hq.db"))  # fmt: skip
    with SqliteStore(tmp_path / "hq.db") as store:
        ingest = build_ingest(config, store)
        wait_s = config.alerts.crossing_class_wait_s
        norths = 985.0 + 4.0 * np.arange(9)  # across the line at 1000 m, 3.75 s in
        assert len(norths) - 1 < wait_s  # neither the class nor the crossing has waited out
        for seq, north in enumerate(norths.tolist()):
            message = batch(seq, north, last_measured=T0 + seq, target_class="vehicle")
            assert ingest.handle(topics.tracks("tummo", "west-1"), encode(message),
                                 T0 + seq) == "stored"  # fmt: skip
        assert not [r for r in store.alerts(limit=100)
                    if r.alert.alert_type == "border_crossing"]  # still waiting  # fmt: skip
        ingest.tick(T0 + len(norths) + ingest.fusion.config.end_after + 1.0)
        crossings = [r.alert for r in store.alerts(limit=100)
                     if r.alert.alert_type == "border_crossing"]  # fmt: skip
        (fused,) = store.current_tracks()
        assert fused.status == "ended"  # the tick ended it
    assert len(crossings) == 1
    assert crossings[0].time == pytest.approx(T0 + 3.75, abs=0.1)
    assert "vehicle" in crossings[0].message and "outbound" in crossings[0].message
