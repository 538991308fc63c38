"""A KLV-only post: the small scenario's drone sends no MAVLink, only its thermal camera as
H.264 MPEG-TS with MISB ST 0601 metadata over UDP (as a tactical aircraft does). The post's
node takes every frame's pose and field of view from the metadata, detects, georeferences
and tracks; HQ's fused picture is scored against the scenario's truth. Thresholds are set
from measured runs with a margin; the figures measured are beside each.
"""

import json
import time

import pytest

from hq.store.sqlite import SqliteStore
from stack.deployment import Deployment, StackOptions
from tests.conftest import PROJECT_ROOT
from tests.e2e.scoring import Picture, Truth, score

pytestmark = pytest.mark.e2e

SKIP_S, UNTIL_S = 45.0, 140.0
PICTURE_S = (60.0, 133.0)  # as the MAVLink post's test: everything in the camera's view


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("klv-post")
    deployment = Deployment(PROJECT_ROOT / "configs" / "scenarios" / "small.toml", folder,
                            StackOptions(skip_s=SKIP_S, klv_cameras=True))  # fmt: skip
    with deployment:
        epoch = deployment.live.epoch
        while time.time() < epoch + UNTIL_S:
            assert not deployment.failed(), deployment.failed()
            time.sleep(1.0)
    truth = Truth.read(deployment.truth_path)
    store = SqliteStore(deployment.database)
    yield truth, store, epoch, folder
    store.close()


def test_the_post_is_klv_only(finished_run):
    *_, folder = finished_run
    (config_path,) = folder.glob("node-*/node.toml")
    config = config_path.read_text()
    assert "[[mavlink]]" not in config and 'kind = "klv"' in config
    assert not list((folder / "sim").glob("replay-*.log"))


def test_the_klv_posts_tracks_match_the_truth(finished_run):
    truth, store, epoch, _ = finished_run
    t0, t1 = epoch + PICTURE_S[0], epoch + PICTURE_S[1]
    result = score(truth, Picture.from_store(store, t0, t1), t0, t1,
                   classes={"person", "vehicle", "animal"})  # fmt: skip
    print(json.dumps(result.__dict__, default=str))
    # Five runs, each while other jobs loaded the 2 cores (load average 7 to 14), the
    # node taking 0.6 to 1.5 frames/s of the camera's 10: MOTA 0.30-0.57, IDF1 0.48-0.71,
    # GOSPA 37-56 m, 1-6 ID switches, every target confirmed within 24 s. The run at load
    # 7 met the MAVLink post's bar (test_whole_stack.py: MOTA > 0.5, IDF1 > 0.6, GOSPA
    # < 40 m). These bars still need the pose right: a pointing one degree off moves a
    # ground point about 10 m at 600 m from the camera, which is the
    # distance (MATCH_M) past which a track no longer counts as following its target.
    assert result.mota > 0.25, result
    assert result.idf1 > 0.45, result
    assert result.gospa_mean < 60.0, result
    assert max(result.first_confirmation_s.values()) < 30.0, result
