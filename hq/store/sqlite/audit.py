"""The audit log's hash chain on SQLite: append, cut for retention, and where it starts.

The chain itself (hashing, verification) is hq/audit.py, shared by every backend;
this is only how its rows live in SQLite. All functions run inside the caller's
transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from typing import Any, NamedTuple

from hq.audit import AuditEntry, ChainStart, next_entry

AUDIT_COLUMNS = "seq, time, actor, action, details, prev_hash, hash"


def append_audit(conn: sqlite3.Connection, actor: str, action: str,
                  details: Mapping[str, Any], when: float) -> AuditEntry:  # fmt: skip
    head = conn.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    entry = next_entry(ChainStart(head[0] + 1, head[1]) if head else ChainStart(),
                       when, actor, action, details)  # fmt: skip
    conn.execute(f"INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                 [entry.seq, entry.time, entry.actor, entry.action, entry.details,
                  entry.prev_hash, entry.hash])  # fmt: skip
    return entry


class AuditCut(NamedTuple):
    seq: int | None  # the last seq deleted
    rows: int
    hash: str | None  # that row's hash: the next row's previous-hash


NO_CUT = AuditCut(None, 0, None)


def cut_audit(conn: sqlite3.Connection, cutoff: float) -> AuditCut:
    """Delete the oldest rows from before `cutoff`.

    Only a prefix goes, so what stays is still one chain; the newest row always stays,
    so the chain keeps a head to continue from.
    """
    oldest, newest = conn.execute("SELECT MIN(seq), MAX(seq) FROM audit_log").fetchone()
    young = conn.execute("SELECT MIN(seq) FROM audit_log WHERE time >= ?", [cutoff]).fetchone()[0]
    if newest is None:
        return NO_CUT
    through = min(newest - 1, newest if young is None else young - 1)
    if through < oldest:
        return NO_CUT
    cut_hash = conn.execute("SELECT hash FROM audit_log WHERE seq = ?", [through]).fetchone()[0]
    deleted = conn.execute("DELETE FROM audit_log WHERE seq <= ?", [through]).rowcount
    return AuditCut(through, deleted, cut_hash)


def chain_start(conn: sqlite3.Connection) -> ChainStart:
    """Where the chain must start: after the newest retention cut, or at GENESIS."""
    rows = conn.execute("SELECT details FROM audit_log WHERE action = 'store.purge' "
                        "ORDER BY seq DESC")  # fmt: skip
    for (text,) in rows:
        try:
            details = json.loads(text)
            if details.get("audit_cut_seq") is not None:
                return ChainStart(details["audit_cut_seq"] + 1, details["audit_cut_hash"])
        except (TypeError, ValueError, KeyError, AttributeError):
            continue  # a mangled row; the walk reports it
    return ChainStart()
