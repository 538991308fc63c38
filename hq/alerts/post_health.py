"""Post health: a post offline (its Last Will, or silent too long), a drone's link lost, a
drone's battery low, an uplink backlog growing."""

from __future__ import annotations

from hq.alerts.config import AlertConfig
from hq.alerts.events import AlertEvent, id_part
from wire.messages import NodeStatus


class NodeHealthDetector:
    """Posts and their drones: raised when something fails, cleared when it recovers."""

    def __init__(self, config: AlertConfig):
        self.config = config
        self._last_seen: dict[tuple[str, str], float] = {}  # (site, node): UTC s
        self._active: set[str] = set()

    def status(self, status: NodeStatus, received: float) -> list[AlertEvent]:
        node, ref = f"{status.site}/{status.node}", id_part(status.site, status.node)
        self._last_seen[(status.site, status.node)] = received
        checks = [(f"node-offline-{ref}", "node_offline", "critical",
                   status.state == "offline", f"post {node} is offline")]  # fmt: skip
        for drone in status.drones:
            key = id_part(status.site, status.node, drone.sysid)
            checks.append((f"drone-link-{key}", "drone_link", "warning", not drone.connected,
                           f"drone {drone.sysid} of {node} lost its link"))  # fmt: skip
            low = drone.battery_remaining is not None and (
                drone.battery_remaining < self.config.battery_low)
            checks.append((f"battery-{key}", "battery", "warning", low,
                           f"drone {drone.sysid} of {node} battery low"))  # fmt: skip
        checks.append((f"backlog-{ref}", "backlog", "warning",
                       status.outbox_depth > self.config.backlog_high,
                       f"post {node} has {status.outbox_depth} messages waiting"))  # fmt: skip
        return [e for check in checks if (e := self._transition(*check, status.time))]

    def silence(self, now: float) -> list[AlertEvent]:
        """Posts that said nothing for too long, without a Last Will reaching HQ."""
        events = []
        for (site, node), seen in self._last_seen.items():
            silent = now - seen > self.config.node_silence_s
            message = f"post {site}/{node} silent for {now - seen:.0f} s"
            event = self._transition(f"node-silent-{id_part(site, node)}", "node_offline",
                                     "critical", silent, message, now)  # fmt: skip
            if event:
                events.append(event)
        return events

    def _transition(self, alert_id, kind, severity, failing, message, now) -> AlertEvent | None:
        if failing and alert_id not in self._active:
            self._active.add(alert_id)
            return AlertEvent(alert_id, kind, "raised", severity, now, message)
        if not failing and alert_id in self._active:
            self._active.discard(alert_id)
            return AlertEvent(alert_id, kind, "cleared", "info", now, f"recovered: {message}")
        return None
