"""Simulator benchmark: `python -m bench sim_replay [--json] [--quick]`.

Three figures, each against a reference measured in the same run:

1. Reading a tlog: frames per second of `sim_hw.tlog.read_tlog` and of
   pymavlink's `mavutil` reader (`recv_match()` until the end) over the same
   file, best of three each. Note the two do different work: ours checks and
   frames every message without decoding its fields; mavutil decodes them all.
2. Replay speed: the real 23-minute ArduCopter flight (or, where
   ../shared/data is absent, a generated 23-minute flight) replayed over UDP
   loopback at increasing `--speed` to a receiver in another process.
   Lateness is wall time past each frame's due time; a speed keeps up when
   every frame arrives and the 99th percentile of lateness is under 5 ms.
3. Flight fidelity: a generated patrol flight (multirotor, then fixed-wing)
   read back by pymavlink, and replayed at 10x to MAVSDK over UDP: how far
   what each reports lies from the model's truth.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from pymavlink import mavutil
from pyproj import Geod

from bench import results
from sim_hw.__main__ import main as sim_main
from sim_hw.replay import ReplayStats, load, replay
from sim_hw.tlog import read_tlog

ROOT = Path(__file__).resolve().parents[1]
REAL_FLIGHT = ROOT.parent / "shared" / "data" / "flights" / "arducopter-canberra-2015.tlog"
ON_TIME_P99_MS = 5.0
SPEEDS = (100, 300, 1000, 3000, 10000)
GEOD = Geod(ellps="WGS84")


def flight_for_replay(workdir: Path) -> tuple[Path, str]:
    if REAL_FLIGHT.exists():
        return REAL_FLIGHT, "arducopter-canberra-2015.tlog (real, 23 min)"
    path = workdir / "generated-23min.tlog"
    sim_main(["generate", "--out", str(path), "--duration", "1380", "--plan", "survey",
              "--start", "1767225600"])  # fmt: skip
    return path, "generated multirotor survey, 23 min (../shared/data absent)"


# --- 1. reading -----------------------------------------------------------------------


def read_rates(path: Path, repeats: int) -> dict:
    ours, theirs = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        frames = sum(1 for _ in read_tlog(path))
        ours.append(frames / (time.perf_counter() - started))
        started = time.perf_counter()
        log = mavutil.mavlink_connection(str(path))
        messages = 0
        while log.recv_match() is not None:
            messages += 1
        theirs.append(messages / (time.perf_counter() - started))
        log.close()
    return {
        "frames": frames, "mavutil_messages": messages,
        "ours_per_s": max(ours), "mavutil_per_s": max(theirs),
        "ratio": max(ours) / max(theirs),
    }  # fmt: skip


# --- 2. replay speed --------------------------------------------------------------------


def _count_datagrams(port: int, ready, result) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024 * 1024)
        sock.bind(("127.0.0.1", port))
        sock.settimeout(2.0)
        ready.set()
        count = 0
        while True:
            try:
                sock.recv(65535)
            except TimeoutError:
                break
            count += 1
        result.put(count)


def replay_at(frames, speed: float) -> dict:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    context = multiprocessing.get_context("spawn")
    ready, result = context.Event(), context.Queue()
    receiver = context.Process(target=_count_datagrams, args=(port, ready, result))
    receiver.start()
    ready.wait(30)
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sender.connect(("127.0.0.1", port))

    class Link:
        def write(self, data):
            sender.send(data)

    stats = ReplayStats()
    started = time.perf_counter()
    replay(frames, Link(), speed, stats)
    elapsed = time.perf_counter() - started
    received = result.get(timeout=60)
    receiver.join()
    sender.close()
    lateness = stats.lateness_percentiles()
    return {
        "speed": speed, "sent": stats.sent, "received": received, "wall_s": elapsed,
        "log_s": frames[-1].time - frames[0].time, **lateness,
        "on_time": received == stats.sent and lateness["p99_ms"] < ON_TIME_P99_MS,
    }  # fmt: skip


# --- 3. fidelity ------------------------------------------------------------------------


def generated_with_truth(workdir: Path, airframe: str, duration: float) -> tuple[Path, dict]:
    path = workdir / f"{airframe}.tlog"
    sim_main(["generate", "--out", str(path), "--duration", str(duration), "--airframe",
              airframe, "--plan", "patrol", "--start", "1767225600"])  # fmt: skip
    truth = {}
    with open(f"{path}.truth.jsonl") as rows:
        for line in rows:
            row = json.loads(line)
            truth[round(row["t"], 1)] = row
    return path, truth


def pymavlink_fidelity(path: Path, truth: dict) -> dict:
    """GLOBAL_POSITION_INT and ATTITUDE as pymavlink decodes them, against the truth."""
    log = mavutil.mavlink_connection(str(path))
    horizontal, vertical, attitude = [], [], []
    boot_offset = None
    while (msg := log.recv_match(type=["SYSTEM_TIME", "GLOBAL_POSITION_INT", "ATTITUDE"])):
        if msg.get_type() == "SYSTEM_TIME":
            boot_offset = msg.time_unix_usec / 1e6 - msg.time_boot_ms / 1e3
            continue
        if boot_offset is None:
            continue
        row = truth.get(round(boot_offset + msg.time_boot_ms / 1e3, 1))
        if row is None:
            continue
        if msg.get_type() == "GLOBAL_POSITION_INT":
            *_, distance = GEOD.inv(row["lon"], row["lat"], msg.lon / 1e7, msg.lat / 1e7)
            horizontal.append(distance)
            vertical.append(abs(msg.alt / 1e3 - row["alt"]))
        else:
            yaw_error = (msg.yaw - row["yaw"] + np.pi) % (2 * np.pi) - np.pi
            attitude.append(np.degrees(max(abs(msg.roll - row["roll"]),
                                           abs(msg.pitch - row["pitch"]), abs(yaw_error))))
    log.close()
    return {
        "positions": len(horizontal), "horizontal_max_m": max(horizontal),
        "vertical_max_m": max(vertical), "attitudes": len(attitude),
        "attitude_max_deg": max(attitude),
    }  # fmt: skip


def mavsdk_fidelity(path: Path, truth: dict, seconds: float = 6.0) -> dict | None:
    """Positions MAVSDK reports from a 10x replay: distance to the nearest true position."""
    try:
        import mavsdk
        from mavsdk.plugins.telemetry import Telemetry
    except ImportError:
        return None
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = mavsdk.Configuration.create_with_component_type(mavsdk.ComponentType.GROUND_STATION)
    ground_station = mavsdk.Mavsdk(config)
    ground_station.add_any_connection(f"udpin://127.0.0.1:{port}")
    connection = mavutil.mavlink_connection(f"udpout:127.0.0.1:{port}", dialect="ardupilotmega")
    stop = threading.Event()
    stats = ReplayStats()
    sender = threading.Thread(target=replay, args=(load(str(path), stats), connection, 10.0,
                                                   stats), kwargs={"stop": stop})  # fmt: skip
    sender.start()
    received = []
    try:
        vehicle = ground_station.first_autopilot(15.0)
        if vehicle is None:
            return {"error": "MAVSDK found no autopilot"}
        Telemetry(vehicle).subscribe_position(lambda position, _: received.append(position))
        time.sleep(seconds)
    finally:
        stop.set()
        sender.join()
        connection.close()
        ground_station.destroy()
    true_lat = np.array([row["lat"] for row in truth.values()])
    true_lon = np.array([row["lon"] for row in truth.values()])
    distances = []
    for position in list(received):
        *_, d = GEOD.inv(true_lon, true_lat, np.full_like(true_lon, position.longitude_deg),
                         np.full_like(true_lat, position.latitude_deg))  # fmt: skip
        distances.append(float(np.min(d)))
    return {"positions": len(distances), "nearest_truth_max_m": max(distances, default=None)}


# --- report ----------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench sim_replay", description=__doc__)
    results.add_json_option(parser, "sim_replay")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and speeds")
    args = parser.parse_args(argv)
    report = results.header("sim_replay", argv)
    with tempfile.TemporaryDirectory() as workdir:
        workdir = Path(workdir)
        flight, described = flight_for_replay(workdir)
        report["flight"] = described
        print(f"reading {described} ...", file=sys.stderr)
        report["read"] = read_rates(flight, 1 if args.quick else 3)
        frames = load(str(flight), ReplayStats())
        report["replay"] = []
        for speed in SPEEDS[:3] if args.quick else SPEEDS:
            print(f"replaying at {speed}x ...", file=sys.stderr)
            report["replay"].append(replay_at(frames, speed))
        keeping_up = [r["speed"] for r in report["replay"] if r["on_time"]]
        report["highest_on_time_speed"] = max(keeping_up, default=None)
        report["fidelity"] = {}
        for airframe in ("multirotor", "fixed_wing"):
            print(f"fidelity of a {airframe} flight ...", file=sys.stderr)
            path, truth = generated_with_truth(workdir, airframe, 300.0)
            report["fidelity"][airframe] = {"pymavlink": pymavlink_fidelity(path, truth),
                                            "mavsdk": mavsdk_fidelity(path, truth)}  # fmt: skip
    results.publish(format_report(report), report, "sim_replay" if args.json else None)
    return 0


def format_report(report: dict) -> str:
    read = report["read"]
    lines = [
        f"flight: {report['flight']}",
        "",
        "reading a tlog         frames/s    ratio",
        f"  sim_hw read_tlog   {read['ours_per_s']:>10,.0f}   {read['ratio']:.2f}x",
        f"  pymavlink mavutil  {read['mavutil_per_s']:>10,.0f}   1.00x",
        "",
        "replay over UDP   sent     received  wall s   p50 ms  p90 ms  p99 ms  max ms  on time",
    ]
    for r in report["replay"]:
        lines.append(
            f"  {r['speed']:>6}x  {r['sent']:>8}  {r['received']:>8}  {r['wall_s']:>6.2f}  "
            f"{r['p50_ms']:>7.2f} {r['p90_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['p100_ms']:>7.2f}  "
            f"{'yes' if r['on_time'] else 'no'}"
        )
    lines += [f"highest speed on time: {report['highest_on_time_speed']}x", "",
              "fidelity against the model's truth"]  # fmt: skip
    for airframe, result in report["fidelity"].items():
        p = result["pymavlink"]
        lines.append(
            f"  {airframe:<11} pymavlink: {p['positions']} positions, horizontal max "
            f"{p['horizontal_max_m'] * 100:.2f} cm, vertical max {p['vertical_max_m'] * 1000:.1f}"
            f" mm; {p['attitudes']} attitudes, max {p['attitude_max_deg']:.4f} deg"
        )
        m = result["mavsdk"]
        if m is None:
            lines.append("  " + " " * 11 + " MAVSDK: not installed")
        elif "error" in m:
            lines.append(f"  {'':<11} MAVSDK: {m['error']}")
        else:
            lines.append(f"  {'':<11} MAVSDK: {m['positions']} positions, nearest truth max "
                         f"{m['nearest_truth_max_m'] * 100:.2f} cm")  # fmt: skip
    return "\n".join(lines)
