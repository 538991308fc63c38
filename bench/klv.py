"""KLV motion-imagery benchmark: `python -m bench klv [--json] [--quick]`.

1. Frame centres: where our georeferencing puts the image centre from each
   packet's pose (on the ground at the packet's frame-centre height, as
   `python -m edge klv` does) against the frame centre the packet states:
   - the shared KWIVER file (`../shared/data/video/misb0601-synthetic-h264.ts`),
     whose pose and frame centre are independent synthetic values (the sensor
     over Siberia, the centre in central Africa): the distance says what the
     file says, not how good the georeferencing is;
   - the simulator's drone over the whole small scenario (one packet every
     0.2 s), whose frame centre is the simulator's own truth: the ground point
     of the image centre in its world model. The packets are the simulator's
     encoder's (`sim_hw.klv_encoder`), so the figure holds the items'
     quantisation and the two models' differences.
2. Decode throughput, packets/s, single thread: splitting, checking and
   decoding into a record (`KlvDecoder`), for the KWIVER packets (every ST 0601
   item, 2.4 kB) and the simulator's (the items a turret sends, 250 B);
   reference in the same process: stanag4609's `decode_uas_local_set` on the
   same simulator packets (it refuses the KWIVER file's packets, which carry
   both a Segment and an Amend set).
3. The whole node on a 720p KLV stream on one core (the process pinned to
   one CPU, FFmpeg's decoder on one thread): an H.264 + ST 0601 MPEG-TS file
   of the small scenario's EO camera at 25 fps, read as fast as it goes
   (demux, decode, KLV, pose at each frame's time, motion detection,
   georeferencing, tracker). Reference: the demux and decode alone.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from pyproj import Geod

from bench import results
from edge.config import CameraSection
from edge.detection import ground_measurements
from edge.drivers.klv import KlvSplitter
from edge.drivers.klv_metadata import KlvDecoder, packet_problem
from edge.drivers.klv_pose import georeferenced_centre
from edge.drivers.video_ts import KlvUnit, TsDemuxer
from edge.run import build_klv_camera, warm_kernels
from edge.tracking import Tracker
from sim_hw.camera import CameraRenderer, CameraSpec, DronePoses, frame_times
from sim_hw.klv_encoder import encode_packet
from sim_hw.klv_video import sensor_state, write_file
from sim_hw.scenario import load_config
from wire.geo import EnuFrame

ROOT = Path(__file__).resolve().parents[1]
KWIVER_FILE = ROOT.parent / "shared" / "data" / "video" / "misb0601-synthetic-h264.ts"
SCENARIO = ROOT / "configs" / "scenarios" / "small.toml"
GEOD = Geod(ellps="WGS84")


def kwiver_packets() -> list[bytes]:
    demuxer = TsDemuxer(str(KWIVER_FILE), decode_video=False)
    try:
        return [u.packet.raw for u in demuxer if isinstance(u, KlvUnit)]
    finally:
        demuxer.close()


def simulated_packets(step_s: float) -> list[bytes]:
    """The small scenario's drone 1, a packet every step_s, with the simulator's truth."""
    config = load_config(SCENARIO)
    spec = CameraSpec(width=1280, height=720, fps=1.0 / step_s)
    renderer = CameraRenderer(config, spec, DronePoses(config, 1))
    packets = []
    for t in frame_times(config, spec):
        pose = renderer.pose_at(float(t))
        frame = SimpleNamespace(pose=pose, time=config.start_utc + float(t))
        packets.append(encode_packet(sensor_state(renderer, frame)))
    return packets


def centre_distances(packets: list[bytes], width: int, height: int) -> dict:
    decoder = KlvDecoder()
    distances, without = [], 0
    for raw in packets:
        for packet in KlvSplitter().feed(raw):
            record = decoder.decode(packet)
            ours = None if record is None else georeferenced_centre(record, width, height)
            lat, lon, _ = (None, None, None) if record is None else record.frame_centre
            if ours is None or lat is None:
                without += 1
                continue
            distances.append(GEOD.inv(lon, lat, ours.lon, ours.lat)[2])
    d = np.array(distances)
    return {"packets": len(packets), "compared": len(d), "no_centre": without,
            "p50_m": float(np.percentile(d, 50)) if len(d) else None,
            "p95_m": float(np.percentile(d, 95)) if len(d) else None,
            "max_m": float(d.max()) if len(d) else None}  # fmt: skip


def decode_rate(packets: list[bytes], repeats: int) -> float:
    decoder = KlvDecoder()
    rates = []
    for _ in range(repeats):
        began = time.perf_counter()
        splitter = KlvSplitter(check=packet_problem)
        for raw in packets:
            for packet in splitter.feed(raw, new_unit=True):
                decoder.decode(packet)
        rates.append(len(packets) / (time.perf_counter() - began))
    return statistics.median(rates)


def reference_rate(packets: list[bytes], repeats: int) -> float | None:
    try:
        from stanag4609.st0601 import decode_uas_local_set
    except ImportError:
        return None
    rates = []
    for _ in range(repeats):
        began = time.perf_counter()
        for raw in packets:
            decode_uas_local_set(raw)
        rates.append(len(packets) / (time.perf_counter() - began))
    return statistics.median(rates)


def node_rate(path: Path) -> dict:
    """Frames/s of the node's camera pipeline on `path`, and of demux + decode alone."""
    began = time.perf_counter()
    demuxer = TsDemuxer(str(path), threads=1)
    decoded = sum(1 for u in demuxer if not isinstance(u, KlvUnit) and u.image is not None)
    demuxer.close()
    decode_fps = decoded / (time.perf_counter() - began)

    config = load_config(SCENARIO)
    post = config.posts[0]
    frame = EnuFrame(post.lat, post.lon, post.alt)
    section = CameraSection(name="klv", kind="klv", source=str(path), mode="eo",
                            width=1280, height=720)  # fmt: skip
    pipeline = build_klv_camera(section, frame)
    pipeline.source.config = type(pipeline.source.config)(str(path), frame_size=(1280, 720),
                                                          pacing="every")  # fmt: skip
    tracker = Tracker()
    tracks = None
    frames = detections = 0

    pipeline.source.start()
    began = time.perf_counter()
    while (image := pipeline.source.latest(timeout=30.0)) is not None:
        pose = pipeline.pose_at(image.time)
        found = pipeline.detector.detect(image.time, image.image, pose)
        ground = ground_measurements(found, pose, pipeline.georeferencer)
        tracks = tracker.update(image.time, ground.z[ground.ok], ground.R[ground.ok],
                                sensor="klv")  # fmt: skip
        frames += 1
        detections += len(found)
    seconds = time.perf_counter() - began
    pipeline.source.stop()
    return {"frames": frames, "node_fps": frames / seconds, "decode_only_fps": decode_fps,
            "node_vs_decode": (frames / seconds) / decode_fps, "detections": detections,
            "confirmed_tracks_at_end": 0 if tracks is None else int(tracks.confirmed.sum())}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench klv", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    results.add_json_option(parser, "klv")
    parser.add_argument("--quick", action="store_true", help="fewer packets, a shorter stream")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7
    # Poses on the pad (before take-off) put the camera below a far frame centre: the
    # georeferencing's warning for each is not news here.
    logging.getLogger("edge").setLevel(logging.ERROR)
    warm_kernels()

    report = results.header("klv", argv, "numpy", "numba", "opencv",
                            pyav=library_version("av"))  # fmt: skip
    kwiver = kwiver_packets() if KWIVER_FILE.exists() else []
    simulated = simulated_packets(1.0 if args.quick else 0.2)
    report["frame_centre"] = {
        "kwiver_file": centre_distances(kwiver, 160, 120) if kwiver else None,
        "simulated_post": centre_distances(simulated, 1280, 720),
    }
    ours_sim = decode_rate(simulated, repeats)
    reference = reference_rate(simulated, repeats)
    report["decode"] = {
        "kwiver_packets_per_s": decode_rate(kwiver * 20, repeats) if kwiver else None,
        "simulated_packets_per_s": ours_sim,
        "reference_stanag4609_packets_per_s": reference,
        "ratio_to_reference": None if reference is None else ours_sim / reference,
    }
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "eo720.ts"
        config = load_config(SCENARIO)
        spec = CameraSpec(width=1280, height=720, mode="eo", fps=25.0)
        renderer = CameraRenderer(config, spec, DronePoses(config, 1))
        write_file(renderer, path, 60.0, 4.0 if args.quick else 16.0)
        report["node_720p_one_core"] = node_rate(path)
    results.publish(format_report(report), report, "klv" if args.json else None)
    return 0


