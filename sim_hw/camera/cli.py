"""`python -m sim_hw camera`: a simulated camera to a video file, or live as MJPEG.

    python -m sim_hw camera configs/scenarios/small.toml --sysid 1 --mode eo --out eo.mp4
    python -m sim_hw camera configs/scenarios/small.toml --sysid 1 --mode thermal \\
        --serve 127.0.0.1:8081          # then open http://127.0.0.1:8081/video.mjpg
    python -m sim_hw camera configs/scenarios/small.toml \\
        --mast 22.700,14.178,12,20,-4 --out mast.avi

A video (`.avi`: MJPG, anything else: mp4v) comes with `VIDEO.frames.jsonl`,
one line per frame: {"frame", "time" (UTC s), "pose" (the fields of
CameraPose, hence of edge.georef.Pose), "targets" (the fields of TargetInView
of every visible target)}. A live stream runs at real time, dropping frames
rather than falling behind when rendering cannot keep up, and serves each
frame's line at /truth.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import threading
import time
import tomllib
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
from pydantic import ValidationError

from sim_hw.camera.illumination import LIGHTING
from sim_hw.camera.mjpeg import MjpegServer
from sim_hw.camera.pose import DronePoses, mast_pose
from sim_hw.camera.render import CameraRenderer, RenderedFrame, frame_times
from sim_hw.camera.scene import Occluder
from sim_hw.camera.spec import MODES, CameraSpec
from sim_hw.scenario import epoch_arg, load_config

log = logging.getLogger(__name__)
JPEG_QUALITY = 85


def sidecar_record(index: int, frame: RenderedFrame) -> dict:
    """One line of the sidecar: the frame's time, pose and visible targets."""
    return {"frame": index, "time": round(frame.time, 6), "pose": asdict(frame.pose),
            "targets": [asdict(t) for t in frame.targets]}  # fmt: skip


