"""The audit log's hash chain: what a row's hash covers, and how a chain is checked.

Backend-neutral on purpose: a store keeps the rows, this module decides what
is hashed, so the SQLite store and a later PostgreSQL one write and verify the
same chain.

A row's hash is sha256 over its predecessor's hash and the canonical JSON of
its own fields (seq, time, actor, action, details). With the seq and the
predecessor's hash inside every hash:

- an edited row no longer matches its own hash;
- a deleted row leaves a gap in seq and a successor that points at a hash
  which is not its predecessor's;
- a swapped pair fails on seq and on the hash link.

A chain cannot show on its own that its newest rows were cut off. An anchor
closes that gap: a head hash noted outside the database earlier (the
`audit-verify` command prints it), which must still be in the chain.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64  # the "previous hash" of the very first row


@dataclass(frozen=True)
class AuditEntry:
    seq: int  # 1, 2, 3, ... with no gaps
    time: float  # UTC s
    actor: str  # the operator, or "system" for the store's own actions
    action: str  # dotted name, e.g. "alert.acknowledge"
    details: str  # canonical JSON text; hashed as stored, so verifying never re-encodes
    prev_hash: str
    hash: str

    def details_dict(self) -> dict[str, Any]:
        return json.loads(self.details)


@dataclass(frozen=True)
class ChainStart:
    """Where a chain begins: seq 1 after GENESIS, or just after a retention cut."""

    seq: int = 1
    prev_hash: str = GENESIS


@dataclass(frozen=True)
class AuditVerification:
    ok: bool
    rows_checked: int
    first_bad_seq: int | None = None  # the first row that fails, or where a missing one was due
    reason: str = ""
    head_seq: int | None = None  # the newest row that verified
    head_hash: str | None = None  # note it somewhere else to detect a cut-off tail later


def canonical_json(value: Any) -> str:
    """One spelling per value: sorted keys, no spaces, no NaN (it has no JSON form)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)  # fmt: skip


def entry_hash(prev_hash: str, seq: int, time: float, actor: str, action: str,
               details: str) -> str:  # fmt: skip
    body = canonical_json({"seq": seq, "time": time, "actor": actor, "action": action,
                           "details": details})  # fmt: skip
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


def next_entry(start: ChainStart, time: float, actor: str, action: str,
               details: Mapping[str, Any]) -> AuditEntry:  # fmt: skip
    """The row that follows `start` (the head's seq + 1 and hash)."""
    if not actor or not action:
        raise ValueError("an audit row needs an actor and an action")
    # float(): an int time would hash as "5" but read back from a REAL column as "5.0".
    time = float(time)
    text = canonical_json(dict(details))
    digest = entry_hash(start.prev_hash, start.seq, time, actor, action, text)
    return AuditEntry(start.seq, time, actor, action, text, start.prev_hash, digest)


def verify_chain(entries: Iterable[AuditEntry], start: ChainStart = ChainStart(),
                 anchor: str | None = None) -> AuditVerification:  # fmt: skip
    """Walk `entries` in seq order from `start`; the first row that breaks the chain."""
    expected = start
    checked = 0
    head: AuditEntry | None = None
    anchor_seen = anchor is None
    for entry in entries:
        problem = _problem(entry, expected)
        if problem:
            return _failed(checked, entry.seq, problem, head)
        checked += 1
        head = entry
        anchor_seen = anchor_seen or entry.hash == anchor
        expected = ChainStart(entry.seq + 1, entry.hash)
    if not anchor_seen:
        return _failed(checked, expected.seq,
                       f"the anchor {anchor} is not in the chain: rows at its end were "
                       "removed, or the anchor belongs to another log", head)  # fmt: skip
    return AuditVerification(True, checked, None, "", *_head(head))


def _problem(entry: AuditEntry, expected: ChainStart) -> str:
    if entry.seq != expected.seq:
        return (f"seq {entry.seq} where {expected.seq} was due: a row was deleted, "
                "inserted or moved")  # fmt: skip
    if entry.prev_hash != expected.prev_hash:
        return "its previous-hash does not match the row before it: rows were removed or swapped"
    try:
        recomputed = entry_hash(entry.prev_hash, entry.seq, entry.time, entry.actor,
                                entry.action, entry.details)  # fmt: skip
    except (TypeError, ValueError) as error:  # a field edited into something unhashable
        return f"its fields cannot be hashed ({error})"
    if recomputed != entry.hash:
        return "its contents do not match its hash: the row was edited"
    return ""


def _head(head: AuditEntry | None) -> tuple[int | None, str | None]:
    return (head.seq, head.hash) if head else (None, None)


def _failed(checked: int, seq: int, reason: str, head: AuditEntry | None) -> AuditVerification:
    return AuditVerification(False, checked, seq, reason, *_head(head))
