"""API bearer tokens: created by an admin command, stored hashed, checked on every request.

A token reads `dw_<id>_<secret>`. The id (public, 8 hex digits) finds the row;
the secret (32 random bytes) is stored only as its sha256 and compared with
`hmac.compare_digest`. A leaked database therefore yields no usable token, and
the plain token is shown once, when it is created.

The table lives in the API's own SQLite file (`[api] database`), apart from the
track store: the tokens are HQ's access control, not part of the fused picture.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import sqlite_utils

PREFIX = "dw"


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, required: Role) -> bool:
        """viewer < operator < admin: a role may do what every lower role may."""
        order = list(Role)
        return order.index(self) >= order.index(required)


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    name: str  # who acts: the name written to the audit log
    role: Role
    created_at: float
    expires_at: float | None = None
    revoked_at: float | None = None

    def active(self, now: float) -> bool:
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


class TokenRejected(Exception):
    """Why a presented token does not authenticate (the message is safe to show)."""


class TokenStore:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock = threading.Lock()  # one connection, shared by the API's worker threads
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db = sqlite_utils.Database(conn)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db["api_tokens"].create(
            {"token_id": str, "name": str, "role": str, "secret_sha256": str,
             "created_at": float, "expires_at": float, "revoked_at": float},
            pk="token_id", not_null={"name", "role", "secret_sha256", "created_at"},
            if_not_exists=True,
        )  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._db.conn.close()

    def create(self, name: str, role: Role | str, expires_at: float | None = None,
               now: float | None = None) -> tuple[str, TokenRecord]:  # fmt: skip
        """A new token for `name`: (the plain token, to show once; its record)."""
        now = time.time() if now is None else now
        role = Role(role)
        if not name or len(name) > 64 or not name.isprintable():
            raise ValueError("a token's name is 1 to 64 printable characters")
        if expires_at is not None and expires_at <= now:
            raise ValueError("a token's expiry must be in the future")
        with self._lock:
            if any(r.active(now) for r in self._records("name = ?", [name])):
                raise ValueError(f"an active token named {name!r} exists; revoke it first")
            token_id = secrets.token_hex(4)
            secret = secrets.token_urlsafe(32)
            self._db["api_tokens"].insert({
                "token_id": token_id, "name": name, "role": str(role),
                "secret_sha256": _digest(secret), "created_at": now, "expires_at": expires_at,
            })  # fmt: skip
        return f"{PREFIX}_{token_id}_{secret}", TokenRecord(token_id, name, role, now, expires_at)

    def revoke(self, name_or_id: str, now: float | None = None) -> int:
        """Revoke the active tokens with this name or id; how many were revoked."""
        now = time.time() if now is None else now
        with self._lock:
            return self._db.execute(
                "UPDATE api_tokens SET revoked_at = ? WHERE revoked_at IS NULL "
                "AND (name = ? OR token_id = ?)", [now, name_or_id, name_or_id]
            ).rowcount  # fmt: skip

    def tokens(self) -> list[TokenRecord]:
        with self._lock:
            return self._records(None, [])

    def verify(self, token: str, now: float | None = None) -> TokenRecord:
        """The record of a valid token; TokenRejected saying why otherwise."""
        now = time.time() if now is None else now
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not token_id or not secret:
            raise TokenRejected("malformed token")
        with self._lock:  # one query: every API request passes here
            row = self._db.execute(f"SELECT secret_sha256, {_RECORD_COLUMNS} FROM api_tokens "
                                   "WHERE token_id = ?", [token_id]).fetchone()  # fmt: skip
        # Compare even when the id is unknown, so both cases take the same time.
        stored = row[0] if row else "0" * 64
        if not hmac.compare_digest(_digest(secret), stored) or row is None:
            raise TokenRejected("unknown token")
        record = _record(row[1:])
        if record.revoked_at is not None:
            raise TokenRejected("token revoked")
        if record.expires_at is not None and now >= record.expires_at:
            raise TokenRejected("token expired")
        return record

    def _records(self, where: str | None, args: list) -> list[TokenRecord]:
        rows = self._db.execute(f"SELECT {_RECORD_COLUMNS} FROM api_tokens"
                                + (f" WHERE {where}" if where else "")
                                + " ORDER BY created_at", args)  # fmt: skip
        return [_record(row) for row in rows]


_RECORD_COLUMNS = "token_id, name, role, created_at, expires_at, revoked_at"


def _record(row) -> TokenRecord:
    token_id, name, role, created_at, expires_at, revoked_at = row
    return TokenRecord(token_id, name, Role(role), created_at, expires_at, revoked_at)


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
