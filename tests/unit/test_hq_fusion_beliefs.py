"""What fusion tells the alert detectors beside the state: the posts' class probabilities
pooled by how well each post sees the object, an existence quality computed from the
posts' (not the constant 1.0), the newest detection in the state, and group counts."""

import numpy as np
import pytest

from hq.fusion import Fusion, FusionConfig
from wire.geo import EnuFrame
from wire.messages import Track, TrackBatch

pytestmark = pytest.mark.unit

FRAME = EnuFrame(22.84, 14.13, 620.0)
T0 = 1_800_000_000.0


def track(t, east, variance, quality=0.9, status="confirmed", **fields) -> Track:
    lat, lon, _ = FRAME.to_geodetic(east, 500.0, 0.0)
    return Track(track_id=1, time=t, lat=float(lat), lon=float(lon), alt=FRAME.alt,
                 position_enu=(east, 500.0), velocity_enu=(1.0, 0.0),
                 position_covariance=[[variance, 0.0], [0.0, variance]],
                 velocity_covariance=[[0.25, 0.0], [0.0, 0.25]], status=status,
                 quality=quality, hits=20, **fields)  # fmt: skip


def ingest(fusion, node, seq, *tracks):
    fusion.ingest(TrackBatch(site="tummo", node=node, seq=seq, sent=tracks[0].time,
                             frame_origin=(FRAME.lat, FRAME.lon, FRAME.alt),
                             tracks=list(tracks)), tracks[0].time)  # fmt: skip


def two_posts(a: dict, b: dict, cycles=6):
    """One walker seen by posts a and b (their Track fields); the fused track at the end."""
    fusion = Fusion(FusionConfig(origin=(FRAME.lat, FRAME.lon, FRAME.alt)))
    for k in range(cycles):
        t = T0 + k
        ingest(fusion, "a", k, track(t, 100.0 + k, **a))
        ingest(fusion, "b", k, track(t + 0.1, 100.1 + k, **b))
    (fused,) = fusion.snapshot()
    assert len(fused.sources) == 2, "both posts' tracks fuse into one"
    return fused


ANIMAL_SAYS = {"class_probabilities": {"animal": 0.9, "person": 0.1}, "target_class": "animal"}
PERSON_SAYS = {"class_probabilities": {"person": 0.9, "animal": 0.1}, "target_class": "person"}


@pytest.mark.parametrize("fine, coarse", [(ANIMAL_SAYS, PERSON_SAYS), (PERSON_SAYS, ANIMAL_SAYS)])
def test_the_post_that_sees_finer_counts_more_in_the_class(fine, coarse):
    fused = two_posts({"variance": 1.0, **fine}, {"variance": 100.0, **coarse})
    p = fused.class_probabilities
    assert fused.target_class == fine["target_class"]
    # Weighted by 1 / sigma: 1 m against 10 m, so 10:1.
    expected = (10 * fine["class_probabilities"][fused.target_class]
                + coarse["class_probabilities"][fused.target_class]) / 11  # fmt: skip
    assert p[fused.target_class] == pytest.approx(expected)


def test_a_class_without_probabilities_is_believed_as_configured_the_rest_unknown():
    fusion = Fusion(FusionConfig(origin=(FRAME.lat, FRAME.lon, FRAME.alt),
                                 unstated_class_belief=0.8))  # fmt: skip
    ingest(fusion, "a", 0, track(T0, 100.0, 4.0, target_class="vehicle"))
    (fused,) = fusion.snapshot()
    assert fused.target_class == "vehicle"
    assert fused.class_probabilities == pytest.approx({"vehicle": 0.8, "unknown": 0.2})


def test_quality_is_the_posts_existence_evidence_combined_not_a_constant():
    one = Fusion(FusionConfig(origin=(FRAME.lat, FRAME.lon, FRAME.alt)))
    ingest(one, "a", 0, track(T0, 100.0, 4.0, quality=0.6))
    assert one.snapshot()[0].quality == pytest.approx(0.6)
    fused = two_posts({"variance": 4.0, "quality": 0.5}, {"variance": 4.0, "quality": 0.5})
    assert fused.quality == pytest.approx(0.75)  # 1 - 0.5 * 0.5


def test_the_newest_detection_and_the_count_reach_the_fused_track():
    fusion = Fusion(FusionConfig(origin=(FRAME.lat, FRAME.lon, FRAME.alt)))
    ingest(fusion, "a", 0, track(T0, 100.0, 4.0, last_measured=T0, count=3))
    ingest(fusion, "a", 1, track(T0 + 1, 101.0, 4.0, last_measured=T0 + 0.6, count=3))
    (fused,) = fusion.snapshot()
    assert fused.measured == T0 + 0.6 and fused.time == T0 + 1 and fused.count == 3
    # A coasting update of a sender that does not say when it last measured: a
    # prediction, which leaves the newest detection where it was.
    ingest(fusion, "a", 2, track(T0 + 2, 102.0, 4.0, status="coasting", count=3))
    (fused,) = fusion.snapshot()
    assert fused.measured == T0 + 0.6 and fused.time == T0 + 2
    # Its confirmed update is a measurement at its own time.
    ingest(fusion, "a", 3, track(T0 + 3, 103.0, 4.0))
    (fused,) = fusion.snapshot()
    assert fused.measured == T0 + 3 and fused.count == 1


def test_counts_of_two_posts_are_the_larger():
    fused = two_posts({"variance": 4.0, "count": 2}, {"variance": 4.0, "count": 3})
    assert fused.count == 3
    assert np.isfinite(fused.measured)
