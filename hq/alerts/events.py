"""`AlertEvent`: what a detector answers, an alert raised, updated or cleared; and the ids of
alerts, which operators' clients put in URL paths.

Every alert id is URL-safe: letters, digits and `_ . ~ -` (RFC 3986's unreserved
characters), so that /api/v1/alerts/{id}/acknowledge needs no encoding. A post
and its drones are named `SITE~NODE` and `SITE~NODE~SYSID` in ids (site and
node names never hold `~`). An alert a post sends lives in that post's
namespace, `post~SITE~NODE~ID`: no post can replace HQ's own alerts (which
never start with `post~`) or another post's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

POST_ALERT_ID = re.compile(r"[A-Za-z0-9_.~-]{1,128}")


def id_part(*names: object) -> str:
    """A post (site, node) or a post's drone (site, node, sysid) as part of an alert id."""
    return "~".join(str(n) for n in names)


def post_alert_id(site: str, node: str, alert_id: str) -> str:
    """The id at HQ of the alert `alert_id` sent by post `site`/`node`; ValueError for an id
    that is not URL-safe."""
    if not POST_ALERT_ID.fullmatch(alert_id):
        raise ValueError(f"alert id {alert_id!r} may hold only letters, digits and _ . ~ - "
                         "(at most 128)")  # fmt: skip
    return f"post~{id_part(site, node)}~{alert_id}"


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
