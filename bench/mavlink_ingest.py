"""MAVLink driver ingest benchmark: `python -m bench mavlink_ingest [--json] [--quick]`.

Three figures, the first two as ratios to pymavlink's own `mavutil` loop
measured in the same run:

1. Reading a tlog: messages per second of `MavlinkReceiver.read_tlog` (frame,
   check, decode, and update every vehicle's state) and of mavutil reading the
   same file with `recv_match()` until the end (frame, check, decode). Best of
   three each. The real 23-minute ArduCopter flight, or a generated one where
   ../shared/data is absent.
2. Over UDP: a sender process offers the flight's vehicle frames to loopback
   at 150,000 a second, more than either reader keeps up with, so what each
   takes in per second is its ingest rate (the socket drops the rest). The
   driver runs as in the node (its own thread, `MavlinkDriver`); mavutil reads
   with `recv_match(blocking=True)`. Best of three each, alternating.
3. A fleet: 10 drones, each its own socket and system id, each sending 50
   messages a second for 20 s to one driver over loopback; messages received
   against messages sent (the target is none dropped) and the driver's own
   sequence-gap count.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import socket
import sys
import tempfile
import time
from pathlib import Path

from pymavlink import mavutil
from pymavlink.dialects.v20 import ardupilotmega as dialect

from bench import results
from edge.drivers.framing import tlog_entries
from edge.drivers.mavlink import (
    RECEIVE_BUFFER,
    MavlinkConfig,
    MavlinkDriver,
    MavlinkReceiver,
)
from sim_hw.__main__ import main as sim_main
from stack.process import free_udp_port

ROOT = Path(__file__).resolve().parents[1]
REAL_FLIGHT = ROOT.parent / "shared" / "data" / "flights" / "arducopter-canberra-2015.tlog"
GCS_SYSID = 255
BLAST_RATE = 150_000  # frames/s offered to a UDP reader
QUIET_S = 0.5  # a reader that hears nothing for this long has everything
# Senders run in their own processes, started fresh: forking a process whose
# driver thread may hold a lock would be asking for a deadlock.
PROCESSES = multiprocessing.get_context("spawn")


def flight(workdir: Path) -> tuple[Path, str]:
    if REAL_FLIGHT.exists():
        return REAL_FLIGHT, "arducopter-canberra-2015.tlog (real, 23 min)"
    path = workdir / "generated.tlog"
    sim_main(["generate", "--out", str(path), "--duration", "1380", "--plan", "survey"])
    return path, "generated multirotor survey, 23 min (../shared/data absent)"




# --- 1. tlog --------------------------------------------------------------------------


def tlog_rates(path: Path, repeats: int) -> dict:
    ours, theirs = [], []
    for _ in range(repeats):
        receiver = MavlinkReceiver(MavlinkConfig(str(path)))
        started = time.perf_counter()
        receiver.read_tlog(path)
        messages = receiver.counters.frames  # decoded, as mavutil's (ground station's too)
        ours.append(messages / (time.perf_counter() - started))
        log = mavutil.mavlink_connection(str(path))
        started = time.perf_counter()
        reference = 0
        while (msg := log.recv_match()) is not None:
            reference += msg.get_type() != "BAD_DATA"
        theirs.append(reference / (time.perf_counter() - started))
        log.close()
    return {"messages": messages, "mavutil_messages": reference,
            "driver_per_s": max(ours), "mavutil_per_s": max(theirs),
            "ratio": max(ours) / max(theirs)}  # fmt: skip


# --- 2. UDP at saturation -------------------------------------------------------------


def _blast(frames: list[bytes], port: int, seconds: float, sent) -> None:
    """Send at BLAST_RATE, above what either reader takes, in 5 ms batches.

    A sender flat out would take a whole core of the two from the reader.
    """
    batch = int(BLAST_RATE * 0.005)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.connect(("127.0.0.1", port))
        count, started = 0, time.monotonic()
        while time.monotonic() < started + seconds:
            for k in range(count, count + batch):
                sock.send(frames[k % len(frames)])
            count += batch
            time.sleep(max(0.0, started + count / BLAST_RATE - time.monotonic()))
        sent.value = count


def _start_blast(frames, port, seconds):
    sent = PROCESSES.Value("q", 0)
    process = PROCESSES.Process(target=_blast, args=(frames, port, seconds, sent))
    process.start()
    return process, sent


class _Span:
    """First and last arrival and the count, from a listener."""

    def __init__(self):
        self.first = self.last = None
        self.count = 0

    def __call__(self, _msg, arrival: float) -> None:
        if self.first is None:
            self.first = arrival
        self.last = arrival
        self.count += 1

    def rate(self) -> float:
        return (self.count - 1) / (self.last - self.first) if self.count > 1 else 0.0


def udp_driver_rate(frames: list[bytes], seconds: float) -> dict:
    port = free_udp_port()
    driver = MavlinkDriver(MavlinkConfig(f"udpin:127.0.0.1:{port}", heartbeat_period=0)).start()
    span = _Span()
    driver.receiver.listeners.append(span)
    while not driver.connected:
        time.sleep(0.01)
    process, sent = _start_blast(frames, port, seconds)
    process.join()
    _wait_quiet(lambda: span.count)
    driver.stop()
    return {"sent": sent.value, "received": span.count, "per_s": span.rate()}


def udp_mavutil_rate(frames: list[bytes], seconds: float) -> dict:
    port = free_udp_port()
    connection = mavutil.mavlink_connection(f"udpin:127.0.0.1:{port}")
    # The same socket buffer as the driver's, so that both queue alike.
    connection.port.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
    process, sent = _start_blast(frames, port, seconds)
    span = _Span()
    while True:
        msg = connection.recv_match(blocking=True, timeout=QUIET_S)
        if msg is None:
            if not process.is_alive():
                break
            continue
        if msg.get_type() != "BAD_DATA":
            span(msg, time.time())
    process.join()
    connection.close()
    return {"sent": sent.value, "received": span.count, "per_s": span.rate()}


def _wait_quiet(count) -> None:
    last = -1
    while count() != last:
        last = count()
        time.sleep(QUIET_S)


# --- 3. a fleet ---------------------------------------------------------------------------


def _fly_fleet(port: int, drones: int, rate_hz: float, seconds: float, sent) -> None:
    """Each drone: its own socket and system id, `rate_hz` messages a second, paced."""
    links = [dialect.MAVLink(None, srcSystem=10 + k, srcComponent=1) for k in range(drones)]
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(drones)]
    for sock in sockets:
        sock.connect(("127.0.0.1", port))
    started = time.monotonic()
    ticks = int(seconds * rate_hz)
    for tick in range(ticks):
        time.sleep(max(0.0, started + tick / rate_hz - time.monotonic()))
        boot_ms = int(tick * 1000 / rate_hz)
        for link, sock in zip(links, sockets, strict=True):
            sock.send(_fleet_message(tick, boot_ms, link, rate_hz))
            link.seq = (link.seq + 1) % 256
    sent.value = ticks * drones
    for sock in sockets:
        sock.close()


def _fleet_message(tick: int, boot_ms: int, link, rate_hz: float) -> bytes:
    if tick % int(rate_hz) == 0:
        message = dialect.MAVLink_heartbeat_message(
            dialect.MAV_TYPE_QUADROTOR, dialect.MAV_AUTOPILOT_PX4, 0, 0, 4, 3
        )
    elif tick % int(rate_hz) == 1:
        message = dialect.MAVLink_system_time_message(int(time.time() * 1e6), boot_ms)
    elif tick % 2:
        message = dialect.MAVLink_attitude_message(boot_ms, 0.01, 0.02, 1.0, 0.0, 0.0, 0.0)
    else:
        message = dialect.MAVLink_global_position_int_message(
            boot_ms, 226_940_000 + tick, 141_800_000, 820_000, 120_000, 500, 200, 0, 9000
        )
    return bytes(message.pack(link))


def fleet(drones: int, rate_hz: float, seconds: float) -> dict:
    port = free_udp_port()
    driver = MavlinkDriver(MavlinkConfig(f"udpin:127.0.0.1:{port}")).start()
    while not driver.connected:
        time.sleep(0.01)
    sent = PROCESSES.Value("q", 0)
    process = PROCESSES.Process(target=_fly_fleet,
                                      args=(port, drones, rate_hz, seconds, sent))  # fmt: skip
    process.start()
    process.join()
    _wait_quiet(lambda: driver.receiver.counters.messages)
    status = driver.status()
    driver.stop()
    received = status.counters.messages
    return {"drones": drones, "rate_hz": rate_hz, "seconds": seconds, "sent": sent.value,
            "received": received, "dropped": sent.value - received,
            "sequence_gaps": status.counters.lost, "vehicles": len(status.vehicles)}  # fmt: skip


# --- report -------------------------------------------------------------------------------


def vehicle_frames(path: Path) -> list[bytes]:
    """The flight's vehicle frames, as a drone would send them."""
    return [frame for _, frame in tlog_entries(path.read_bytes())
            if len(frame) > 6 and _sysid(frame) != GCS_SYSID]  # fmt: skip