def write_video(frames: Iterable[RenderedFrame], path: str | Path, fps: float) -> int:
    """Write the frames to `path` and their sidecar to `path`.frames.jsonl; the frame count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if path.suffix.lower() == ".avi" else "mp4v"))
    writer = None
    count = 0
    try:
        with open(f"{path}.frames.jsonl", "w") as sidecar:
            for frame in frames:
                image = frame.image
                if image.ndim == 2:  # thermal: grey, stored as colour for every player
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                if writer is None:
                    size = (image.shape[1], image.shape[0])
                    writer = cv2.VideoWriter(str(path), fourcc, fps, size)
                    if not writer.isOpened():
                        raise OSError(f"OpenCV cannot write {path} (codec of its extension)")
                writer.write(image)
                sidecar.write(json.dumps(sidecar_record(count, frame)) + "\n")
                count += 1
    finally:
        if writer is not None:
            writer.release()
    return count


@dataclass
class StreamStats:
    rendered: int = 0
    dropped: int = 0  # frames real time passed by while an earlier one rendered


def stream(renderer: CameraRenderer, server: MjpegServer, start_s: float = 0.0,
           duration_s: float | None = None, stop: threading.Event | None = None,
           jpeg_quality: int = JPEG_QUALITY, live: bool = False) -> StreamStats:  # fmt: skip
    """Publish frames to `server` at real time: frame k at k / fps after the start, or,
    when `live`, each frame when the wall clock reaches its UTC time (frames already past
    are skipped), so that it agrees with a replay of the scenario's tlogs at their times."""
    stats = StreamStats()
    times = frame_times(renderer.config, renderer.spec, start_s, duration_s)
    fps = renderer.spec.fps
    stop = stop or threading.Event()
    began = time.monotonic()
    if live:
        began += renderer.config.start_utc + times[0] - time.time()
        stop.wait(max(0.0, began - time.monotonic()))
    k = 0
    while k < len(times) and not stop.is_set():
        due = int((time.monotonic() - began) * fps)
        if due > k:  # behind: skip to the frame real time has reached
            stats.dropped += min(due, len(times)) - k
            k = due
            if k >= len(times):
                break
        frame = renderer.render(float(times[k]))
        ok, jpeg = cv2.imencode(".jpg", frame.image, [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if ok:
            server.publish(jpeg.tobytes(), frame.time, sidecar_record(k, frame))
        stats.rendered += 1
        k += 1
        stop.wait(max(0.0, began + k / fps - time.monotonic()))
    return stats


# --- the command line -------------------------------------------------------------------


def _numbers(text: str, count: tuple[int, ...], what: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",")]
    except ValueError:
        values = []
    if len(values) not in count or not all(map(math.isfinite, values)):
        raise argparse.ArgumentTypeError(f"{what}: expected {' or '.join(map(str, count))} "
                                         f"comma-separated numbers, got {text!r}")  # fmt: skip
    return values


def _mast(text: str) -> list[float]:
    return _numbers(text, (5,), "LAT,LON,HEIGHT,PAN,TILT")


def _occluder(text: str) -> Occluder:
    values = _numbers(text, (5, 6), "LAT,LON,LENGTH,WIDTH,HEIGHT[,HEADING]")
    try:
        return Occluder(*values)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host, int(port)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim_hw camera", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="configs/scenarios/NAME.toml")
    camera = p.add_mutually_exclusive_group(required=True)
    camera.add_argument("--sysid", type=int, help="the drone whose gimbal camera to render")
    camera.add_argument("--mast", type=_mast, metavar="LAT,LON,HEIGHT,PAN,TILT",
                        help="a fixed camera: deg, deg, m over the ground, deg from north, "
                             "deg (negative: down)")
    output = p.add_mutually_exclusive_group(required=True)
    output.add_argument("--out", help="video file (.mp4: mp4v, .avi: MJPG) + .frames.jsonl")
    output.add_argument("--serve", type=_endpoint, metavar="HOST:PORT",
                        help="live MJPEG at http://HOST:PORT/video.mjpg, real time")
    p.add_argument("--mode", choices=MODES, default="eo")
    p.add_argument("--start", type=float, default=0.0, help="scenario s of the first frame")
    p.add_argument("--epoch", type=epoch_arg, help="UTC s (or 'now') of scenario time 0, instead "
                   "of the file's start; with --serve, each frame goes out when the wall "
                   "clock reaches its time (a live run beside `sim_hw replay --wall-clock`)")
    p.add_argument("--duration", type=float, help="s (default: to the scenario's end)")
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--hfov", type=float, default=60.0, help="deg")
    p.add_argument("--lighting", choices=LIGHTING, default="scene",
                   help="scene: the scenario's clock; day or night: force")
    p.add_argument("--noise", type=float, default=1.0, help="noise scale (0: none)")
    p.add_argument("--blur", type=float, default=1.0, help="blur scale (0: none)")
    p.add_argument("--seed", type=int, default=0, help="ground texture and sensor noise")
    p.add_argument("--occluder", type=_occluder, action="append", default=[],
                   metavar="LAT,LON,LENGTH,WIDTH,HEIGHT[,HEADING]",
                   help="a raised box (m, deg from north) that hides what is behind it; "
                        "repeatable")  # fmt: skip
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s %(message)s")
    try:
        config = load_config(args.config)
        if args.epoch is not None:
            config = config.starting_at(args.epoch)
        spec = CameraSpec(width=args.width, height=args.height, hfov_deg=args.hfov,
                          mode=args.mode, fps=args.fps, noise=args.noise, blur=args.blur,
                          lighting=args.lighting)  # fmt: skip
        if args.sysid is not None:
            poses = DronePoses(config, args.sysid)
        else:
            pose = mast_pose(config, *args.mast)
            poses = lambda t: pose  # noqa: E731 (a fixed camera)
        renderer = CameraRenderer(config, spec, poses, args.seed, args.occluder)
        frame_times(config, spec, args.start, args.duration)  # reject bad times up front
    except (OSError, tomllib.TOMLDecodeError, ValidationError, ValueError) as error:
        print(f"python -m sim_hw camera: {error}", file=sys.stderr)
        return 2
    if args.out:
        return _write(renderer, args)
    return _serve(renderer, args)


def _write(renderer: CameraRenderer, args) -> int:
    began = time.monotonic()
    try:
        count = write_video(renderer.frames(args.start, args.duration), args.out, args.fps)
    except OSError as error:
        print(f"python -m sim_hw camera: {error}", file=sys.stderr)
        return 1
    seconds = time.monotonic() - began
    print(f"wrote {count} frames to {args.out} and {args.out}.frames.jsonl "
          f"({count / max(seconds, 1e-9):.1f} frames/s)")  # fmt: skip
    return 0


def _serve(renderer: CameraRenderer, args) -> int:
    try:
        server = MjpegServer(*args.serve).start()
    except OSError as error:
        print(f"python -m sim_hw camera: cannot listen on {args.serve}: {error}", file=sys.stderr)
        return 1
    print(f"serving {server.url} (Ctrl-C to stop)", flush=True)
    try:
        stats = stream(renderer, server, args.start, args.duration, live=args.epoch is not None)
    except KeyboardInterrupt:
        stats = None
    finally:
        server.close()
    if stats is not None:
        print(f"streamed {stats.rendered} frames, dropped {stats.dropped} to keep real time")
    return 0
