"""The scene suite's fast subset: one scene of `python -m bench scenes` through the whole
stack (mosquitto, HQ, the post's node, the simulator's drone and thermal camera, played
live), scored at HQ and per node by the suite's own scorer (`bench.scene_score`).

`scene-camels-2`: four camels wander south across the border past two people who walk in
and stop for good at 92 s. Played from 50 s to 160 s: the pair's distress alert is due
(40 s dwell) and the first two camels cross. Thresholds are set from measured runs with a
margin, the figures measured beside each (the machine loaded, the node taking about 2 of
its camera's 10 frames/s). The issue's targets (MOTA >= 0.9, ...) are the benchmark's to
report, not this test's: it guards against the picture getting worse than it is.
"""

import pytest

from bench.scenes import DWELL_S, SCENES, play, score_run

pytestmark = pytest.mark.e2e

SCENE = SCENES / "scene-camels-2.toml"
UNTIL_S = 160.0


@pytest.fixture(scope="module")
def figures(tmp_path_factory):
    return score_run(play(SCENE, tmp_path_factory.mktemp("scene"), until_s=UNTIL_S))


def test_the_fused_picture_follows_the_people_and_the_camels(figures):
    fused = figures["fused"]
    assert fused["target_samples"] > 300, fused  # measured 589 (to 175 s)
    # Measured MOTA 0.76, IDF1 0.83, GOSPA 13.4 m, 3 ID switches.
    assert fused["mota"] > 0.55, fused
    assert fused["idf1"] > 0.65, fused
    assert fused["gospa_mean"] < 25.0, fused
    # Measured 1.0 and 1.0: the people are called people, the camels animals.
    assert fused["class_accuracy"]["person"] > 0.8, fused
    assert fused["class_accuracy"]["animal"] > 0.8, fused


def test_the_node_is_scored_on_its_own_picture_and_took_frames(figures):
    (node,) = figures["nodes"].values()
    assert node["fps"] is not None and node["fps"] > 0.5, node  # measured 1.9 per second
    assert node["picture"]["target_samples"] > 300, node
    assert node["picture"]["mota"] > 0.55, node  # measured 0.75


def test_the_stranded_pair_raises_distress_in_time_and_nothing_else_does(figures):
    distress = figures["distress"]
    (group,) = distress["groups"]
    assert group["group"] == "stranded" and not group["found"], group
    # Measured 16 s after it stopped and was seen (HQ's dwell counts from when the track
    # came within its radius, as the pair walked in); the bound is dwell + 10 s.
    assert group["delay_s"] is not None and group["delay_s"] <= DWELL_S + 10.0, group
    assert distress["false_alerts"] == 0, distress  # measured 0


def test_camels_crossing_raise_no_crossing_alert(figures):
    crossings = figures["crossings"]
    assert crossings["animal_crossings"] >= 1, crossings  # the scene must cross camels
    assert crossings["animal_alerts"] == 0, crossings  # measured 0
    assert crossings["false_alerts"] == 0, crossings  # measured 0