def _sysid(frame: bytes) -> int:
    return frame[5] if frame[0] == dialect.PROTOCOL_MARKER_V2 else frame[3]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench mavlink_ingest", description=__doc__)
    results.add_json_option(parser, "mavlink_ingest")
    parser.add_argument("--quick", action="store_true", help="one repeat, a 5 s fleet")
    args = parser.parse_args(argv)
    # The sender loops the flight, so the driver sees the vehicle "reboot" at
    # every pass and says so; that is the input, not news.
    logging.getLogger("edge.drivers").setLevel(logging.ERROR)
    report = results.header("mavlink_ingest", argv)
    with tempfile.TemporaryDirectory() as workdir:
        path, report["flight"] = flight(Path(workdir))
        print(f"reading {report['flight']} ...", file=sys.stderr)
        report["tlog"] = tlog_rates(path, 1 if args.quick else 3)
        frames = vehicle_frames(path)
    blast_s = 2.0 if args.quick else 4.0
    print("UDP at saturation ...", file=sys.stderr)
    runs = [(udp_driver_rate(frames, blast_s), udp_mavutil_rate(frames, blast_s))
            for _ in range(1 if args.quick else 3)]  # fmt: skip
    driver = max((d for d, _ in runs), key=lambda r: r["per_s"])
    reference = max((m for _, m in runs), key=lambda r: r["per_s"])
    report["udp"] = {"offered_per_s": BLAST_RATE, "driver": driver, "mavutil": reference,
                     "ratio": driver["per_s"] / reference["per_s"]}  # fmt: skip
    print("fleet ...", file=sys.stderr)
    report["fleet"] = fleet(10, 50.0, 5.0 if args.quick else 20.0)
    results.publish(format_report(report), report, "mavlink_ingest" if args.json else None)
    return 0


def format_report(report: dict) -> str:
    tlog, udp, fleet_run = report["tlog"], report["udp"], report["fleet"]
    return "\n".join([
        f"flight: {report['flight']}",
        "",
        "ingest                     messages/s   ratio to mavutil",
        f"  tlog   driver         {tlog['driver_per_s']:>12,.0f}   {tlog['ratio']:.2f}x",
        f"  tlog   mavutil        {tlog['mavutil_per_s']:>12,.0f}   1.00x",
        f"  UDP    driver         {udp['driver']['per_s']:>12,.0f}   {udp['ratio']:.2f}x",
        f"  UDP    mavutil        {udp['mavutil']['per_s']:>12,.0f}   1.00x",
        "",
        f"fleet: {fleet_run['drones']} drones x {fleet_run['rate_hz']:.0f} Hz for "
        f"{fleet_run['seconds']:.0f} s: sent {fleet_run['sent']}, received "
        f"{fleet_run['received']}, dropped {fleet_run['dropped']}, sequence gaps "
        f"{fleet_run['sequence_gaps']}, vehicles {fleet_run['vehicles']}",
    ])  # fmt: skip
