"""`SeenWindows`: ingest's early "seen before?" for PostgreSQL, one query per node per window
of seqs rather than one per message.

Ingest asks `already_seen(node, seq)` of every batch before fusing it; against a
server each question is a round trip (measured on a busy 2-core machine: 7 ms,
most of it waiting for the server process to be scheduled). A post's seqs come
in order, so one query reads which of the next `span` seqs are stored, and
the answers for them are kept for `ttl_s`; this process's own commits are
added as they happen. The answer is thus as of at most `ttl_s` ago. That is
what the early check may be: the commit decides (the seen_batches primary
key), and another writer may store the same batch between any early answer
and this writer's commit, cache or not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

MAX_SEQ = 2**63 - 1


@dataclass
class _Window:
    low: int
    high: int
    until: float  # time.monotonic() after which it is read again
    seen: set[int] = field(default_factory=set)


class SeenWindows:
    def __init__(self, read: Callable[[str, int, int], Iterable[int]], span: int = 1024,
                 ttl_s: float = 0.5, max_nodes: int = 10_000):  # fmt: skip
        """`read(node, low, high)`: the stored seqs of `node` in [low, high]."""
        self._read, self.span, self.ttl_s, self.max_nodes = read, span, ttl_s, max_nodes
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def seen(self, node_key: str, seq: int) -> bool:
        now = time.monotonic()
        with self._lock:
            window = self._windows.get(node_key)
            if window is not None and window.low <= seq <= window.high and now < window.until:
                return seq in window.seen
        high = min(seq + self.span, MAX_SEQ)
        window = _Window(seq, high, now + self.ttl_s, set(self._read(node_key, seq, high)))
        with self._lock:
            if len(self._windows) >= self.max_nodes:
                self._windows.clear()  # a bound, not a policy: they are read again as needed
            self._windows[node_key] = window
        return seq in window.seen

    def committed(self, pairs: Iterable[tuple[str, int]]) -> None:
        """Batches this process has just committed: seen from now on."""
        with self._lock:
            for node_key, seq in pairs:
                window = self._windows.get(node_key)
                if window is not None and window.low <= seq <= window.high:
                    window.seen.add(seq)
