"""`python -m stack demo`: the whole stack on a simulated scenario, on this machine.

    python -m stack demo                                   # the Tummo posts, until Ctrl-C
    python -m stack demo --scenario configs/scenarios/small.toml --duration 120 --headless

Starts a private mosquitto, HQ with its API, one edge node per post and the
simulator playing the scenario live (drones' telemetry over UDP, their
gimbal cameras as MJPEG), prints the operator page's address and a login
token, then a one-screen summary every few seconds: fused tracks by class,
open alerts, each post's link and backlog. Ctrl-C, SIGTERM (as `timeout` or
a service manager stops it) or the end of --duration stops every part;
nothing is left running. All files (configs,
logs, the database) stay in --folder to read afterwards.
"""

from __future__ import annotations

import argparse
import collections
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hq.broker import free_tcp_port
from hq.store.sqlite import SqliteStore
from stack.deployment import Deployment, StackOptions
from wire.stopping import stop_on_sigterm_as_on_ctrl_c

ROOT = Path(__file__).resolve().parents[1]


def summary(store: SqliteStore, epoch: float, started: float) -> str:
    tracks = [t for t in store.current_tracks() if t.status != "ended"]
    by_class = collections.Counter(str(t.target_class) for t in tracks)
    alerts = [r.alert for r in store.alerts(state="open", limit=50) if r.alert.active]
    lines = [f"scenario time {time.time() - epoch:6.0f} s   running {time.time() - started:5.0f} s",
             f"fused tracks: {len(tracks)}  " + "  ".join(f"{k} {v}" for k, v in
                                                       sorted(by_class.items()))]  # fmt: skip
    for record in store.nodes():
        status = record.status
        if status is None:
            lines.append(f"post {record.node_key}: no status yet, {record.batches} batches")
            continue
        drones = ", ".join(f"drone {d.sysid} {'ok' if d.connected else 'LOST'}"
                           f" loss {d.packet_loss:.0%}" for d in status.drones)  # fmt: skip
        lines.append(f"post {record.node_key}: {status.state}, backlog {status.outbox_depth}, "
                     f"{record.batches} batches; {drones or 'no drones'}")  # fmt: skip
    lines.append(f"open alerts: {len(alerts)}")
    for alert in sorted(alerts, key=lambda a: a.severity != "critical")[:8]:
        marker = "!!" if alert.alert_type == "distress" else "  "
        lines.append(f" {marker} {alert.severity:8} {alert.alert_type:15} {alert.message[:70]}")
    return "\n".join(lines)


def create_token(store: Path | str) -> str:
    """An operator token for the demo, made with the same admin command a directorate uses."""
    result = subprocess.run(
        [sys.executable, "-m", "hq", "token", "create", "--name", "demo-operator",
         "--role", "operator", "--store", str(store)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.splitlines()[0].strip()  # the token alone, then a line about it


def demo(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", default=str(ROOT / "configs/scenarios/tummo.toml"))
    parser.add_argument("--duration", type=float, help="s; default: until Ctrl-C")
    parser.add_argument("--skip", type=float, default=0.0, help="scenario s to start at")
    parser.add_argument("--headless", action="store_true", help="no summary screen, just logs")
    parser.add_argument("--folder", help="where configs, logs and the database go")
    parser.add_argument("--camera", default="1280x720@5", help="WIDTHxHEIGHT@FPS, thermal")
    parser.add_argument("--no-mast", action="store_true", help="no fixed camera at the first post")
    parser.add_argument("--flight", default=str(ROOT.parent / "shared/data/flights/"
                                                "arducopter-canberra-2015.tlog"),
                        help="a real flight log replayed beside the scenario, if it exists")
    args = parser.parse_args(argv)
    stop_on_sigterm_as_on_ctrl_c()
    size, _, fps = args.camera.partition("@")
    width, _, height = size.partition("x")
    folder = Path(args.folder or tempfile.mkdtemp(prefix="dunewatch-demo-"))
    api_port = free_tcp_port()
    flight = Path(args.flight) if args.flight and Path(args.flight).exists() else None
    options = StackOptions(skip_s=args.skip, camera_size=(int(width), int(height)),
                           camera_fps=float(fps or 5), api_port=api_port,
                           mast_camera=not args.no_mast, recorded_flight=flight)  # fmt: skip
    deployment = Deployment(args.scenario, folder, options)
    print(f"starting the stack in {folder} (the first start compiles kernels: a minute)")
    started = time.time()
    try:
        deployment.start()
        token = create_token(deployment.database)
        print(f"\noperator page: http://127.0.0.1:{api_port}/\nlogin token:   {token}\n"
              f"logs:          {folder}/*.log\n", flush=True)  # fmt: skip
        store = SqliteStore(deployment.database)
        try:
            while args.duration is None or time.time() - started < args.duration:
                if failed := deployment.failed():
                    print("a part stopped:\n" + "\n".join(failed))
                    return 1
                if not args.headless:
                    print("\033[2J\033[H" + summary(store, deployment.live.epoch, started),
                          flush=True)  # fmt: skip
                time.sleep(2.0)
        finally:
            store.close()
    except KeyboardInterrupt:
        print("\nstopping")
    finally:
        deployment.stop()
    print(f"stopped; everything it wrote is in {folder}")
    return 0


COMMANDS = {"demo": demo}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m stack {{{','.join(COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())
