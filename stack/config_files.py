"""Configuration files written by code (a deployment's, a benchmark's), from the same typed
models the processes load them into (`edge.config`, `hq.config`), through a TOML writer:
whatever a string holds is escaped, and a key the model does not know cannot be written.
"""

from __future__ import annotations

from pathlib import Path

import tomli_w
from pydantic import BaseModel


def config_toml(model: BaseModel) -> str:
    """The model as TOML that loads back to an equal model. Only what differs from the
    defaults is written, so the file says what this installation chose."""
    return tomli_w.dumps(model.model_dump(mode="json", exclude_defaults=True))


def write_config(path: str | Path, model: BaseModel, comment: str) -> Path:
    """Write the model's TOML to `path` under a comment saying what wrote it and why."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    heading = "".join(f"# {line}\n" for line in comment.splitlines())
    path.write_text(heading + config_toml(model))
    return path
