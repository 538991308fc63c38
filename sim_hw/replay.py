"""Replay a .tlog as a live vehicle: its own frames, with the recorded timing.

Frames are sent as recorded, byte for byte, so that a replay at 100x of a long
flight costs little more than the socket writes. The ground station's own
traffic in the log (system id 255, or any system whose heartbeat says it is
a GCS) is left out: the replay plays the vehicle, not both ends.
"""

from __future__ import annotations

import argparse
import logging
import select
import socket
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np
from pymavlink import mavutil
from pymavlink.dialects.v20 import common as mavlink

from sim_hw.autopilot import AutopilotResponder
from sim_hw.faults import FaultCounters, apply_faults, load_faults
from sim_hw.rewrite import decode, with_fields
from sim_hw.signing import FrameSigner, read_key
from sim_hw.tlog import Frame, ReadCounters, read_tlog

log = logging.getLogger(__name__)

GCS_SYSID = 255
POLL_S = 0.005  # how often a waiting replay looks for ground-station requests
STREAM_STALL_S = 1.0  # longest wait for room in a TCP send buffer before trying again
HEARTBEAT_ID = mavlink.MAVLINK_MSG_ID_HEARTBEAT
SYSTEM_TIME_ID = mavlink.MAVLINK_MSG_ID_SYSTEM_TIME
GPS_RAW_INT_ID = mavlink.MAVLINK_MSG_ID_GPS_RAW_INT
UTC_USEC_FLOOR = 10**15  # microseconds: 2001-09-09; a smaller time is time since boot


@dataclass
class ReplayStats:
    read: ReadCounters = field(default_factory=ReadCounters)
    sent: int = 0
    ground_station_frames: int = 0
    not_restamped: int = 0  # frames whose time could not be decoded, sent as recorded
    skipped_past: int = 0  # wall-clock replay: frames whose time had passed before the start
    faults: FaultCounters = field(default_factory=FaultCounters)
    lateness_s: list[float] = field(default_factory=list)  # wall time after the due time

    def lateness_percentiles(self) -> dict[str, float]:
        if not self.lateness_s:
            return {}
        values = np.asarray(self.lateness_s) * 1e3
        return {f"p{q}_ms": float(np.percentile(values, q)) for q in (50, 90, 99, 100)}


def vehicle_frames(frames: list[Frame]) -> tuple[list[Frame], int]:
    """The frames not sent by a ground station, and how many were dropped."""
    ground_stations = {GCS_SYSID}
    for frame in frames:
        if frame.msgid == HEARTBEAT_ID and _heartbeat_type(frame) == mavlink.MAV_TYPE_GCS:
            ground_stations.add(frame.sysid)
    kept = [f for f in frames if f.sysid not in ground_stations]
    return kept, len(frames) - len(kept)


def _heartbeat_type(frame: Frame) -> int:
    # HEARTBEAT's payload starts with custom_mode (uint32), then type (uint8).
    header = 10 if frame.version == 2 else 6
    payload = frame.raw[header : header + frame.raw[1]]
    return payload[4] if len(payload) > 4 else -1


def load(path: str, stats: ReplayStats) -> list[Frame]:
    frames = list(read_tlog(path, stats.read))
    kept, dropped = vehicle_frames(frames)
    stats.ground_station_frames = dropped
    if not kept:
        raise ValueError(
            f"{path}: no usable vehicle frames (read {stats.read.frames} frames, "
            f"skipped {stats.read.skipped_bytes} bytes, {stats.read.bad_crc} bad checksums)"
        )
    return kept


def replay(frames: list[Frame], connection, speed: float, stats: ReplayStats,
           loop: bool = False, stop: threading.Event | None = None,
           responder: AutopilotResponder | None = None,
           signer: FrameSigner | None = None, restamp: bool = False,
           wall_clock_lead_s: float | None = None) -> ReplayStats:  # fmt: skip
    """Send `frames` through `connection` at `speed` x.

    `connection` needs write(bytes); with a `responder` it also needs
    recv_msg() (a pymavlink connection), and requests are answered while the
    replay waits for the next frame's time. With a `signer` every frame goes
    out signed (MAVLink 2). With `restamp` the UTC times the vehicle reports
    are moved so that each pass of the log starts now. With `wall_clock_lead_s`
    each frame goes out when the wall clock reaches the UTC the log records for it
    (a scenario written for the present with `--epoch`); frames older than the lead
    are skipped and the rest of the lead goes out at once, so the receiver starts
    with a little history.
    """
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    stop = stop or threading.Event()
    while not stop.is_set():
        first = frames[0].time
        started = time.monotonic()
        shift = time.time() - first if restamp else 0.0
        pass_frames = frames
        if wall_clock_lead_s is not None:
            first, speed = time.time(), 1.0
            pass_frames = [f for f in frames if f.time >= first - wall_clock_lead_s]
            stats.skipped_past += len(frames) - len(pass_frames)
        for frame in pass_frames:
            due = started + (frame.time - first) / speed
            if not _wait_until(due, connection, responder, signer, stop):
                return stats
            stats.lateness_s.append(max(0.0, time.monotonic() - due))
            raw = restamped(frame, shift, stats).raw if shift else frame.raw
            send(connection, raw if signer is None else signer.sign(raw))
            stats.sent += 1
        if not loop:
            break
    return stats


