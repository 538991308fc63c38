"""The learned thermal detector on real labelled images: person and vehicle recall
against false alarms per image, scored as `thermal_eval` scores the hot-spot detector.

Each image is read twice: with the pose its file name gives (altitude and camera
angle, the assumed lens of `thermal_eval`), as a node with telemetry reads it,
and without any pose, as a camera with no metadata is read. The calibrated
score threshold is swept by running the network once per image and keeping,
for each threshold, the maxima whose score reaches it (`scores`): the
threshold only filters, so this equals a run at it. Time per image is the
whole `scores` call (normalisation, geometry, ONNX Runtime on one thread,
decoding) with OpenCV on one thread, as wall time and as the thread's CPU time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np

from bench.detection.thermal_eval import (
    FA_BUDGETS,
    Tally,
    _group,
    _ratio,
    _spread,
    georeferencer_for,
    load_dataset,
    pose_for,
)
from edge.detection.thermal_learned import LearnedThermalDetector, LearnedThermalSettings

THRESHOLDS = tuple(float(t) for t in np.round(np.r_[np.arange(0.05, 0.9, 0.025),
                                                     np.arange(0.9, 0.995, 0.01)], 3))


@dataclass(frozen=True)
class _Scored:
    boxes: list  # the image's labelled boxes (category, box)
    found: np.ndarray  # (N, 4) boxes of the maxima
    scores: np.ndarray  # (N,) calibrated
    classes: list[str]  # (N,) the likeliest class of each


def evaluate(images_dir, annotations_file, *, limit: int | None = None,
             settings: LearnedThermalSettings | None = None) -> dict:  # fmt: skip
    """Curves, summaries, the default threshold's row and time, with and without pose."""
    images = _spread(load_dataset(images_dir, annotations_file), limit)
    settings = settings or LearnedThermalSettings()
    result = {}
    for name, with_pose in (("with_pose", True), ("without_pose", False)):
        scored, seconds, cpu_seconds, detector = _run(images, settings, with_pose)
        curve = learned_curve(scored)
        threshold = detector.threshold
        result[name] = {
            "curve": curve,
            "summary": summarise(curve),
            "at_default_threshold": _row_at(scored, threshold),
            "class_accuracy": class_accuracy(scored, threshold),
            "ms_per_image": 1000.0 * seconds / max(len(scored), 1),
            "cpu_ms_per_image": 1000.0 * cpu_seconds / max(len(scored), 1),
        }
    result["model"] = str(settings.model)
    result["default_threshold"] = threshold
    return result


def _run(images, settings: LearnedThermalSettings, with_pose: bool):
    detectors: dict[tuple[int, int], LearnedThermalDetector] = {}
    scored, seconds, cpu_seconds = [], 0.0, 0.0
    for image in images:
        grey = cv2.imread(str(image.path), cv2.IMREAD_GRAYSCALE)
        if grey is None:
            continue
        height, width = grey.shape
        if (width, height) not in detectors:
            georeferencer = georeferencer_for(width, height) if with_pose else None
            detectors[(width, height)] = LearnedThermalDetector(georeferencer, settings)
            # Untimed: the first run compiles the georeferencer's kernels and sizes
            # ONNX Runtime's buffers, which a node does once at start.
            detectors[(width, height)].scores(grey, pose_for(image) if with_pose else None)
        detector = detectors[(width, height)]
        start, cpu = time.perf_counter(), time.thread_time()
        boxes, scores, probabilities = detector.scores(grey, pose_for(image) if with_pose
                                                       else None)  # fmt: skip
        seconds += time.perf_counter() - start
        cpu_seconds += time.thread_time() - cpu
        classes = [detector.info.classes[k] for k in np.argmax(probabilities, axis=1)]
        scored.append(_Scored(image.boxes, boxes, scores, classes))
    return scored, seconds, cpu_seconds, next(iter(detectors.values()))


def _centres(boxes: np.ndarray) -> np.ndarray:
    return np.column_stack([(boxes[:, 0] + boxes[:, 2]) / 2.0, (boxes[:, 1] + boxes[:, 3]) / 2.0])


def _row_at(scored: list[_Scored], threshold: float) -> dict:
    tally = Tally()
    for s in scored:
        tally.add(_centres(s.found[s.scores >= threshold]), s.boxes)
    return tally.row(threshold)


def learned_curve(scored: list[_Scored]) -> list[dict]:
    return [_row_at(scored, threshold) for threshold in THRESHOLDS]


def summarise(curve: list[dict]) -> dict:
    """Best person and vehicle recall within each false-alarm budget (one threshold each)."""
    def best(key, budget):
        return max((r[key] for r in curve if r["false_alarms_per_image"] <= budget), default=0.0)

    return {key: {f"{b:g}": best(key, b) for b in FA_BUDGETS}
            for key in ("person_recall", "vehicle_recall")}  # fmt: skip


def class_accuracy(scored: list[_Scored], threshold: float) -> dict:
    """Of the persons and vehicles found at `threshold`, the share whose likeliest matching
    detection names their class."""
    found = {"person": 0, "vehicle": 0}
    called = dict(found)
    for s in scored:
        keep = s.scores >= threshold
        centres = _centres(s.found[keep])
        classes = [c for c, k in zip(s.classes, keep, strict=True) if k]
        for category, (x0, y0, x1, y1) in s.boxes:
            group = _group(category)
            if group is None:
                continue
            inside = ((centres[:, 0] >= x0) & (centres[:, 0] <= x1)
                      & (centres[:, 1] >= y0) & (centres[:, 1] <= y1))  # fmt: skip
            if inside.any():
                found[group] += 1
                called[group] += any(classes[i] == group for i in np.flatnonzero(inside))
    return {group: _ratio(called[group], found[group]) for group in found}
