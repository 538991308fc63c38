"""Tracker snapshots on the wire: positions through pyproj, covariances, statuses, quality."""

import numpy as np
import pytest
from pyproj import Transformer

from edge.batches import track_batch
from edge.tracking import Tracker
from wire.geo import EnuFrame
from wire.messages import decode, encode

pytestmark = pytest.mark.unit

FRAME = EnuFrame(22.84, 14.13, 620.0)


T0 = 1767225600.0


def tracked(scans=12, dropped=()):
    """Two walkers seen once a second from T0, the second one missed on the scans `dropped`
    (-1: the last)."""
    tracker = Tracker()
    starts = np.array([[1500.0, -800.0], [-2400.0, 3100.0]])
    velocity = np.array([[1.2, 0.5], [-0.3, 1.4]])
    R = np.tile(np.eye(2) * 4.0, (2, 1, 1))
    dropped = {k % scans for k in dropped}
    for k in range(scans):
        z = starts + velocity * k
        seen = 1 if k in dropped else 2
        tracks = tracker.update(T0 + k, z[:seen], R[:seen], sensor="drone-1-eo")
    return tracks


def test_positions_on_the_wire_agree_with_pyproj():
    tracks = tracked()
    batch = track_batch(tracks, FRAME, site="tummo", node="west-1", seq=5,
                        state_time=1767225611.0, sent=1767225611.2)  # fmt: skip
    to_enu = Transformer.from_pipeline(
        "+proj=pipeline +step +proj=cart +ellps=WGS84 +step +proj=topocentric +ellps=WGS84 "
        f"+lat_0={FRAME.lat} +lon_0={FRAME.lon} +h_0={FRAME.alt}"
    )
    assert len(batch.tracks) == 2
    for track in batch.tracks:
        e, n, _ = to_enu.transform(track.lon, track.lat, track.alt)
        assert (e, n) == pytest.approx(track.position_enu, abs=0.01)
        assert track.alt == FRAME.alt
        assert track.sensors == ["drone-1-eo"]


def test_states_and_covariances_are_the_trackers():
    tracks = tracked()
    batch = track_batch(tracks, FRAME, site="tummo", node="west-1", seq=5,
                        state_time=1767225611.0, sent=1767225611.2)  # fmt: skip
    by_id = {t.track_id: t for t in batch.tracks}
    for k, track_id in enumerate(tracks.ids):
        wire = by_id[int(track_id)]
        assert wire.position_enu == pytest.approx(tracks.x[k, :2])
        assert wire.velocity_enu == pytest.approx(tracks.x[k, 2:])
        assert np.array(wire.position_covariance) == pytest.approx(tracks.P[k, :2, :2])
        assert np.array(wire.velocity_covariance) == pytest.approx(tracks.P[k, 2:, 2:])
        assert wire.hits == tracks.hits[k] and wire.status == "confirmed"
        assert 0.99 < wire.quality <= 1.0  # a long-confirmed track is almost surely real
        # The whole state covariance, cross terms included: after a dozen scans of a walker
        # the position-velocity correlation is far from zero, so dropping it would show.
        assert np.array(wire.state_covariance) == pytest.approx(tracks.P[k])
        assert abs(tracks.P[k, 0, 2]) > 0.01
        assert wire.last_measured == 1767225611.0
    assert decode(encode(batch)) == batch


def test_a_coasting_track_says_since_when_it_is_a_prediction():
    tracks = tracked(dropped=[-1])
    batch = track_batch(tracks, FRAME, site="s", node="n", seq=0, state_time=T0 + 11, sent=0.0)
    measured = {t.status: t.last_measured for t in batch.tracks}
    assert measured == {"confirmed": T0 + 11, "coasting": T0 + 10}


def test_a_missed_track_is_coasting_and_tentative_tracks_stay_home():
    tracks = tracked(dropped=[-1])
    batch = track_batch(tracks, FRAME, site="s", node="n", seq=0, state_time=T0 + 11, sent=0.0)
    statuses = {t.status for t in batch.tracks}
    assert statuses == {"confirmed", "coasting"}
    young = tracked(scans=1)
    assert not young.confirmed.any()
    assert track_batch(young, FRAME, site="s", node="n", seq=0, state_time=0.0,
                       sent=0.0).tracks == []  # fmt: skip
    everything = track_batch(young, FRAME, site="s", node="n", seq=0, state_time=0.0, sent=0.0,
                             confirmed_only=False)  # fmt: skip
    assert {t.status for t in everything.tracks} == {"tentative"}


def test_a_track_seen_again_after_a_miss_is_confirmed_not_coasting():
    # HQ ends a global track fed only by coasting tracks: a track that missed once long
    # ago and has been seen since must not stay "coasting" for the rest of its life.
    tracks = tracked(dropped=[6])
    assert tracks.misses.tolist() == [0, 1]
    batch = track_batch(tracks, FRAME, site="s", node="n", seq=0, state_time=T0 + 11, sent=0.0)
    statuses = [t.status for t in batch.tracks]
    assert statuses == ["confirmed", "confirmed"]
