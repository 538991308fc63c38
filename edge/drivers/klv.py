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

from collections.abc import Callable
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


def plausible_key(key: bytes) -> bool:
    """A SMPTE Universal Label's fixed structure: the prefix, a category designator of 1-4
    (dictionaries, groups, wrappers, labels) and the structure designator 1."""
    return key[:4] == UL_PREFIX and 1 <= key[4] <= 4 and key[6] == 0x01


@dataclass
class SplitterCounters:
    packets: int = 0
    skipped_bytes: int = 0  # not part of any packet: garbage, cell headers, torn packets
    torn: int = 0  # a packet cut short: a new unit began with a key before it was whole
    oversize: int = 0  # a claimed length past MAX_PACKET_BYTES: the key taken for garbage
    bad_length: int = 0  # a BER length that does not parse
    refused: dict[str, int] = field(default_factory=dict)  # reason -> packets, searched again


class KlvSplitter:
    """Whole KLV packets out of a byte stream fed in arbitrary pieces.

    `check(packet)` says why a framed packet is not one (a bad checksum, items that do
    not parse), or None: a refused packet costs one byte, the search for the next key
    resuming right after its first, so that a packet whose length was damaged does not
    swallow the good packets behind it. Keys that cannot be Universal Labels are refused
    the same way.
    """

    def __init__(self, counters: SplitterCounters | None = None,
                 check: Callable[[KlvPacket], str | None] | None = None):  # fmt: skip
        self.counters = counters if counters is not None else SplitterCounters()
        self._check = check
        self._pending = bytearray()

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
        while (packet := self._next()) is not None:
            packets.append(packet)
        return packets

    def flush(self) -> None:
        """Drop what is pending (a stream that ended or was reopened): counted as skipped."""
        self.counters.skipped_bytes += len(self._pending)
        self._pending.clear()

    def _next(self) -> KlvPacket | None:
        """The next whole packet in the pending bytes, or None until more come."""
        buffer = self._pending
        pos, packet = 0, None
        while packet is None:
            start = buffer.find(UL_PREFIX, pos)
            if start < 0:
                pos = max(pos, len(buffer) - (len(UL_PREFIX) - 1))  # a prefix may be torn
                break
            pos = start
            if len(buffer) - pos < KEY_LENGTH + 1:
                break  # the key or its length is still on its way
            try:
                length, value_start = ber_length(buffer, pos + KEY_LENGTH)
            except KlvError as error:
                if str(error) == "length truncated":
                    break
                self.counters.bad_length += 1
                pos += 1
                continue
            if length > MAX_PACKET_BYTES:
                self.counters.oversize += 1
                pos += 1
                continue
            end = value_start + length
            if end > len(buffer):
                break  # the rest comes with the next piece
            raw = bytes(buffer[pos:end])
            candidate = KlvPacket(raw[:KEY_LENGTH], raw[value_start - pos :], raw)
            problem = self._problem(candidate)
            if problem is not None:
                self.counters.refused[problem] = self.counters.refused.get(problem, 0) + 1
                pos += 1
                continue
            packet = candidate
        skipped = pos
        if packet is not None:
            pos += len(packet.raw)
            self.counters.packets += 1
        self.counters.skipped_bytes += skipped
        del buffer[:pos]
        return packet

    def _problem(self, packet: KlvPacket) -> str | None:
        if not plausible_key(packet.key):
            return "not_a_key"
        return None if self._check is None else self._check(packet)
