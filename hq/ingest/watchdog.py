"""The ingest watchdog: is any message waiting too long for its acknowledgement?

`Unacknowledged` records when each message the broker sent HQ arrived, until
HQ acknowledges it (after its commit). A message that stays unacknowledged
holds one of the broker's `receive_maximum` slots; once they are all held the
broker sends HQ nothing more, from any post. `IngestWatchdog` looks every
`check_s` at the oldest one: older than `max_age_s`, ingest is stalled:
`stalled` turns true (HQ's /readyz answers not ready) and a critical alert
is raised; it is cleared once the oldest is young again. The watchdog runs on
its own thread and writes its alert straight to the store, so that a stuck
ingest thread cannot keep it quiet.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable

from hq.store.interface import Store
from hq.store.records import IngestBatch
from wire.messages import Alert

log = logging.getLogger(__name__)
STALL_ALERT_ID = "ingest-stalled"


class Unacknowledged:
    """Messages received and not yet acknowledged, with their arrival time (thread-safe)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._since: dict[Hashable, float] = {}  # in arrival order

    def add(self, token: Hashable, received: float) -> None:
        with self._lock:
            self._since.setdefault(token, received)  # a redelivery keeps the first arrival

    def remove(self, token: Hashable) -> None:
        with self._lock:
            self._since.pop(token, None)

    def clear(self) -> None:
        """Forget all (a new connection: the broker sends again what was not acknowledged)."""
        with self._lock:
            self._since.clear()

    def oldest_age(self, now: float) -> float:
        """Seconds the oldest unacknowledged message has waited; 0 when there is none."""
        with self._lock:
            first = next(iter(self._since.values()), None)
        return 0.0 if first is None else max(0.0, now - first)

    def __len__(self) -> int:
        return len(self._since)


class IngestWatchdog:
    def __init__(self, unacknowledged: Unacknowledged, store: Store, max_age_s: float,
                 on_alert: Callable[[IngestBatch], None] | None = None, check_s: float = 1.0,
                 site: str = "hq", node: str = "fusion"):  # fmt: skip
        """`on_alert(batch)` gets each committed alert change (the live stream)."""
        self.unacknowledged = unacknowledged
        self.store = store
        self.max_age_s = max_age_s
        self.on_alert = on_alert
        self.check_s = check_s
        self.site, self.node = site, node
        self.stalled = False
        self.alerts_written = 0
        self._unwritten: list[Alert] = []  # raised or cleared, not yet in the store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> IngestWatchdog:
        self._thread = threading.Thread(target=self._run, name="hq-ingest-watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def check(self, now: float) -> None:
        """Look at the oldest unacknowledged message; raise or clear the alert on a change."""
        age = self.unacknowledged.oldest_age(now)
        stalled = age > self.max_age_s
        if stalled != self.stalled:
            self.stalled = stalled
            log.log(logging.ERROR if stalled else logging.INFO,
                    "ingest %s oldest_unacknowledged_s=%.1f waiting=%d",
                    "stalled" if stalled else "flowing again", age,
                    len(self.unacknowledged))  # fmt: skip
            self._unwritten.append(self._alert(now, age))
        if self._unwritten:
            self._write_alerts()

    def _alert(self, now: float, age: float) -> Alert:
        if self.stalled:
            message = (f"HQ ingest stalled: a message has waited {age:.0f} s for its commit "
                       f"(bound {self.max_age_s:.0f} s)")  # fmt: skip
        else:
            message = "recovered: HQ ingest commits again"
        return Alert(site=self.site, node=self.node, alert_id=STALL_ALERT_ID,
                     alert_type="backlog", severity="critical" if self.stalled else "info",
                     time=now, message=message, active=self.stalled)  # fmt: skip

    def _write_alerts(self) -> None:
        """The alert's changes in order, one batch each (the store keeps the newest)."""
        while self._unwritten:
            batch = IngestBatch(self._unwritten[0].time, alerts=[self._unwritten[0]])
            try:
                self.store.commit_ingest_many([batch])
            except Exception:  # the store may be what stalls ingest: try at the next check
                log.exception("ingest watchdog could not store its alert")
                return
            self._unwritten.pop(0)
            self.alerts_written += 1
            if self.on_alert is not None:
                try:
                    self.on_alert(batch)
                except Exception:
                    log.exception("ingest watchdog alert not published")

    def _run(self) -> None:
        while not self._stop.wait(self.check_s):
            self.check(time.time())
