"""`python -m edge klv SOURCE [--json]`: what a motion-imagery stream's KLV metadata says.

One line per metadata packet (MISB ST 0601 or EG 0104), in stream order:
the packet's time, the platform's position and attitude, the sensor's
pointing and fields of view, the frame centre as the packet states it, and
the frame centre as this node's georeferencing computes it from the pose (on
the ground at the packet's frame-centre height, with its covariance in the
east/north axes there). Degrees and metres, heights above the WGS84
ellipsoid; a field the packet lacks is null. SOURCE is a file, udp://,
rtp:// or rtsp:// URL. Packets refused (bad checksum, broken framing) print
nothing; the counts go to stderr at the end.

Exit status: 0 when at least one packet was read, 1 when none, 2 for a source
that does not open.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict

from edge.drivers.klv_metadata import KlvDecoder, KlvRecord
from edge.drivers.klv_pose import GroundPoint, georeferenced_centre
from edge.drivers.video_ts import KlvUnit, TsDemuxer

DEFAULT_SIZE = (1280, 720)  # pixels, when the stream has no video to say


def record_json(record: KlvRecord, centre: GroundPoint | None) -> dict:
    """The command's JSON object for one packet."""
    centre_lat, centre_lon, centre_alt = record.frame_centre
    return {
        "time": record.time,
        "standard": record.standard,
        "platform": {"lat": record.sensor_lat, "lon": record.sensor_lon,
                     "alt_hae": record.sensor_alt_hae, "heading": record.platform_heading,
                     "pitch": record.platform_pitch, "roll": record.platform_roll},
        "sensor": {"lat": record.sensor_lat, "lon": record.sensor_lon,
                   "alt_hae": record.sensor_alt_hae, "rel_azimuth": record.rel_azimuth,
                   "rel_elevation": record.rel_elevation, "rel_roll": record.rel_roll,
                   "hfov": record.hfov, "vfov": record.vfov},
        "klv_frame_centre": {"lat": centre_lat, "lon": centre_lon, "alt_hae": centre_alt},
        "georef_frame_centre": {"lat": None, "lon": None, "alt_hae": None,
                                "covariance_enu_m2": None} if centre is None else
                               {"lat": centre.lat, "lon": centre.lon, "alt_hae": centre.alt_hae,
                                "covariance_enu_m2": [list(row) for row in
                                                      centre.covariance_enu_m2]},
    }  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m edge klv",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("source", help="a .ts file, udp://..., rtp://..., rtsp://...")
    parser.add_argument("--json", action="store_true", help="one JSON object per packet")
    parser.add_argument("--limit", type=int, default=None, help="stop after this many packets")
    parser.add_argument("--size", type=int, nargs=2, metavar=("WIDTH", "HEIGHT"),
                        help="the frame's size, px (default: the video stream's)")
    parser.add_argument("--timeout", type=float, default=10.0, help="s without data: give up")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        demuxer = TsDemuxer(args.source, decode_video=False, timeout_s=args.timeout)
        decoder = KlvDecoder()
    except OSError as error:
        print(f"python -m edge klv: {error}", file=sys.stderr)
        return 2
    width, height = args.size or demuxer.size or DEFAULT_SIZE
    printed = 0
    try:
        for unit in demuxer:
            if not isinstance(unit, KlvUnit):
                continue
            record = decoder.decode(unit.packet)
            if record is None:
                continue
            centre = georeferenced_centre(record, width, height)
            line = record_json(record, centre)
            print(json.dumps(line) if args.json else _text(line), flush=True)
            printed += 1
            if args.limit is not None and printed >= args.limit:
                break
    except BrokenPipeError:  # the reader (head, a pipe) has what it wanted
        return 0
    except OSError as error:  # the stream failed or fell silent: report what was read
        print(f"python -m edge klv: {error}", file=sys.stderr)
    finally:
        demuxer.close()
    counters = asdict(decoder.counters) | {"demux": asdict(demuxer.counters)}
    print(f"klv counters: {json.dumps(counters)}", file=sys.stderr)
    return 0 if printed else 1


def _text(line: dict) -> str:
    def fmt(value, digits):
        return "-" if value is None else f"{value:.{digits}f}"

    sensor, ours, theirs = line["sensor"], line["georef_frame_centre"], line["klv_frame_centre"]
    return (f"{fmt(line['time'], 3)} {line['standard']} "
            f"sensor {fmt(sensor['lat'], 6)},{fmt(sensor['lon'], 6)} "
            f"{fmt(sensor['alt_hae'], 1)} m  centre klv {fmt(theirs['lat'], 6)},"
            f"{fmt(theirs['lon'], 6)}  ours {fmt(ours['lat'], 6)},"
            f"{fmt(ours['lon'], 6)}")  # fmt: skip
