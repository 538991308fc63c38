"""Simulated camera benchmark: `python -m bench sim_camera [--json] [--quick]`.

Frames per second of `sim_hw.camera` rendering at 1280x720, EO and thermal, by
night and by day, from the small scenario's drone in two views: climbing out
with the camera looking far ahead (t = 60 s: an oblique view with haze rows)
and loitering with the camera on its ground point (t = 150 s). OpenCV runs on
one thread, so the figures are one core's. Each case renders consecutive
frames (1/25 s apart), warm (the ground texture made, first frame discarded);
reported as frames per second of wall time and of process CPU time (the
machine may be shared), the median of repeats.

The reference, timed in the same run: one `cv2.warpPerspective` of a
2048 x 2048 BGR texture to a 1280 x 720 BGR image, bilinear with wrapping
borders, the single operation a homography renderer cannot do without. The
ratio says how many such warps one frame costs. Also timed: JPEG encoding of
a frame at the MJPEG server's quality (serving live costs render + encode),
and the one-off making of a seed's ground texture.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from bench import results
from sim_hw.camera import CameraRenderer, CameraSpec, DronePoses
from sim_hw.camera.cli import JPEG_QUALITY
from sim_hw.camera.ground_texture import ground_texture
from sim_hw.scenario import load_config

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "configs" / "scenarios" / "small.toml"
VIEWS = {"climb-out, oblique": 60.0, "loiter": 150.0}
TARGET_FPS = 25.0


def timed(run, count: int) -> tuple[float, float]:
    """(wall, cpu) seconds per call over `count` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for k in range(count):
        run(k)
    return (time.perf_counter() - wall) / count, (time.process_time() - cpu) / count


def median_timing(run, count: int, repeats: int) -> tuple[float, float]:
    runs = [timed(run, count) for _ in range(repeats)]
    return float(np.median([r[0] for r in runs])), float(np.median([r[1] for r in runs]))


def reference_warp(count: int, repeats: int) -> dict:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (2048, 2048, 3), dtype=np.uint8)
    homography = np.array([[0.21, 0.05, 300.0], [-0.03, 0.25, 900.0], [1e-5, 2e-4, 1.0]])

    def warp(_):
        cv2.warpPerspective(texture, homography, (1280, 720),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_WRAP)  # fmt: skip

    wall, cpu = median_timing(warp, count, repeats)
    return {"what": "cv2.warpPerspective 2048x2048 BGR -> 1280x720, bilinear, wrap",
            "wall_ms": 1e3 * wall, "cpu_ms": 1e3 * cpu}  # fmt: skip


def render_case(config, poses, mode: str, lighting: str, view: str, count: int,
                repeats: int, reference: dict) -> dict:  # fmt: skip
    renderer = CameraRenderer(config, CameraSpec(mode=mode, lighting=lighting), poses)
    start = VIEWS[view]
    renderer.render(start)  # warm: caches, the thermal layer for the hour
    wall, cpu = median_timing(lambda k: renderer.render(start + k / TARGET_FPS), count, repeats)
    frame = renderer.render(start)
    encode_wall, _ = median_timing(
        lambda _: cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]),
        count, repeats)  # fmt: skip
    return {
        "mode": mode, "lighting": lighting, "view": view, "scenario_t": start,
        "targets_in_view": len(frame.targets),
        "fps_wall": 1.0 / wall, "fps_cpu": 1.0 / cpu,
        "ms_wall": 1e3 * wall, "ms_cpu": 1e3 * cpu,
        "warps_per_frame_cpu": cpu / (reference["cpu_ms"] / 1e3),
        "jpeg_encode_ms": 1e3 * encode_wall,
        "fps_live_mjpeg_wall": 1.0 / (wall + encode_wall),
        "meets_25_fps_cpu": 1.0 / cpu >= TARGET_FPS,
    }  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sim_camera", description=__doc__)
    results.add_json_option(parser, "sim_camera")
    parser.add_argument("--quick", action="store_true", help="fewer frames and repeats")
    args = parser.parse_args(argv)
    count, repeats = (10, 2) if args.quick else (50, 5)
    cv2.setNumThreads(1)  # one core's figures

    began = time.perf_counter()
    ground_texture.cache_clear()
    ground_texture(0)
    texture_s = time.perf_counter() - began
    config = load_config(SCENARIO)
    poses = DronePoses(config, 1)
    reference = reference_warp(count, repeats)
    cases = [render_case(config, poses, mode, lighting, view, count, repeats, reference)
             for mode in ("eo", "thermal") for lighting in ("scene", "day")
             for view in VIEWS]  # fmt: skip
    report = {
        **results.header("sim_camera", argv, "numpy", "opencv"),
        "size": [1280, 720], "frames_per_case": count, "repeats": repeats,
        "opencv_threads": cv2.getNumThreads(),
        "ground_texture_seconds": texture_s,
        "reference": reference,
        "cases": cases,
    }  # fmt: skip
    results.publish(format_report(report), report, "sim_camera" if args.json else None)
    return 0


def format_report(report: dict) -> str:
    ref = report["reference"]
    lines = [
        f"simulated camera, 1280x720, OpenCV on {report['opencv_threads']} thread; "
        f"load average {report['machine']['load_average_1min']:.2f} "
        f"on {report['machine']['cpu_count']} cpus",
        f"reference: {ref['what']}: {ref['cpu_ms']:.2f} ms cpu, {ref['wall_ms']:.2f} ms wall",
        f"ground texture, one seed: {report['ground_texture_seconds']:.2f} s once",
        "",
        f"  {'mode':<8}{'light':<7}{'view':<20}{'fps cpu':>8}{'fps wall':>9}{'ms cpu':>8}"
        f"{'x warp':>8}{'jpeg ms':>8}{'live fps':>9}",
    ]
    for c in report["cases"]:
        lines.append(
            f"  {c['mode']:<8}{c['lighting']:<7}{c['view']:<20}{c['fps_cpu']:>8.1f}"
            f"{c['fps_wall']:>9.1f}{c['ms_cpu']:>8.1f}{c['warps_per_frame_cpu']:>8.2f}"
            f"{c['jpeg_encode_ms']:>8.1f}{c['fps_live_mjpeg_wall']:>9.1f}"
        )  # fmt: skip
    return "\n".join(lines)
