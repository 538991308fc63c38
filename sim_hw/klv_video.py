"""`python -m sim_hw klv-video`: a scenario's camera as STANAG 4609 motion imagery.

H.264 video in an MPEG transport stream with an asynchronous KLV stream
carrying one MISB ST 0601 packet per frame (stamped with the frame's time),
as a tactical aircraft sends it; no MAVLink. To a file (`--out x.ts`, with
`x.ts.frames.jsonl` holding each frame's truth, as `sim_hw camera` writes
it) or live over UDP (`--udp HOST:PORT`, unicast or a multicast group), at
the wall clock when `--epoch` places the scenario in the present.

    python -m sim_hw klv-video configs/scenarios/small.toml --sysid 1 --out /tmp/d1.ts
    python -m sim_hw klv-video configs/scenarios/small.toml --sysid 1 --udp 239.1.1.1:15004 \\
        --epoch now --start 45
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import math
import socket
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from sim_hw.camera import CameraRenderer, CameraSpec, DronePoses, RenderedFrame, frame_times
from sim_hw.camera.cli import _endpoint, sidecar_record
from sim_hw.klv_encoder import SensorState, encode_packet, relative_pointing
from sim_hw.scenario import epoch_arg, load_config

TS_CLOCK = Fraction(1, 90_000)


def sensor_state(renderer: CameraRenderer, frame: RenderedFrame) -> SensorState:
    """The ST 0601 view of one rendered frame: its pose, and its centre and corners on the
    ground (none where they see sky)."""
    pose, spec = frame.pose, renderer.spec
    view = renderer.view(pose)
    azimuth, elevation, rel_roll = relative_pointing(pose.roll, pose.pitch, pose.yaw,
                                                     pose.gimbal_roll, pose.gimbal_pitch,
                                                     pose.gimbal_yaw)  # fmt: skip
    hfov = spec.hfov_deg
    vfov = math.degrees(2 * math.atan(math.tan(math.radians(hfov) / 2) * spec.height / spec.width))
    w, h = spec.width, spec.height
    ground = _ground_points(renderer, view, [(w / 2, h / 2), (0, 0), (w, 0), (w, h), (0, h)])
    centre = ground[0]
    corners = tuple(p[:2] for p in ground[1:]) if all(p is not None for p in ground[1:]) else None
    slant = None
    if centre is not None:
        slant = float(np.linalg.norm(view.boresight_point() - view.position))
    return SensorState(time=frame.time, lat=pose.lat, lon=pose.lon, alt_hae=pose.alt,
                       heading=math.degrees(pose.yaw) % 360.0, pitch=math.degrees(pose.pitch),
                       roll=math.degrees(pose.roll), rel_azimuth=azimuth,
                       rel_elevation=elevation, rel_roll=rel_roll, hfov=hfov, vfov=vfov,
                       velocity_ne=(pose.velocity_ned[0], pose.velocity_ned[1]),
                       frame_centre=centre, corners=corners, slant_range=slant)  # fmt: skip


def _ground_points(renderer, view, pixels):
    """(lat, lon, height) of the ground seen at each pixel, or None for sky."""
    points = []
    for u, v in pixels:
        if view.inverse_depth(u, v) <= 0:
            points.append(None)
            continue
        homogeneous = view.en_from_uv @ np.array([u, v, 1.0])
        e, n = homogeneous[:2] / homogeneous[2]
        up = view.plane_point[2] + (view.plane_normal[0] * (view.plane_point[0] - e)
                                    + view.plane_normal[1] * (view.plane_point[1] - n)
                                    ) / view.plane_normal[2]  # fmt: skip
        lat, lon, height = renderer.origin.to_geodetic(e, n, up)
        points.append((float(lat), float(lon), float(height)))
    return points


class UdpSink:
    """A file-like end for the muxer: the transport stream in datagrams of seven TS packets
    (1316 octets), as IPTV and tactical links carry it. A multicast group is sent with
    `ttl` hops on the interface of `interface` (an address of this host)."""

    DATAGRAM = 7 * 188

    def __init__(self, host: str, port: int, ttl: int = 1, interface: str | None = None):
        self.address = (host, port)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if ipaddress.ip_address(host).is_multicast:
            self._socket.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
            if interface is not None:
                self._socket.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                                        socket.inet_aton(interface))  # fmt: skip
        self._pending = bytearray()
        self.lost_datagrams = 0  # refused by the host (nobody listening, a full buffer)

    def write(self, data) -> int:
        self._pending += data
        while len(self._pending) >= self.DATAGRAM:
            self._send(self._pending[: self.DATAGRAM])
            del self._pending[: self.DATAGRAM]
        return len(data)

    def flush(self) -> None:
        if self._pending:
            self._send(self._pending)
            self._pending.clear()

    def close(self) -> None:
        self.flush()
        self._socket.close()

    def _send(self, datagram) -> None:
        try:
            self._socket.sendto(bytes(datagram), self.address)
        except OSError:  # nobody listening (ICMP refused) or a full buffer: UDP's way
            self.lost_datagrams += 1


class TsWriter:
    """H.264 and KLV into an MPEG-TS file or a `UdpSink`; one `write` per frame."""

    def __init__(self, target: str | UdpSink, width: int, height: int, fps: float):
        self._sink = target if isinstance(target, UdpSink) else None
        self._container = av.open(target, "w", format="mpegts")
        rate = Fraction(fps).limit_denominator(1000)
        self._video = self._container.add_stream("libx264", rate=rate)
        self._video.width, self._video.height, self._video.pix_fmt = width, height, "yuv420p"
        self._video.time_base = TS_CLOCK
        self._video.codec_context.gop_size = max(1, round(fps))
        self._video.options = {"preset": "ultrafast", "tune": "zerolatency", "crf": "23"}
        self._klv = self._container.add_data_stream("klv")
        self._fps = fps
        self._index = 0

    def write(self, image: np.ndarray, klv: bytes) -> None:
        pts = round(self._index / self._fps / TS_CLOCK)
        packet = av.Packet(klv)
        packet.stream, packet.time_base, packet.pts, packet.dts = self._klv, TS_CLOCK, pts, pts
        self._container.mux(packet)
        frame = av.VideoFrame.from_ndarray(_bgr(image), format="bgr24")
        frame.pts, frame.time_base = pts, TS_CLOCK
        for encoded in self._video.encode(frame):
            self._container.mux(encoded)
        self._index += 1

    def close(self) -> None:
        for encoded in self._video.encode(None):
            self._container.mux(encoded)
        self._container.close()
        if self._sink is not None:
            self._sink.close()


def _bgr(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(image[:, :, None], 3, axis=2) if image.ndim == 2
                                else image)  # fmt: skip


def write_file(renderer: CameraRenderer, path: str | Path, start_s: float = 0.0,
               duration_s: float | None = None) -> int:  # fmt: skip
    """Frames from start_s to `path` (.ts) and their truth to `path`.frames.jsonl."""
    spec = renderer.spec
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    writer = TsWriter(str(path), spec.width, spec.height, spec.fps)
    count = 0
    try:
        with open(f"{path}.frames.jsonl", "w") as sidecar:
            for frame in renderer.frames(start_s, duration_s):
                writer.write(frame.image, encode_packet(sensor_state(renderer, frame)))
                sidecar.write(json.dumps(sidecar_record(count, frame)) + "\n")
                count += 1
    finally:
        writer.close()
    return count


def stream_udp(renderer: CameraRenderer, sink: UdpSink, start_s: float = 0.0,
               duration_s: float | None = None,
               stop: threading.Event | None = None) -> int:  # fmt: skip
    """Frames sent as each one's UTC time comes round on the wall clock (frames whose
    time has passed are skipped): the number sent."""
    spec = renderer.spec
    stop = stop or threading.Event()
    times = frame_times(renderer.config, spec, start_s, duration_s)
    writer = TsWriter(sink, spec.width, spec.height, spec.fps)
    sent = 0
    try:
        for t in times:
            utc = renderer.config.start_utc + float(t)
            if time.time() > utc + 1.0 / spec.fps:
                continue  # behind: skip to the frame real time has reached
            if stop.wait(max(0.0, utc - time.time())):
                break
            frame = renderer.render(float(t))
            writer.write(frame.image, encode_packet(sensor_state(renderer, frame)))
            sent += 1
    finally:
        writer.close()
    return sent


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sim_hw klv-video", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="configs/scenarios/NAME.toml")
    p.add_argument("--sysid", type=int, required=True, help="the drone whose camera to send")
    output = p.add_mutually_exclusive_group(required=True)
    output.add_argument("--out", help="an MPEG-TS file (+ .frames.jsonl)")
    output.add_argument("--udp", type=_endpoint, metavar="HOST:PORT",
                        help="live MPEG-TS over UDP (a multicast group works too)")
    p.add_argument("--ttl", type=int, default=1,
                   help="multicast time to live (0: this host only, never on a wire)")
    p.add_argument("--interface", help="multicast: the address of the interface to send on")
    p.add_argument("--mode", choices=["eo", "thermal"], default="eo")
    p.add_argument("--start", type=float, default=0.0, help="scenario s of the first frame")
    p.add_argument("--epoch", type=epoch_arg, help="UTC s (or 'now') of scenario time 0")
    p.add_argument("--duration", type=float, help="s (default: to the scenario's end)")
    p.add_argument("--fps", type=float, default=25.0)
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=720)
    p.add_argument("--hfov", type=float, default=60.0, help="deg")
    p.add_argument("--lighting", choices=["scene", "day", "night"], default="scene")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    try:
        config = load_config(args.config)
        if args.epoch is not None:
            config = config.starting_at(args.epoch)
        spec = CameraSpec(width=args.width, height=args.height, hfov_deg=args.hfov,
                          mode=args.mode, fps=args.fps, lighting=args.lighting)  # fmt: skip
        renderer = CameraRenderer(config, spec, DronePoses(config, args.sysid), args.seed)
        frame_times(config, spec, args.start, args.duration)
    except (OSError, ValueError) as error:
        print(f"python -m sim_hw klv-video: {error}", file=sys.stderr)
        return 2
    try:
        if args.out:
            count = write_file(renderer, args.out, args.start, args.duration)
            print(f"wrote {count} frames to {args.out} and {args.out}.frames.jsonl")
        else:
            host, port = args.udp
            print(f"sending udp://{host}:{port} (Ctrl-C to stop)", flush=True)
            sink = UdpSink(host, port, args.ttl, args.interface)
            count = stream_udp(renderer, sink, args.start, args.duration)
            print(f"sent {count} frames; {sink.lost_datagrams} datagrams refused by the host")
    except KeyboardInterrupt:
        return 0
    except OSError as error:
        print(f"python -m sim_hw klv-video: {error}", file=sys.stderr)
        return 1
    return 0
