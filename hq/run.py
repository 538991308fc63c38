"""`python -m hq run --config configs/hq.toml`: HQ's ingest, fusion, store, alerts and API.

Ingest runs in its MQTT client's threads; with an `[api]` section in the
config, the API (hq/api) is served by uvicorn in the main thread of the same
process, over the same store, and every committed batch reaches the live
stream: `LiveFeed.publish` is ingest's `on_commit`. Without one, HQ runs ingest only.
Runs until SIGINT or SIGTERM. The broker keeps HQ's session while it is
down, and messages are acknowledged only once committed, so a stop or a
crash loses nothing a post sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
import time
from collections.abc import Callable

import uvicorn

from hq.alerts import CrossingDetector, DistressDetector, NodeHealthDetector, StoreGeography
from hq.api.app import create_app
from hq.api.live import LiveFeed
from hq.config import HqConfig, load_config
from hq.fusion import Fusion, FusionConfig, warm_kernels
from hq.ingest import Ingest
from hq.ingest.client import IngestClient
from hq.ingest.watchdog import IngestWatchdog
from hq.store import is_postgresql, open_store, redacted, sqlite_path
from hq.store.interface import Store
from hq.store.records import IngestBatch
from hq.tak import StoreSource, TakStreamer
from wire.geo import EnuFrame

log = logging.getLogger(__name__)
GRACEFUL_STOP_S = 3  # open live streams never end by themselves: cut them after this


def build_ingest(config: HqConfig, store: Store,
                 on_commit: Callable[[IngestBatch], None] | None = None) -> Ingest:  # fmt: skip
    frame = EnuFrame(*config.origin)
    fusion = Fusion(FusionConfig(**config.fusion.model_dump(), origin=config.origin,
                                 first_global_id=store.max_global_id() + 1))  # fmt: skip
    alerts = config.alert_config()
    # The border, zones and places the detectors use: the store's, the current version (the
    # config's on the first start, with or without an API to change them).
    config.seed_geography(store, time.time())
    geography = StoreGeography(store, frame, config.home)
    return Ingest(store, fusion, CrossingDetector(alerts, frame, geography),
                  DistressDetector(alerts, frame, geography), NodeHealthDetector(alerts),
                  on_commit=on_commit, limits=config.ingest, region=config.origin[:2],
                  geography=geography)  # fmt: skip


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m hq run", description=__doc__)
    parser.add_argument("--config", required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(message)s")
    try:
        config = load_config(args.config)
        password = None if config.broker.password is None else config.broker.password.read()
        if not is_postgresql(config.store):
            sqlite_path(config.store).parent.mkdir(parents=True, exist_ok=True)
        store = open_store(config.store)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"python -m hq run: {error}")
        return 1
    feed = None if config.api is None else LiveFeed(**config.api.stream.model_dump())
    ingest = build_ingest(config, store, on_commit=feed and feed.publish)
    broker = config.broker
    stop = StopSignals()  # from here on a SIGINT or SIGTERM is kept, and ends HQ cleanly
    # Subscribe first, so that the broker keeps the posts' messages for HQ's session from
    # now on; those that arrive while the fusion kernels compile or load wait in the
    # writer's queue, unacknowledged.
    client = IngestClient(ingest, broker.host, broker.port, broker.username, password,
                          client_id=broker.client_id).start()  # fmt: skip
    watchdog = IngestWatchdog(client.unacknowledged, store,
                              config.ingest.max_unacknowledged_age_s,
                              on_alert=feed and feed.publish).start()  # fmt: skip
    warm_kernels()
    tak = None if config.tak is None else TakStreamer(config.tak, tak_source(config, store)).start()
    log.info("HQ running store=%s broker=%s:%d", redacted(config.store), broker.host,
             broker.port)  # fmt: skip
    try:
        if feed is None:
            stop.event.wait()
            return 0
        app = create_app(store, config, feed, flow_statistics=ingest.flow,
                         ingest_counters=lambda: dataclasses.asdict(ingest.counters),
                         ingest_stalled=lambda: watchdog.stalled)  # fmt: skip
        server = uvicorn.Server(uvicorn.Config(
            app, host=config.api.host, port=config.api.port, log_config=None,
            access_log=False, timeout_graceful_shutdown=GRACEFUL_STOP_S,
            # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default: any local
            # client could then pose as another address (and dodge the auth failure limit).
            proxy_headers=bool(config.api.trusted_proxies),
            forwarded_allow_ips=config.api.trusted_proxies or None))  # fmt: skip
        log.info("HQ API on http://%s:%d", config.api.host, config.api.port)
        # uvicorn handles SIGINT and SIGTERM while it runs, then raises the signal again for
        # the handler it found (ours: harmless then). A stop that came before it ran, or
        # before it took the signals, makes it exit at once.
        stop.on_stop(lambda: setattr(server, "should_exit", True))
        if stop.event.is_set():
            return 0
        server.run()
        return 0 if server.started or stop.event.is_set() else 1
    finally:
        watchdog.stop()
        client.stop()
        if tak is not None:
            tak.stop()
        store.close()
        log.info("HQ stopped counters=%s", ingest.counters)


def tak_source(config: HqConfig, store: Store) -> StoreSource:
    """TAK's view of the store, with the labels operators set through the API."""
    return StoreSource(store, labels=store.track_labels)


class StopSignals:
    """SIGINT and SIGTERM from the moment it is made: a stop that comes while HQ is still
    starting (its kernels compile for seconds on a cold cache) is kept rather than lost,
    and does not kill HQ before its clean-up."""

    def __init__(self):
        self.event = threading.Event()
        self._callbacks: list[Callable[[], None]] = []
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._stop)

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Call `callback` on a stop, now if one came already."""
        self._callbacks.append(callback)
        if self.event.is_set():
            callback()

    def _stop(self, *_) -> None:
        self.event.set()
        for callback in self._callbacks:
            callback()
