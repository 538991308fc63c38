"""Affiliation: what an operator says a track is to us. One vocabulary for the API and the
TAK export, whose CoT type carries it as the MIL-STD-2525 standard identity letter."""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class Affiliation(StrEnum):
    """Every detected object is of unknown affiliation until an operator says otherwise."""

    UNKNOWN = "unknown"
    PENDING = "pending"
    ASSUMED_FRIEND = "assumed_friend"
    FRIEND = "friend"
    NEUTRAL = "neutral"
    SUSPECT = "suspect"
    HOSTILE = "hostile"


COT_IDENTITY = MappingProxyType({
    Affiliation.UNKNOWN: "u", Affiliation.PENDING: "p", Affiliation.ASSUMED_FRIEND: "a",
    Affiliation.FRIEND: "f", Affiliation.NEUTRAL: "n", Affiliation.SUSPECT: "s",
    Affiliation.HOSTILE: "h",
})  # fmt: skip
