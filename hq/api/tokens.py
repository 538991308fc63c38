"""API bearer tokens: created by an admin command, stored hashed in the Store, checked on
every request.

A token reads `dw_<id>_<secret>`. The id (public, 8 hex digits) finds the row;
the secret (32 random bytes) is stored only as its sha256 and compared with
`hmac.compare_digest`. A leaked database therefore yields no usable token, and
the plain token is shown once, when it is created. Creating and revoking are
audited, each in the transaction that makes the change.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from hq.store.interface import Store
from hq.store.records import ApiToken

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

    @classmethod
    def of(cls, token: ApiToken) -> TokenRecord:
        return cls(token.token_id, token.name, Role(token.role), token.created_at,
                   token.expires_at, token.revoked_at)  # fmt: skip


class TokenRejected(Exception):
    """Why a presented token does not authenticate (the message is safe to show)."""


class TokenStore:
    """The tokens of `store`; `actor` is who the audit log names for creations and
    revocations (the admin command passes the operating-system user)."""

    def __init__(self, store: Store, actor: str = "system"):
        self.store = store
        self.actor = actor

    def create(self, name: str, role: Role | str, expires_at: float | None = None,
               now: float | None = None) -> tuple[str, TokenRecord]:  # fmt: skip
        """A new token for `name`: (the plain token, to show once; its record)."""
        now = time.time() if now is None else now
        role = Role(role)
        if not name or len(name) > 64 or not name.isprintable():
            raise ValueError("a token's name is 1 to 64 printable characters")
        if expires_at is not None and expires_at <= now:
            raise ValueError("a token's expiry must be in the future")
        token_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        record = ApiToken(token_id, name, str(role), now, expires_at)
        self.store.add_token(record, _digest(secret), self.actor)
        return f"{PREFIX}_{token_id}_{secret}", TokenRecord.of(record)

    def revoke(self, name_or_id: str, now: float | None = None) -> int:
        """Revoke the active tokens with this name or id; how many were revoked."""
        return self.store.revoke_tokens(name_or_id, self.actor,
                                        time.time() if now is None else now)  # fmt: skip

    def tokens(self) -> list[TokenRecord]:
        return [TokenRecord.of(t) for t in self.store.tokens()]

    def verify(self, token: str, now: float | None = None) -> TokenRecord:
        """The record of a valid token; TokenRejected saying why otherwise."""
        now = time.time() if now is None else now
        prefix, _, rest = token.partition("_")
        token_id, _, secret = rest.partition("_")
        if prefix != PREFIX or not token_id or not secret:
            raise TokenRejected("malformed token")
        found = self.store.token(token_id)  # one query: every API request passes here
        # Compare even when the id is unknown, so both cases take the same time.
        stored = found[1] if found else "0" * 64
        if not hmac.compare_digest(_digest(secret), stored) or found is None:
            raise TokenRejected("unknown token")
        record = TokenRecord.of(found[0])
        if record.revoked_at is not None:
            raise TokenRejected("token revoked")
        if record.expires_at is not None and now >= record.expires_at:
            raise TokenRejected("token expired")
        return record


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
