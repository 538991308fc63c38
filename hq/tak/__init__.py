"""Cursor-on-Target for TAK: the encoding (cot.py) and the TCP streamer (streamer.py) that
sends HQ's picture (source.py) as configured by the `[tak]` section (config.py)."""

from hq.tak.config import TakConfig
from hq.tak.source import StoreSource
from hq.tak.streamer import TakStreamer

__all__ = ["StoreSource", "TakConfig", "TakStreamer"]
