"""`python -m hq run --config configs/hq.toml`: HQ's ingest, fusion, store and alerts.

Runs until SIGINT or SIGTERM. The broker keeps HQ's session while it is
down, and messages are acknowledged only once committed, so a stop or a
crash loses nothing a post sent.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from hq import fusion_kernels as kernels
from hq.alerts import CrossingDetector, DistressDetector, NodeHealthDetector
from hq.config import HqConfig, load_config
from hq.fusion import Fusion, FusionConfig
from hq.ingest import Ingest, IngestClient
from hq.store_sqlite import SqliteStore
from wire.geo import EnuFrame

log = logging.getLogger(__name__)


def build_ingest(config: HqConfig, store: SqliteStore) -> Ingest:
    frame = EnuFrame(*config.origin)
    fusion = Fusion(FusionConfig(origin=config.origin,
                                 first_global_id=store.max_global_id() + 1))  # fmt: skip
    alerts = config.alert_config()
    return Ingest(store, fusion, CrossingDetector(alerts, frame), DistressDetector(alerts, frame),
                  NodeHealthDetector(alerts))  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m hq run", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    try:
        config = load_config(args.config)
        password = None if config.broker.password is None else config.broker.password.read()
        config.database.parent.mkdir(parents=True, exist_ok=True)
        store = SqliteStore(config.database)
    except (OSError, ValueError) as error:
        print(f"python -m hq run: {error}")
        return 1
    kernels.warm()  # compile (or load) the fusion kernels before the first message waits on them
    ingest = build_ingest(config, store)
    broker = config.broker
    client = IngestClient(ingest, broker.host, broker.port, broker.username, password,
                          client_id=broker.client_id).start()  # fmt: skip
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    log.info("HQ running database=%s broker=%s:%d", config.database, broker.host, broker.port)
    stop.wait()
    client.stop()
    store.close()
    log.info("HQ stopped counters=%s", ingest.counters)
    return 0
