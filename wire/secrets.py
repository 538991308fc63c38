"""How a configuration names a secret without holding it: an environment variable or a
file outside git. Shared by the edge's and HQ's configurations."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator


class SecretRef(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret is named by exactly one of env = ... or file = ...")
        return self

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