def library_version(module: str) -> str | None:
    try:
        return __import__(module).__version__
    except ImportError:
        return None


def format_report(report: dict) -> str:
    def fmt(value, spec):
        return "-" if value is None else format(value, spec)

    lines = ["frame centre: our georeferencing against the packet's",
             f"  {'source':<16} {'packets':>7} {'compared':>8} {'p50 m':>10} {'p95 m':>10}"]
    for name, row in report["frame_centre"].items():
        if row is None:
            lines.append(f"  {name:<16} (shared data not present)")
            continue
        lines.append(f"  {name:<16} {row['packets']:>7} {row['compared']:>8} "
                     f"{fmt(row['p50_m'], '>10.3f')} {fmt(row['p95_m'], '>10.3f')}")
    decode = report["decode"]
    node = report["node_720p_one_core"]
    lines += ["", "decode, packets/s (one thread)",
              f"  KWIVER packets (every item)   {fmt(decode['kwiver_packets_per_s'], ',.0f')}",
              f"  simulator packets             {decode['simulated_packets_per_s']:,.0f}",
              f"  stanag4609, same packets      "
              f"{fmt(decode['reference_stanag4609_packets_per_s'], ',.0f')}"
              f"  (ours {fmt(decode['ratio_to_reference'], '.1f')}x)",
              "", "node on a 720p H.264 + KLV stream, one core",
              f"  whole pipeline {node['node_fps']:.1f} frames/s over {node['frames']} frames; "
              f"demux + decode alone {node['decode_only_fps']:.1f} frames/s"]  # fmt: skip
    return "\n".join(lines)

