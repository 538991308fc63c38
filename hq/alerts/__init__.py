"""What HQ must tell its operators: border crossings, people in distress, failing posts.

Every detector is fed the fused picture and answers with alert events
(events.py): raised, updated or cleared. An alert keeps its id for its whole
life, so the store and the operators' page can follow it. Ingest feeds the
track detectors all the tracks a batch changed at once (`update_many`, a
`TrackColumns`: ids, positions, the fused class probabilities, counts, when each
was last measured): the geometric tests run on all of them together, and only
the few tracks that cross, enter or dwell make events. `update` is one track.

- crossing.py: border crossings and zone entries, from measured positions only, with a
  margin and a hold; animals never raise one, unknown classes as configured.
- distress.py: search and rescue, people stationary in open desert since they stopped.
- post_health.py: posts offline or silent, drones' links and batteries, backlogs.
- geography.py: the border, zones and places, the Store's current version.
- geometry.py: the one kernel of each geometric test; config.py: what they are told.
"""

from hq.alerts.config import AlertConfig, Place, Zone
from hq.alerts.crossing import CrossingDetector
from hq.alerts.distress import DistressDetector
from hq.alerts.events import AlertEvent
from hq.alerts.geography import Geography, StaticGeography, StoreGeography
from hq.alerts.post_health import NodeHealthDetector
from hq.alerts.tracks import TrackColumns, TrackView

__all__ = [
    "AlertConfig",
    "AlertEvent",
    "CrossingDetector",
    "DistressDetector",
    "Geography",
    "NodeHealthDetector",
    "Place",
    "StaticGeography",
    "StoreGeography",
    "TrackColumns",
    "TrackView",
    "Zone",
]
