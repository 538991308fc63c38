"""KLV framing (SMPTE ST 336): keys, BER lengths and tags, packets out of a byte stream.

A metadata stream in a transport stream is a run of KLV packets: a 16-byte
Universal Label key, a BER length, the value. The transport cuts that run
wherever it likes: one PES may hold several packets, one packet may be split
over several PES, and a synchronous stream puts a 5-byte metadata access-unit
cell header (ISO/IEC 13818-1, 2.12.4) in front of each unit. `KlvSplitter`
takes the bytes in whatever pieces they come and hands out whole packets;
bytes that are not a packet (garbage, cell headers, the torn end of a packet
lost with its PES) are skipped up to the next key prefix and counted, so one
bad byte costs nothing but itself.

Which sets are decoded is decided by the key, compared liberally: the
registry version byte (octet 8) is ignored, as SMPTE asks, and so is octet 6
(how the set codes its keys and lengths): real encoders vary both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

UL_PREFIX = b"\x06\x0e\x2b\x34"
KEY_LENGTH = 16
MAX_PACKET_BYTES = 1 << 16  # a longer claimed length is damage: no metadata set comes near

# Octets 1-5 and 9-16 of the sets this node reads (octets 6-8 vary between encoders).
UAS_DATALINK_LS = bytes.fromhex("060e2b3402" + "000000" + "0e01030101000000")  # MISB ST 0601
PREDATOR_UAV_SET = bytes.fromhex("060e2b3402" + "000000" + "0e01010201010000")  # MISB EG 0104
_SIGNIFICANT = [k for k in range(KEY_LENGTH) if k not in (5, 6, 7)]


class KlvError(ValueError):
    """Bytes that do not hold what their framing says."""


def key_matches(key: bytes, reference: bytes) -> bool:
    """Whether a set key names the set `reference` does, octets 6-8 aside."""
    return len(key) == KEY_LENGTH and all(key[k] == reference[k] for k in _SIGNIFICANT)


def item_key_matches(key: bytes, reference: bytes) -> bool:
    """Whether a data element's 16-byte key is `reference`, the version octet (8) aside."""
    return len(key) == KEY_LENGTH and key[:7] == reference[:7] and key[8:] == reference[8:]


def ber_length(data: bytes, pos: int) -> tuple[int, int]:
    """(length, position after it) of the BER length at data[pos]: short or long form."""
    if pos >= len(data):
        raise KlvError("length missing")
    first = data[pos]
    if first < 0x80:
        return first, pos + 1
    count = first & 0x7F
    if count == 0 or count > 8:  # 0x80 is BER's indefinite form, which KLV does not use
        raise KlvError(f"BER length of {count} octets")
    end = pos + 1 + count
    if end > len(data):
        raise KlvError("length truncated")
    return int.from_bytes(data[pos + 1 : end], "big"), end


def ber_oid(data: bytes, pos: int) -> tuple[int, int]:
    """(tag, position after it) of the BER-OID tag at data[pos]: 7 bits an octet, high bit
    set on every octet but the last."""
    tag = 0
    for end in range(pos, min(pos + 5, len(data))):
        octet = data[end]
        tag = (tag << 7) | (octet & 0x7F)
        if octet < 0x80:
            return tag, end + 1
    raise KlvError("tag truncated or longer than 4 octets")


def encode_ber_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    body = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode_ber_oid(tag: int) -> bytes:
    groups = [tag & 0x7F]
    tag >>= 7
    while tag:
        groups.append(0x80 | (tag & 0x7F))
        tag >>= 7
    return bytes(reversed(groups))


def checksum16(data: bytes) -> int:
    """The 16-bit running sum of MISB ST 0601 (and ST 0903): even octets weigh 256."""
    high = sum(data[0::2])
    low = sum(data[1::2])
    return ((high << 8) + low) & 0xFFFF


def local_set_items(value: bytes) -> list[tuple[int, int, int]]:
    """(tag, value start, value end) of each item of a local set with BER-OID tags and BER
    lengths. KlvError when an item runs past the end (the items before it are lost too:
    a set whose framing is broken is not trusted)."""
    items = []
    pos = 0
    while pos < len(value):
        tag, pos = ber_oid(value, pos)
        length, pos = ber_length(value, pos)
        end = pos + length
        if end > len(value):
            raise KlvError(f"tag {tag} claims {length} bytes, {len(value) - pos} left")
        items.append((tag, pos, end))
        pos = end
    return items


@dataclass(frozen=True)
class KlvPacket:
    key: bytes
    value: bytes
    raw: bytes  # key, length and value, as received: what a checksum covers


@dataclass
class SplitterCounters:
    packets: int = 0
    skipped_bytes: int = 0  # not part of any packet: garbage, cell headers, torn packets
    torn: int = 0  # a packet cut short: a new unit began with a key before it was whole
    oversize: int = 0  # a claimed length past MAX_PACKET_BYTES: the key taken for garbage
    bad_length: int = 0  # a BER length that does not parse


@dataclass
class KlvSplitter:
    """Whole KLV packets out of a byte stream fed in arbitrary pieces."""

    counters: SplitterCounters = field(default_factory=SplitterCounters)
    _pending: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes, new_unit: bool = False) -> list[KlvPacket]:
        """The packets completed by `data`. `new_unit`: data is a transport unit of its own
        (a PES payload); if it starts with a key (after a cell header, perhaps) while a
        packet is still incomplete, that packet lost its tail with a unit in between, and
        is dropped rather than completed with the new unit's bytes."""
        if new_unit and self._pending and UL_PREFIX in data[:9]:
            self.counters.torn += 1
            self.flush()
        self._pending += data
        packets = []
        buffer = self._pending
        pos = 0
        while True:
            start = buffer.find(UL_PREFIX, pos)
            if start < 0:
                keep = max(pos, len(buffer) - (len(UL_PREFIX) - 1))  # a prefix may be torn
                self.counters.skipped_bytes += keep - pos
                pos = keep
                break
            self.counters.skipped_bytes += start - pos
            pos = start
            if len(buffer) - pos < KEY_LENGTH + 1:
                break  # the key or its length is still on its way
            try:
                length, value_start = ber_length(buffer, pos + KEY_LENGTH)
            except KlvError as error:
                if str(error) == "length truncated":
                    break
                self._skip_false_start(pos, "bad_length")
                pos += 1
                continue
            if length > MAX_PACKET_BYTES:
                self._skip_false_start(pos, "oversize")
                pos += 1
                continue
            end = value_start + length
            if end > len(buffer):
                break  # the rest comes with the next piece
            packet = bytes(buffer[pos:end])
            packets.append(KlvPacket(packet[:KEY_LENGTH], packet[value_start - pos :], packet))
            self.counters.packets += 1
            pos = end
        del buffer[:pos]
        return packets

    def flush(self) -> None:
        """Drop what is pending (a stream that ended or was reopened): counted as skipped."""
        self.counters.skipped_bytes += len(self._pending)
        self._pending.clear()

    def _skip_false_start(self, pos: int, reason: str) -> None:
        setattr(self.counters, reason, getattr(self.counters, reason) + 1)
        self.counters.skipped_bytes += 1
