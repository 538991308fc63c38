"""`AlertEvent`: what a detector answers, an alert raised, updated or cleared."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class AlertEvent:
    alert_id: str
    kind: str  # border_crossing, zone_entry, distress, node_offline, drone_link, battery, backlog
    change: str  # raised, updated, cleared
    severity: str  # info, warning, critical
    time: float
    message: str
    position: tuple[float, float] | None = None  # lat, lon
    track_ids: tuple[int, ...] = ()
    details: dict = field(default_factory=dict)
