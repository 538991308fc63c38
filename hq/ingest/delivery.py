"""HQ's end-to-end acknowledgements: after each commit, tell every node which of its batches
the store holds, so that the node may delete them from its outbox (wire/delivery.py).

Ingest calls `committed(node_key, seq)` for every TrackBatch its store holds once a
group is committed: the ones just written and the repeats it found already there
(a node sends a batch again when a confirmation was lost; it must hear of it
again). A thread publishes, every `interval_s`, one retained `Delivered`
message per node that has news, on the node's `delivered` topic, which only
HQ's account may write and only that node's may read (hq/broker.py). Retained,
so that a node that reconnects learns at once what it may drop. A confirmation
lost with a crashing broker costs a resend, never a batch.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from wire import delivery, topics

log = logging.getLogger(__name__)


class DeliveryAcks:
    def __init__(self, publish: Callable[[str, bytes], None], interval_s: float = 0.1,
                 max_nodes: int = 100_000):  # fmt: skip
        """`publish(topic, payload)`: hands one retained QoS 1 message to the broker."""
        self._publish = publish
        self.interval_s = interval_s
        self.max_nodes = max_nodes
        self._held: dict[str, delivery.SeqRanges] = {}
        self._news: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.published = 0
        self.publish_errors = 0

    def committed(self, node_key: str, seq: int) -> None:
        """Any thread: the store holds (node, seq)."""
        with self._lock:
            held = self._held.get(node_key)
            if held is None:
                if len(self._held) >= self.max_nodes:  # a bound; a dropped node's batches
                    self._held.clear()  # are confirmed again when it resends them
                held = self._held[node_key] = delivery.SeqRanges()
            held.add(seq)
            self._news.add(node_key)

    def start(self) -> DeliveryAcks:
        self._thread = threading.Thread(target=self._run, name="hq-delivery", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Publish what is news, then stop."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.flush()

    def flush(self) -> None:
        """Publish one message per node with news."""
        with self._lock:
            news = [(key, self._held[key].ranges()) for key in self._news if key in self._held]
            self._news.clear()
        now = time.time()
        for node_key, ranges in news:
            site, node = node_key.split("/", 1)
            message = delivery.Delivered(site=site, node=node, time=now, ranges=ranges)
            try:
                self._publish(topics.delivered(site, node), delivery.encode(message))
                self.published += 1
            except Exception:  # the node resends and hears again; HQ goes on
                self.publish_errors += 1
                log.exception("confirmation not published node=%s", node_key)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.flush()
