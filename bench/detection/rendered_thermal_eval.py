"""Both thermal detectors on a scenario's rendered thermal frames, scored in the image.

`evaluate` renders the thermal camera of each drone of the scenario with
`sim_hw.camera` every `step_s` seconds (frames with a target in view), runs
the hot-spot detector and the learned one on each frame with the frame's pose,
and scores them against the renderer's truth: a detection whose box centre
lies within `MARGIN_PX` of a target's box (the renderer's box is the solid's
outline; the camera's blur spreads its warmth a little further) finds that
target; one near no target of any class (camels included) is a false alarm.
Recall counts people and vehicles whose box's longer side is at least
`MIN_TARGET_PX`. Time per frame is the detector's call, wall and thread CPU,
OpenCV and ONNX Runtime on one thread.
"""

from __future__ import annotations

import math
import time

import numpy as np

MARGIN_PX = 3.0
MIN_TARGET_PX = 3.0
RECALL_CLASSES = ("person", "vehicle")


def evaluate(scenario_path: str, step_s: float = 2.0, lighting: str = "scene") -> dict:
    from edge.detection.eo_motion import as_pose
    from edge.detection.thermal import ThermalDetector
    from edge.detection.thermal_learned import LearnedThermalDetector
    from edge.georef import Camera, Georeferencer
    from sim_hw.camera import CameraRenderer, CameraSpec, DronePoses, origin_of
    from sim_hw.scenario import load_config

    config = load_config(scenario_path)
    spec = CameraSpec(mode="thermal", lighting=lighting)
    camera = Camera.from_hfov(math.radians(spec.hfov_deg), spec.width, spec.height)
    tallies = {"hot_spots": _Tally(), "learned": _Tally()}
    for drone in config.drones:
        georeferencer = Georeferencer(camera, origin_of(config))
        detectors = {"hot_spots": ThermalDetector(georeferencer),
                     "learned": LearnedThermalDetector(georeferencer)}  # fmt: skip
        renderer = CameraRenderer(config, spec, DronePoses(config, drone.sysid), seed=0)
        warmed = False
        for t in np.arange(step_s / 2.0, config.duration_s, step_s):
            frame = renderer.render(float(t))
            if not frame.targets:
                continue
            pose = as_pose(frame.pose)
            for name, detector in detectors.items():
                if not warmed:  # the georeferencer's kernels, ONNX Runtime's buffers
                    detector.detect(frame.image, pose)
                start, cpu = time.perf_counter(), time.thread_time()
                detections = detector.detect(frame.image, pose)
                tallies[name].add(detections, frame.targets, time.perf_counter() - start,
                                  time.thread_time() - cpu)  # fmt: skip
            warmed = True
    return {"scenario": config.name, "step_s": step_s, "lighting": lighting,
            "size": [spec.width, spec.height],
            **{name: tally.figures() for name, tally in tallies.items()}}  # fmt: skip


class _Tally:
    def __init__(self):
        self.found = {c: 0 for c in RECALL_CLASSES}
        self.total = {c: 0 for c in RECALL_CLASSES}
        self.called = {c: 0 for c in RECALL_CLASSES}  # found, and named their class
        self.false_alarms = 0
        self.frames = 0
        self.seconds = self.cpu_seconds = 0.0

    def add(self, detections, targets, seconds: float, cpu_seconds: float) -> None:
        self.frames += 1
        self.seconds += seconds
        self.cpu_seconds += cpu_seconds
        centres = [((d.box[0] + d.box[2]) / 2.0, (d.box[1] + d.box[3]) / 2.0) for d in detections]
        near = np.array([[_near(c, target.box) for target in targets] for c in centres],
                        bool).reshape(len(centres), len(targets))  # fmt: skip
        self.false_alarms += int((~near.any(axis=1)).sum())
        for k, target in enumerate(targets):
            x0, y0, x1, y1 = target.box
            if target.target_class not in RECALL_CLASSES or max(x1 - x0, y1 - y0) < MIN_TARGET_PX:
                continue
            self.total[target.target_class] += 1
            hits = np.flatnonzero(near[:, k])
            self.found[target.target_class] += bool(len(hits))
            self.called[target.target_class] += any(
                detections[i].target_class == target.target_class for i in hits)

    def figures(self) -> dict:
        def ratio(a, b):
            return a / b if b else None

        return {
            "frames": self.frames,
            **{f"{c}s": self.total[c] for c in RECALL_CLASSES},
            **{f"{c}_recall": ratio(self.found[c], self.total[c]) for c in RECALL_CLASSES},
            **{f"{c}_class_right": ratio(self.called[c], self.found[c]) for c in RECALL_CLASSES},
            "false_alarms_per_frame": ratio(self.false_alarms, self.frames),
            "ms_per_frame": ratio(1000.0 * self.seconds, self.frames),
            "cpu_ms_per_frame": ratio(1000.0 * self.cpu_seconds, self.frames),
        }


def _near(centre, box) -> bool:
    return (box[0] - MARGIN_PX <= centre[0] <= box[2] + MARGIN_PX
            and box[1] - MARGIN_PX <= centre[1] <= box[3] + MARGIN_PX)  # fmt: skip


def format_report(result: dict) -> str:
    lines = [f"Thermal detectors on rendered scenario {result['scenario']!r}: "
             f"{result['learned']['frames']} frames at {result['size'][0]}x{result['size'][1]}, "
             f"one every {result['step_s']:g} s of each drone's camera with a target in view",
             f"{'':<12} {'person recall':>13} {'vehicle recall':>14} {'FA/frame':>9} "
             f"{'class right p/v':>16} {'ms/frame':>9} {'CPU ms':>7}"]  # fmt: skip
    for name in ("learned", "hot_spots"):
        f = result[name]
        classes = f"{_show(f['person_class_right'], 2)}/{_show(f['vehicle_class_right'], 2)}"
        lines.append(f"{name:<12} {_show(f['person_recall']):>13} "
                     f"{_show(f['vehicle_recall']):>14} {_show(f['false_alarms_per_frame'], 2):>9} "
                     f"{classes:>16} {_show(f['ms_per_frame'], 1):>9} "
                     f"{_show(f['cpu_ms_per_frame'], 1):>7}")  # fmt: skip
    lines.append(f"({result['learned']['persons']} person and {result['learned']['vehicles']} "
                 "vehicle sightings counted)")
    return "\n".join(lines)


def _show(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
