"""`python -m bench NAME [options]`: run one benchmark; `python -m bench NAME --help` lists
its options. Each benchmark is a module with `main(argv)`, imported only when it runs."""

from __future__ import annotations

import importlib
import sys

# name -> (module, what it measures)
BENCHMARKS = {
    "tracking": ("bench.tracking.benchmark",
                 "the tracker against the clairvoyant bound, Stone Soup and filterpy"),
    "detection": ("bench.detection.benchmark",
                  "thermal hot spots on HIT-UAV, EO motion on a rendered scenario"),
    "georef": ("bench.georef", "pixel to ground: accuracy against the simulator, throughput"),
    "mavlink_ingest": ("bench.mavlink_ingest", "the MAVLink driver against pymavlink's reader"),
    "sim_replay": ("bench.sim_replay", "tlog reading, replay timing, flight fidelity"),
    "sim_camera": ("bench.sim_camera", "the simulated camera's frames per second"),
    "uplink": ("bench.uplink", "the outbox and MQTT uplink through mosquitto"),
    "edge_node": ("bench.edge_node", "a whole edge node on a live scenario"),
    "klv": ("bench.klv", "KLV video: frame centres, decode rate, the node on a 720p stream"),
    "hq": ("bench.hq_ingest", "HQ's ingest path: validation, fusion, alerts, the store"),
    "hq_history": ("bench.hq_history", "history in a box and an hour, a million points"),
    "hq_fusion": ("bench.hq_fusion", "HQ fusion against a per-pair reference"),
    "hq_store": ("bench.hq_store", "the SQLite store against plain sqlite3"),
    "hq_api": ("bench.hq_api", "the REST API and the live stream under load"),
    "hq_page": ("bench.hq_page", "batch published to track drawn on the operator page"),
    "soak": ("bench.soak", "many posts into one HQ for minutes: load and soak"),
    "chaos": ("bench.chaos", "kill -9 of broker, HQ and posts: batches lost or stored twice"),
    "abuse": ("bench.abuse", "one hostile post: the others' publish-to-commit latency"),
    "scenes": ("bench.scenes", "the whole stack on the scene suite, scored at HQ and per node"),
}


def usage() -> str:
    width = max(map(len, BENCHMARKS))
    lines = [f"usage: python -m bench {{{','.join(BENCHMARKS)}}} [options]", ""]
    lines += [f"  {name:<{width}}  {what}" for name, (_, what) in BENCHMARKS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print(usage(), file=sys.stderr)
        return 2
    if argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in BENCHMARKS:
        print(f"python -m bench: no benchmark {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    module, _ = BENCHMARKS[argv[0]]
    return int(importlib.import_module(module).main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main())
