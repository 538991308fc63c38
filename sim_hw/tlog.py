"""The .tlog format: each entry an 8-byte big-endian microsecond UTC timestamp
followed by one raw MAVLink frame, as ground stations record them."""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

_STAMP = struct.Struct(">Q")


def write_tlog(path: str | Path, entries: Iterable[tuple[float, bytes]]) -> int:
    """Write (UTC seconds, frame bytes) entries; returns how many were written."""
    count = 0
    with open(path, "wb") as out:
        for t, frame in entries:
            out.write(_STAMP.pack(round(t * 1e6)))
            out.write(frame)
            count += 1
    return count
