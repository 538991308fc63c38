"""How well a vehicle's telemetry gets through: heartbeats, sequence gaps, rates, radio.

Every MAVLink sender numbers its frames 0..255 per (system, component), so a
gap in that number is frames lost on the way. A link counts as lost, as ground
stations have it, when no HEARTBEAT came for 3 s. Over an outage the sequence
number may wrap any number of times, so the frames of an outage are reported
as the outage (a link loss), not as a sequence-gap count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

SEQ_MODULO = 256
SEQ_BACKWARDS = 128  # a step of more than half the range is a late frame, not a gap
UNKNOWN_U8 = 255  # RADIO_STATUS: value unknown


@dataclass
class MavlinkCounters:
    """What one link received and rejected, all vehicles together."""

    bytes_in: int = 0
    frames: int = 0  # passed framing, checksum and (when signing is on) signature
    messages: int = 0  # frames handed on: less duplicates and ground-station traffic
    skipped_bytes: int = 0  # bytes outside any frame (noise, the rest of a rejected frame)
    truncated: int = 0  # a frame cut short by the end of a datagram or tlog entry
    bad_crc: int = 0
    unknown_message: int = 0  # message id not in the dialect: checksum cannot be checked
    malformed: int = 0  # unknown incompatibility flags, unpackable payload
    unsigned_rejected: int = 0  # signing on, frame unsigned (or MAVLink 1)
    bad_signature: int = 0
    stale_signature: int = 0  # good signature, timestamp not newer: replayed or old
    duplicates: int = 0  # same sequence number again from the same sender
    lost: int = 0  # frames missing from sequence gaps
    out_of_order: int = 0
    ground_station: int = 0  # frames of ground stations, ignored
    invalid_values: int = 0  # NaN attitude, no position (0, 0), zero quaternion ...
    gps_no_fix: int = 0  # GPS_RAW_INT without a 3D fix
    time_jumps: int = 0  # a vehicle's boot-to-UTC offset jumped: its history was dropped
    reboots: int = 0
    link_losses: int = 0  # heartbeat timeouts
    connects: int = 0
    connect_failures: int = 0
    disconnects: int = 0


@dataclass(frozen=True)
class RadioStatus:
    """RADIO_STATUS of the telemetry radio, in the radio's own units (SiK: 0..254)."""

    t: float
    rssi: int | None
    remote_rssi: int | None
    noise: int | None
    remote_noise: int | None
    rx_errors: int
    corrected: int
    tx_buffer_percent: int

    @classmethod
    def from_message(cls, msg, t: float) -> RadioStatus:
        def known(value):
            return None if value == UNKNOWN_U8 else value

        return cls(t, known(msg.rssi), known(msg.remrssi), known(msg.noise),
                   known(msg.remnoise), msg.rxerrors, msg.fixed, msg.txbuf)  # fmt: skip


@dataclass(frozen=True)
class LinkHealth:
    """One vehicle's link, for the node's status message."""

    state: str  # "waiting" (no heartbeat yet), "ok", "lost"
    heartbeat_age: float | None  # s since the last heartbeat
    link_losses: int
    received: int
    lost: int
    duplicates: int
    out_of_order: int
    loss_fraction: float  # lost / (received + lost)
    rates: dict[str, float]  # messages per second by type, over the last rate window
    radio: RadioStatus | None


@dataclass
class _Stream:
    seq: int
    arrival: float


class VehicleLink:
    """Heartbeat watch, sequence-gap loss and message rates of one vehicle (system id)."""

    def __init__(self, sysid: int, counters: MavlinkCounters, heartbeat_timeout: float = 3.0,
                 rate_window: float = 5.0):  # fmt: skip
        self.sysid = sysid
        self.counters = counters
        self.heartbeat_timeout = heartbeat_timeout
        self.rates = RateMeter(rate_window)
        self.radio: RadioStatus | None = None
        self.last_heartbeat: float | None = None
        self.lost_link = False
        self.link_losses = 0
        self.received = self.lost = self.duplicates = self.out_of_order = 0
        self._streams: dict[int, _Stream] = {}

    def accept(self, compid: int, seq: int, msg_type: str, arrival: float) -> bool:
        """Book one frame; False for a duplicate, which is to be dropped."""
        self.check(arrival)
        stream = self._streams.get(compid)
        if stream is None:
            self._streams[compid] = _Stream(seq, arrival)
        elif not self._step(stream, seq, arrival):
            return False
        self.received += 1
        self.rates.count(msg_type, arrival)
        return True

    def _step(self, stream: _Stream, seq: int, arrival: float) -> bool:
        step = (seq - stream.seq) % SEQ_MODULO
        if step == 0:
            self.duplicates += 1
            self.counters.duplicates += 1
            return False
        if step > SEQ_BACKWARDS:
            # A late frame: it was booked as lost when the gap opened.
            self.out_of_order += 1
            self.counters.out_of_order += 1
            missing = min(1, self.lost)
            self.lost -= missing
            self.counters.lost -= missing
            return True
        self.lost += step - 1
        self.counters.lost += step - 1
        stream.seq, stream.arrival = seq, arrival
        return True

    def heartbeat(self, arrival: float) -> None:
        self.check(arrival)
        if self.lost_link:
            log.info("link recovered sysid=%d after_s=%.1f", self.sysid,
                     arrival - (self.last_heartbeat or arrival))  # fmt: skip
        self.lost_link = False
        self.last_heartbeat = arrival

    def check(self, now: float) -> None:
        """Mark the link lost once its heartbeat is older than the timeout."""
        if self.lost_link or self.last_heartbeat is None:
            return
        if now - self.last_heartbeat > self.heartbeat_timeout:
            self.lost_link = True
            self.link_losses += 1
            self.counters.link_losses += 1
            self.restart_sequences()
            log.warning("link lost sysid=%d silent_s=%.1f", self.sysid, now - self.last_heartbeat)

    def restart_sequences(self) -> None:
        """Forget the last sequence numbers (after an outage or a reboot)."""
        self._streams.clear()

    def status(self, now: float) -> LinkHealth:
        self.check(now)
        if self.last_heartbeat is None:
            state, age = "waiting", None
        else:
            state, age = ("lost" if self.lost_link else "ok"), now - self.last_heartbeat
        total = self.received + self.lost
        return LinkHealth(state, age, self.link_losses, self.received, self.lost,
                          self.duplicates, self.out_of_order,
                          self.lost / total if total else 0.0,
                          self.rates.snapshot(now), self.radio)  # fmt: skip


@dataclass
class RateMeter:
    """Messages per second by type, counted over consecutive windows."""

    window: float = 5.0
    _start: float | None = None
    _counts: dict[str, int] = field(default_factory=dict)
    _rates: dict[str, float] = field(default_factory=dict)

    def count(self, msg_type: str, now: float) -> None:
        self._roll(now)
        self._counts[msg_type] = self._counts.get(msg_type, 0) + 1

    def snapshot(self, now: float) -> dict[str, float]:
        self._roll(now)
        return dict(self._rates)

    def _roll(self, now: float) -> None:
        if self._start is None:
            self._start = now
        elapsed = now - self._start
        if elapsed >= self.window:
            self._rates = {k: n / elapsed for k, n in self._counts.items()}
            self._counts = {}
            self._start = now
