"""The MQTT topic scheme: the one place that knows it.

    dunewatch/v1/{site}/{node}/tracks     TrackBatch
    dunewatch/v1/{site}/{node}/status     NodeStatus (retained; the Last Will says offline)
    dunewatch/v1/{site}/{node}/telemetry  VehicleTelemetry
    dunewatch/v1/{site}/{node}/alerts     Alert
    dunewatch/ack/v1/{site}/{node}        Delivered (wire/delivery.py): HQ to the node, what
                                          HQ's store holds; outside the node's own tree, so
                                          that only HQ may write it and only that node read it

The version in the topic is the wire's major version, so a broker can carry
two generations side by side during an upgrade.
"""

from __future__ import annotations

from typing import NamedTuple

ROOT = "dunewatch/v1"
ACK_ROOT = "dunewatch/ack/v1"
CHANNELS = ("tracks", "status", "telemetry", "alerts")


class TopicParts(NamedTuple):
    site: str
    node: str
    channel: str


def _checked(name: str) -> str:
    if not name or any(c in name for c in "/+#\0"):
        raise ValueError(f"{name!r} cannot be part of a topic (empty, or holds / + # NUL)")
    return name


def topic(site: str, node: str, channel: str) -> str:
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
    return f"{ROOT}/{_checked(site)}/{_checked(node)}/{channel}"


def tracks(site: str, node: str) -> str:
    return topic(site, node, "tracks")


def status(site: str, node: str) -> str:
    return topic(site, node, "status")


def telemetry(site: str, node: str) -> str:
    return topic(site, node, "telemetry")


def alerts(site: str, node: str) -> str:
    return topic(site, node, "alerts")


def node_root(site: str, node: str) -> str:
    """Everything one node may publish under (its ACL grant)."""
    return f"{ROOT}/{_checked(site)}/{_checked(node)}/#"


def delivered(site: str, node: str) -> str:
    """Where HQ tells this node which of its batches the store holds."""
    return f"{ACK_ROOT}/{_checked(site)}/{_checked(node)}"


def all_delivered() -> str:
    """Everything HQ may publish under (its ACL grant)."""
    return f"{ACK_ROOT}/#"


def all_nodes(channel: str | None = None) -> str:
    """HQ's subscription: every node's `channel`, or everything."""
    return f"{ROOT}/+/+/{channel}" if channel else f"{ROOT}/#"


def parse(name: str) -> TopicParts:
    parts = name.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != ROOT or parts[4] not in CHANNELS:
        raise ValueError(f"{name!r} is not a {ROOT}/SITE/NODE/CHANNEL topic")
    return TopicParts(parts[2], parts[3], parts[4])
