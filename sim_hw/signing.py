"""MAVLink 2 signing of replayed frames.

A recorded frame carries no signature (or one made with another key), so each
frame is decoded and packed again as MAVLink 2 with the same system,
component and sequence number, signed with the configured 32-byte key and a
timestamp from the signing epoch (2015-01-01) in 10 µs units that never goes
backwards, as the signing specification requires.
"""

from __future__ import annotations

import time
from pathlib import Path

from pymavlink.dialects.v20 import ardupilotmega as dialect

from sim_hw.tlog import MAVLINK2_MAGIC
from wire.secrets import signing_key_of

SIGNING_EPOCH = 1_420_070_400  # 2015-01-01T00:00:00Z
KEY_LENGTH = 32


def read_key(path: str | Path) -> bytes:
    """The secret key: 32 raw bytes, or 64 hexadecimal characters."""
    return signing_key_of(Path(path).read_bytes(), f"file {path}")


class FrameSigner:
    def __init__(self, key: bytes, link_id: int = 0):
        if len(key) != KEY_LENGTH:
            raise ValueError(f"a signing key is {KEY_LENGTH} bytes, got {len(key)}")
        self._parser = dialect.MAVLink(None)
        self._link = dialect.MAVLink(None)
        signing = self._link.signing
        signing.secret_key = key
        signing.link_id = link_id
        signing.sign_outgoing = True
        signing.timestamp = int((time.time() - SIGNING_EPOCH) * 1e5)

    def sign(self, raw: bytes) -> bytes:
        """One MAVLink 1 or 2 frame, signed as MAVLink 2 by the same sender."""
        message = self._parser.decode(bytearray(raw))
        link = self._link
        if raw[0] == MAVLINK2_MAGIC:
            link.seq, link.srcSystem, link.srcComponent = raw[4], raw[5], raw[6]
        else:
            link.seq, link.srcSystem, link.srcComponent = raw[2], raw[3], raw[4]
        # Never behind the clock, never backwards (pymavlink adds one per frame).
        now = int((time.time() - SIGNING_EPOCH) * 1e5)
        link.signing.timestamp = max(link.signing.timestamp, now)
        return message.pack(link, force_mavlink1=False)
