"""HQ's end-to-end acknowledgement to a node: which of its batch numbers the store holds.

After every commit HQ tells each node whose batches it committed (or found
already committed) the seqs its store holds, as sorted disjoint ranges
`[low, high]` (both ends included): the first range ends at the highest
contiguous seq HQ knows of, the others are what it holds above that. The node
deletes a batch from its outbox only when its seq is in such a message; a
batch the broker accepted but HQ never confirmed is sent again.

The ranges are kept to `MAX_RANGES`, the newest: a node whose batches fell out
(confirmations lost with a crashing broker, say) sends them again after its
timeout, HQ finds them already stored and names them once more.
"""

from __future__ import annotations

import bisect
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from wire.messages import SCHEMA_VERSION, Name, check_version

MAX_RANGES = 256
Seq = Annotated[int, Field(ge=0, le=2**63 - 1)]


class Delivered(BaseModel):
    """The seqs of `site`/`node` that HQ's store holds, as of `time` (UTC s at HQ)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    schema_version: str = SCHEMA_VERSION
    kind: Literal["delivered"] = "delivered"
    site: Name
    node: Name
    time: float
    ranges: list[tuple[Seq, Seq]] = Field(max_length=MAX_RANGES)

    @model_validator(mode="after")
    def _sorted_and_disjoint(self):
        check_version(self.schema_version)
        previous = -2
        for low, high in self.ranges:
            if low > high or low <= previous + 1:
                raise ValueError("ranges must be sorted, disjoint, not adjacent, low <= high")
            previous = high
        return self

    def holds(self, seq: int) -> bool:
        return SeqRanges(self.ranges).holds(seq)


class SeqRanges:
    """A set of sequence numbers kept as sorted disjoint ranges, merged as numbers arrive."""

    def __init__(self, ranges: list[tuple[int, int]] | None = None,
                 max_ranges: int = MAX_RANGES):  # fmt: skip
        self.max_ranges = max_ranges
        self._lows: list[int] = [low for low, _ in ranges or []]
        self._highs: list[int] = [high for _, high in ranges or []]

    def add(self, seq: int) -> bool:
        """Hold `seq`; False if it was held already."""
        i = bisect.bisect_right(self._lows, seq) - 1  # the range starting at or below seq
        if i >= 0 and seq <= self._highs[i]:
            return False
        joins_left = i >= 0 and self._highs[i] == seq - 1
        joins_right = i + 1 < len(self._lows) and self._lows[i + 1] == seq + 1
        if joins_left and joins_right:
            self._highs[i] = self._highs.pop(i + 1)
            self._lows.pop(i + 1)
        elif joins_left:
            self._highs[i] = seq
        elif joins_right:
            self._lows[i + 1] = seq
        else:
            self._lows.insert(i + 1, seq)
            self._highs.insert(i + 1, seq)
        if len(self._lows) > self.max_ranges:  # the oldest go: see the module's docstring
            del self._lows[0], self._highs[0]
        return True

    def holds(self, seq: int) -> bool:
        i = bisect.bisect_right(self._lows, seq) - 1
        return i >= 0 and seq <= self._highs[i]

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self._lows, self._highs, strict=True))

    def __len__(self) -> int:
        return len(self._lows)


def encode(message: Delivered) -> bytes:
    return message.model_dump_json().encode()


def decode(payload: bytes) -> Delivered:
    """The acknowledgement in `payload`; ValueError (pydantic's) when it is not one."""
    return Delivered.model_validate_json(payload)
