"""How a configuration names a secret without holding it: an environment variable or a
file outside git. Shared by the edge's and HQ's configurations.

A MAVLink signing key is 32 bytes: a file holds them raw (exactly 32 bytes, as
`head -c 32 /dev/urandom` writes them) or as 64 hexadecimal digits (spaces and a
newline around them allowed); an environment variable holds the hex digits."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

SIGNING_KEY_BYTES = 32


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret is named by exactly one of env = ... or file = ...")
        return self

    def read_bytes(self) -> bytes:
        """The secret as it is stored, unstripped: a file's bytes, a variable's UTF-8."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ValueError(f"environment variable {self.env} is not set")
            return value.encode()
        try:
            return self.file.read_bytes()
        except OSError as error:
            raise ValueError(f"cannot read secret file {self.file}: {error.strerror}") from error

    def read(self) -> str:
        """The secret, stripped; a clear error when it is not where the config says."""
        if self.env is not None:
            value = os.environ.get(self.env)
            if value is None:
                raise ValueError(f"environment variable {self.env} is not set")
            return value.strip()
        try:
            return self.file.read_text().strip()
        except OSError as error:
            raise ValueError(f"cannot read secret file {self.file}: {error.strerror}") from error


def secret(ref: SecretRef | None) -> str | None:
    return None if ref is None else ref.read()


def signing_key(ref: SecretRef | None) -> bytes | None:
    """The 32-byte key `ref` names (raw or hex, see above); a clear error for anything else."""
    if ref is None:
        return None
    where = f"environment variable {ref.env}" if ref.env is not None else f"file {ref.file}"
    return signing_key_of(ref.read_bytes(), where)


def signing_key_of(data: bytes, where: str) -> bytes:
    if len(data) == SIGNING_KEY_BYTES:
        return data  # raw: every byte counts, whitespace included
    text = data.strip()
    if len(text) == 2 * SIGNING_KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise ValueError(
        f"the signing key in {where} is neither {SIGNING_KEY_BYTES} raw bytes nor "
        f"{2 * SIGNING_KEY_BYTES} hex digits ({len(data)} bytes)"
    )
