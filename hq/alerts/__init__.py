"""What HQ must tell its operators: border crossings, people in distress, failing posts.

Every detector is fed the fused picture one update at a time (`update`) and
answers with alert events (events.py): raised, updated or cleared. An alert
keeps its id for its whole life, so the store and the operators' page can
follow it. Ingest feeds the track detectors all the tracks a batch changed at
once (`update_many`, columns of arrays): the geometric tests run on all of
them together, and only the few tracks that cross, enter or dwell go on
through `update`, so that both ways give the same events.

- crossing.py: border crossings, and zone entries (zones.py); animals never raise one.
- distress.py: search and rescue, people stationary in open desert.
- post_health.py: posts offline or silent, drones' links and batteries, backlogs.
- geometry.py: the one kernel of each geometric test; config.py: what they are told.
"""

from hq.alerts.config import AlertConfig, Place, Zone
from hq.alerts.crossing import CrossingDetector
from hq.alerts.distress import DistressDetector
from hq.alerts.events import AlertEvent
from hq.alerts.post_health import NodeHealthDetector
from hq.alerts.tracks import TrackView

__all__ = ["AlertConfig", "AlertEvent", "CrossingDetector", "DistressDetector",
           "NodeHealthDetector", "Place", "TrackView", "Zone"]
