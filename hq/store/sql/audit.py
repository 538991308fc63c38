"""The audit log's rows: append, cut for retention, where the chain starts, verify.

The chain itself (hashing, verification) is hq/audit.py; this is only how its
rows live in a table. Appending reads the head, then writes after it: the
`audit` lock makes writers take turns, in one process or several. All
functions run inside the caller's transaction (or snapshot, for reads).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from hq.audit import AuditEntry, AuditVerification, ChainStart, next_entry, verify_chain
from hq.store.sql.db import Db

AUDIT_COLUMNS = "seq, time, actor, action, details, prev_hash, hash"


def append_audit(db: Db, actor: str, action: str, details: Mapping[str, Any],
                 when: float) -> AuditEntry:  # fmt: skip
    db.lock("audit")
    head = db.execute("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1").fetchone()
    entry = next_entry(ChainStart(head[0] + 1, head[1]) if head else ChainStart(),
                       when, actor, action, details)  # fmt: skip
    db.execute(f"INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
               [entry.seq, entry.time, entry.actor, entry.action, entry.details,
                entry.prev_hash, entry.hash])  # fmt: skip
    return entry


class AuditCut(NamedTuple):
    seq: int | None  # the last seq deleted
    rows: int
    hash: str | None  # that row's hash: the next row's previous-hash


NO_CUT = AuditCut(None, 0, None)


def cut_audit(db: Db, cutoff: float) -> AuditCut:
    """Delete the oldest rows from before `cutoff`.

    Only a prefix goes, so what stays is still one chain; the newest row always stays,
    so the chain keeps a head to continue from.
    """
    db.lock("audit")
    oldest, newest = db.execute("SELECT MIN(seq), MAX(seq) FROM audit_log").fetchone()
    young = db.execute("SELECT MIN(seq) FROM audit_log WHERE time >= ?", [cutoff]).fetchone()[0]
    if newest is None:
        return NO_CUT
    through = min(newest - 1, newest if young is None else young - 1)
    if through < oldest:
        return NO_CUT
    cut_hash = db.execute("SELECT hash FROM audit_log WHERE seq = ?", [through]).fetchone()[0]
    deleted = db.execute("DELETE FROM audit_log WHERE seq <= ?", [through]).rowcount
    return AuditCut(through, deleted, cut_hash)


def chain_start(db: Db) -> ChainStart:
    """Where the chain must start: after the newest retention cut, or at GENESIS."""
    rows = db.execute("SELECT details FROM audit_log WHERE action = 'store.purge' "
                      "ORDER BY seq DESC").fetchall()  # fmt: skip
    for (text,) in rows:
        try:
            details = json.loads(text)
            if details.get("audit_cut_seq") is not None:
                return ChainStart(details["audit_cut_seq"] + 1, details["audit_cut_hash"])
        except (TypeError, ValueError, KeyError, AttributeError):
            continue  # a mangled row; the walk reports it
    return ChainStart()


def audit_log(db: Db, after_seq: int, limit: int) -> list[AuditEntry]:
    rows = db.execute(f"SELECT {AUDIT_COLUMNS} FROM audit_log WHERE seq > ? ORDER BY seq "
                      "LIMIT ?", [after_seq, limit])  # fmt: skip
    return [AuditEntry(*row) for row in rows]


def verify_audit(db: Db, anchor: str | None) -> AuditVerification:
    """Walk the whole chain; `db` should be one snapshot (a purge may run meanwhile)."""
    start = chain_start(db)
    rows = db.execute(f"SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY seq")
    return verify_chain((AuditEntry(*row) for row in rows), start, anchor)
