"""The learned thermal detector at the edge: the shipped ONNX model loads and runs through
ONNX Runtime, finds the labelled people and vehicles of real HIT-UAV validation images
and the targets of a rendered frame, and turns bad frames into counted rejections."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from bench.detection.thermal_eval import georeferencer_for, load_dataset, pose_for
from edge.detection import CLASSES
from edge.detection.thermal_learned import (
    DEFAULT_MODEL,
    LearnedThermalDetector,
    normalise,
)
from edge.georef import Camera, Georeferencer, Pose
from tests.conftest import SHARED_DATA
from wire.geo import EnuFrame

pytestmark = pytest.mark.unit

HIT_UAV = SHARED_DATA / "thermal" / "hit-uav-val"
# Six validation images across night and day, 60-130 m, 30-90 degrees down: 50 people
# and 17 vehicles.
SAMPLES = ("1_60_30_0_00147.jpg", "1_130_50_0_03915.jpg", "1_130_50_0_07209.jpg",
           "0_100_90_0_08304.jpg", "0_80_50_0_02165.jpg", "1_90_80_0_01557.jpg")  # fmt: skip


@pytest.fixture(scope="module")
def bare() -> LearnedThermalDetector:
    """The shipped model with no georeferencer: appearance only."""
    return LearnedThermalDetector()


def test_the_shipped_model_is_small_and_says_what_it_is(bare):
    assert DEFAULT_MODEL.stat().st_size < 2 * 2**20
    assert set(bare.info.classes) <= set(CLASSES) and "person" in bare.info.classes
    assert bare.info.stride == 4 and 0.0 < bare.threshold < 1.0
    assert bare.info.class_temperature > 0


def _labelled_samples():
    if not HIT_UAV.is_dir():
        pytest.skip(f"HIT-UAV images not found at {HIT_UAV}")
    images = {i.path.name: i for i in load_dataset(HIT_UAV, HIT_UAV / "val.json")}
    return [images[name] for name in SAMPLES if name in images]


def _score(detections, boxes):
    """(persons found, persons, vehicles found, vehicles, false alarms): a detection's box
    centre inside a labelled box finds it; one inside none is a false alarm."""
    centres = [((d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2) for d in detections]

    def inside(c, box):
        return box[0] <= c[0] <= box[2] and box[1] <= c[1] <= box[3]

    counts = {"Person": [0, 0], "Car": [0, 0], "OtherVehicle": [0, 0]}
    for category, box in boxes:
        if category in counts:
            counts[category][1] += 1
            counts[category][0] += any(inside(c, box) for c in centres)
    false_alarms = sum(not any(inside(c, box) for _, box in boxes) for c in centres)
    vehicles = [counts["Car"][k] + counts["OtherVehicle"][k] for k in (0, 1)]
    return (*counts["Person"], *vehicles, false_alarms)


def test_real_images_have_their_people_and_vehicles_found():
    samples = _labelled_samples()
    assert len(samples) == len(SAMPLES)
    totals = np.zeros(5, int)
    detector = None
    for sample in samples:
        grey = cv2.imread(str(sample.path), cv2.IMREAD_GRAYSCALE)
        if detector is None:
            detector = LearnedThermalDetector(georeferencer_for(grey.shape[1], grey.shape[0]))
        detections = detector.detect(grey, pose_for(sample))
        totals += _score(detections, sample.boxes)
    persons_found, persons, vehicles_found, vehicles, false_alarms = totals
    # Measured with the shipped model: 39 of 50 people, 16 of 17 vehicles, 7 false alarms
    # in the six images. A model that learned nothing finds next to none.
    assert persons == 50 and vehicles == 17
    assert persons_found / persons >= 0.7, totals
    assert vehicles_found / vehicles >= 0.8, totals
    assert false_alarms <= 2 * len(samples), totals
    assert detector.counters.frames == len(samples) and not detector.counters.rejected


def test_without_a_pose_the_image_alone_still_finds_people(bare):
    totals = np.zeros(5, int)
    for sample in _labelled_samples():
        grey = cv2.imread(str(sample.path), cv2.IMREAD_GRAYSCALE)
        totals += _score(bare.detect(grey), sample.boxes)
    persons_found, persons, _, _, false_alarms = totals
    assert persons_found / persons >= 0.65, totals
    assert false_alarms <= 3 * len(SAMPLES), totals
    assert bare.counters.without_geometry >= len(SAMPLES)


def test_an_image_without_targets_gives_few_detections(bare):
    rng = np.random.default_rng(3)
    ground = cv2.GaussianBlur(rng.normal(100, 12, (512, 640)).astype(np.float32), (0, 0), 6)
    detections = bare.detect(np.clip(ground + rng.normal(0, 2, ground.shape), 0, 255)
                             .astype(np.uint8))  # fmt: skip
    assert len(detections) <= 1


def test_detections_carry_class_probabilities_that_name_their_class():
    sample = _labelled_samples()[0]
    grey = cv2.imread(str(sample.path), cv2.IMREAD_GRAYSCALE)
    detector = LearnedThermalDetector(georeferencer_for(grey.shape[1], grey.shape[0]))
    detections = detector.detect(grey, pose_for(sample))
    assert detections
    for d in detections:
        p = d.class_probabilities
        assert sum(p.values()) == pytest.approx(1.0)
        assert d.target_class == max(p, key=p.get)
        assert 0.0 < d.score <= 1.0
    scores = [d.score for d in detections]
    assert scores == sorted(scores, reverse=True)


def test_a_rendered_thermal_frame_has_its_walkers_found():
    from edge.detection.eo_motion import as_pose
    from sim_hw.camera import CameraRenderer, CameraSpec, DronePoses, origin_of
    from sim_hw.scenario import load_config
    from tests.conftest import PROJECT_ROOT

    config = load_config(PROJECT_ROOT / "configs" / "scenarios" / "small.toml")
    spec = CameraSpec(mode="thermal", lighting="night")
    renderer = CameraRenderer(config, spec, DronePoses(config, 1), seed=0)
    camera = Camera.from_hfov(math.radians(spec.hfov_deg), spec.width, spec.height)
    detector = LearnedThermalDetector(Georeferencer(camera, origin_of(config)))
    found = {"person": [0, 0], "vehicle": [0, 0]}
    false_alarms = 0
    for t in (95.0, 110.0, 125.0):  # walkers crossing, the stranded pair, the pickup
        frame = renderer.render(t)
        detections = detector.detect(frame.image, as_pose(frame.pose))
        centres = [((d.box[0] + d.box[2]) / 2, (d.box[1] + d.box[3]) / 2) for d in detections]
        near = [_near_box(c, target.box) for c in centres for target in frame.targets]
        near = np.array(near, bool).reshape(len(centres), len(frame.targets))
        false_alarms += int((~near.any(axis=1)).sum()) if len(frame.targets) else len(centres)
        for k, target in enumerate(frame.targets):
            if target.target_class in found:
                found[target.target_class][1] += 1
                found[target.target_class][0] += bool(near[:, k].any())
    # Measured: 8 of the 15 people (the walkers of the first frame all, the stranded pair
    # standing close together as one), the pickup not, no false alarm. The simulator's
    # people are 3 px across, seen at any angle: the network's weak side (model card).
    assert found["person"][1] == 15, found
    assert found["person"][0] / found["person"][1] >= 0.4, found
    assert false_alarms <= 2, (found, false_alarms)


def _near_box(centre, box, margin: float = 3.0) -> bool:
    """A rendered target's box is its solid's outline; the blob the camera blurs it into
    reaches a few pixels further."""
    return (box[0] - margin <= centre[0] <= box[2] + margin
            and box[1] - margin <= centre[1] <= box[3] + margin)  # fmt: skip


def _site_detector() -> LearnedThermalDetector:
    camera = Camera(320, 256, 2000.0, 2000.0, 160.0, 128.0)
    return LearnedThermalDetector(Georeferencer(camera, EnuFrame(20.0, 10.0, 300.0)))


def _pose(altitude: float = 100.0) -> Pose:
    return Pose(20.0, 10.0, 300.0 + altitude, 0.0, 0.0, 0.0, 0.0, -math.pi / 2, 0.0)


@pytest.mark.parametrize("frame, reason", [
    (np.zeros((0, 0), np.uint8), "empty"),
    (np.zeros((256, 320), np.complex64), "bad_dtype"),
    (np.zeros((256, 320), bool), "bad_dtype"),
    (np.zeros((2, 256, 320), np.uint8), "bad_shape"),
    (np.zeros((8, 8), np.uint8), "too_small"),
    (np.full((256, 320), 117, np.uint8), "flat"),
    (np.full((256, 320), np.nan, np.float32), "non_finite"),
    (np.where(np.eye(256, 320) > 0, np.inf, 1.0), "non_finite"),
    (np.arange(200 * 320, dtype=np.uint16).reshape(200, 320), "wrong_size"),
    ("not a frame", "not_an_array"),
])  # fmt: skip
def test_bad_frames_give_nothing_and_are_counted(frame, reason):
    detector = _site_detector()
    assert detector.detect(frame, _pose()) == []
    assert detector.counters.rejected == {reason: 1}
    assert detector.counters.frames == 1 and detector.counters.detections == 0


def test_a_pose_that_sees_no_ground_is_counted():
    detector = _site_detector()
    frame = np.random.default_rng(0).integers(0, 255, (256, 320)).astype(np.uint8)
    looking_up = Pose(20.0, 10.0, 400.0, 0.0, 0.0, 0.0, 0.0, math.radians(30.0), 0.0)
    assert detector.detect(frame, looking_up) == []
    assert detector.counters.rejected == {"no_ground": 1}


def test_any_pixel_format_reads_as_the_same_image():
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (64, 80)).astype(np.uint8)
    reference = normalise(grey)
    for frame in (grey.astype(np.uint16) * 64, grey.astype(np.float32) * 0.1 + 273.0,
                  cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), grey[:, :, None]):  # fmt: skip
        # The 8-bit path takes exact percentiles, the others sample every fourth pixel.
        assert np.abs(normalise(frame) - reference).mean() < 0.02, frame.dtype


def test_a_thermal_camera_runs_the_learned_detector_when_its_config_says_so():
    from edge.config import CameraSection
    from edge.detection.thermal import ThermalDetector
    from edge.run import build_detector

    camera = Camera.from_hfov(math.radians(60.0), 640, 360)
    frame = EnuFrame(20.0, 10.0, 300.0)
    section = {"name": "drone-1-thermal", "source": "x.mp4", "mode": "thermal",
               "hfov_deg": 60.0, "width": 640, "height": 360, "drone_sysid": 1}  # fmt: skip
    learned = build_detector(CameraSection(**section, thermal_detector="learned"), camera,
                             frame, Georeferencer(camera, frame))  # fmt: skip
    assert isinstance(learned.detector, LearnedThermalDetector)
    assert learned.detector.georeferencer is not None
    hot_spots = build_detector(CameraSection(**section), camera, frame,
                               Georeferencer(camera, frame))  # fmt: skip
    assert isinstance(hot_spots.detector, ThermalDetector)
