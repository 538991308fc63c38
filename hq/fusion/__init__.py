"""Track-to-track fusion: node tracks from many posts become one picture of global tracks.

`Fusion` (fusion.py) reads as the steps a TrackBatch takes, each in a module of
its own: rows (into HQ's frame), association and gating (distances, proposals),
links (the link rules), intersection (covariance intersection), history (what
changed). tables.py holds what fusion keeps between batches, snapshot.py the
published picture, config.py its parameters; algebra.py the Numba helpers the
kernels share.
"""

from hq.fusion.config import FusionConfig, FusionCounters
from hq.fusion.fusion import Fusion, warm_kernels
from hq.fusion.history import FusionUpdate, History
from hq.fusion.snapshot import GlobalTrack, GlobalTracks

__all__ = ["Fusion", "FusionConfig", "FusionCounters", "FusionUpdate", "GlobalTrack",
           "GlobalTracks", "History", "warm_kernels"]