def restamped(frame: Frame, shift_s: float, stats: ReplayStats) -> Frame:
    """The frame with the UTC it reports moved by `shift_s` (SYSTEM_TIME, and GPS_RAW_INT
    where its time_usec is UTC rather than time since boot)."""
    if frame.msgid not in (SYSTEM_TIME_ID, GPS_RAW_INT_ID):
        return frame
    message = decode(frame)
    if message is None:
        stats.not_restamped += 1
        return frame
    field = "time_unix_usec" if frame.msgid == SYSTEM_TIME_ID else "time_usec"
    recorded = getattr(message, field)
    if recorded < UTC_USEC_FLOOR:
        return frame  # time since boot (ArduPilot's GPS_RAW_INT) or no time: nothing to move
    return with_fields(frame, **{field: recorded + round(shift_s * 1e6)})


def _wait_until(due, connection, responder, signer, stop) -> bool:
    """Serve requests until `due`; False when asked to stop."""
    while True:
        if responder is not None:
            _serve(connection, responder, signer)
        wait = due - time.monotonic()
        if wait <= 0:
            return True
        if stop.wait(min(wait, POLL_S) if responder is not None else wait):
            return False


def _serve(connection, responder: AutopilotResponder, signer: FrameSigner | None) -> None:
    while True:
        try:
            message = connection.recv_msg()
        except Exception as error:  # a malformed request must not end the replay
            responder.counters.undecodable += 1
            log.warning("undecodable request skipped error=%s", error)
            continue
        if message is None:
            return
        for reply in responder.answer(message):
            send(connection, reply if signer is None else signer.sign(reply))


def send(connection, raw: bytes) -> None:
    """Write one whole frame. pymavlink's TCP connections use non-blocking sockets and
    drop what a full send buffer does not take, which on a stream cuts a frame in two
    and garbles what follows; so on TCP wait for room and send all of it."""
    sock = getattr(connection, "port", None)
    if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_STREAM:
        connection.write(raw)
        return
    remaining = memoryview(raw)
    while remaining:
        select.select([], [sock], [], STREAM_STALL_S)
        try:
            remaining = remaining[sock.send(remaining) :]
        except BlockingIOError:
            continue
        except OSError:
            connection.write(raw)  # the peer is gone: pymavlink goes back to listening
            return


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim_hw replay")
    parser.add_argument("tlog")
    parser.add_argument("--to", required=True, help="udpout:127.0.0.1:14550, tcpin:0.0.0.0:5760")
    parser.add_argument("--speed", type=float, default=1.0, help="1 = real time")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--signing-key-file", help="sign every frame (32 bytes or 64 hex digits)")
    parser.add_argument(
        "--restamp",
        action="store_true",
        help="move the UTC the vehicle reports so that each pass starts now",
    )
    parser.add_argument("--faults", help="a fault plan, TOML (see configs/faults/)")
    parser.add_argument("--wall-clock", action="store_true",
                        help="send each frame when the wall clock reaches the time the log "
                             "records (a scenario written with --epoch); earlier ones skipped")
    parser.add_argument("--lead", type=float, default=5.0,
                        help="with --wall-clock: s of the past sent at once on start")
    args = parser.parse_args(argv)
    if args.wall_clock and (args.restamp or args.loop or args.speed != 1.0):
        parser.error("--wall-clock plays at the recorded times: no --restamp, --loop or --speed")

    stats = ReplayStats()
    try:
        frames = load(args.tlog, stats)
        if args.faults:
            frames = apply_faults(frames, load_faults(args.faults), stats.faults)
    except (OSError, ValueError) as error:  # pydantic's ValidationError is a ValueError
        print(f"python -m sim_hw replay: {error}", file=sys.stderr)
        return 1
    connection = mavutil.mavlink_connection(args.to, dialect="ardupilotmega")
    responder = AutopilotResponder.for_frames(frames)
    signer = FrameSigner(read_key(args.signing_key_file)) if args.signing_key_file else None
    try:
        replay(frames, connection, args.speed, stats, loop=args.loop, responder=responder,
               signer=signer, restamp=args.restamp,
               wall_clock_lead_s=args.lead if args.wall_clock else None)  # fmt: skip
    except KeyboardInterrupt:
        pass  # Ctrl-C ends the replay; the summary below still prints
    finally:
        connection.close()
    print(f"sent {stats.sent} frames; left out {stats.ground_station_frames} ground-station "
          f"frames; read {stats.read}; requests {responder.counters}; "
          f"faults {stats.faults}; lateness {stats.lateness_percentiles()}")  # fmt: skip
    return 0
