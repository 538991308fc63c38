"""Multi-target tracking of ground targets in a node's local ENU frame."""

from edge.tracking.table import Tracks
from edge.tracking.tracker import Tracker, TrackerConfig, TrackerCounters

__all__ = ["Tracker", "TrackerConfig", "TrackerCounters", "Tracks"]
