"""Flow statistics: how many crossed where, which way, of what kind, in which hour.

Counts only, from the crossing alerts: no track ids, no positions finer than
a border segment, nothing that could single out a person. This is the kind
of flow monitoring humanitarian agencies publish.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hq.alerts.events import AlertEvent

HOUR = 3600.0


@dataclass(frozen=True, order=True)
class FlowKey:
    hour_start: float  # UTC s, a whole hour
    segment: int  # index of the border polyline's segment
    direction: str  # inbound or outbound
    target_class: str


class FlowStatistics:
    def __init__(self):
        self._counts: Counter[FlowKey] = Counter()

    def add(self, event: AlertEvent) -> None:
        if event.kind != "border_crossing" or event.change != "raised":
            return
        key = FlowKey(event.time // HOUR * HOUR, event.details["segment"],
                      event.details["direction"], event.details["class"])  # fmt: skip
        self._counts[key] += 1

    def table(self, since: float = float("-inf"), until: float = float("inf")) -> list[dict]:
        """Rows of counts, oldest hour first, for hours starting in [since, until)."""
        return [
            {"hour_start": k.hour_start, "segment": k.segment, "direction": k.direction,
             "class": k.target_class, "count": n}
            for k, n in sorted(self._counts.items()) if since <= k.hour_start < until
        ]  # fmt: skip
