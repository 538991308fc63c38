"""The `[tak]` section of HQ's configuration: where and how often CoT goes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TakConfig(BaseModel):
    """The `[tak]` section of HQ's configuration."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str
    port: int = Field(ge=1, le=65535)
    mode: Literal["client"] = "client"  # HQ connects out to the TAK server or client
    period_s: float = Field(default=5.0, gt=0)
    stale_factor: float = Field(default=3.0, ge=1)  # events go stale after this many periods
    max_events: int = Field(default=2000, ge=1)  # per period; the newest tracks go first
    connect_timeout_s: float = Field(default=5.0, gt=0)
    send_timeout_s: float = Field(default=5.0, gt=0)
    backoff_min_s: float = Field(default=1.0, gt=0)
    backoff_max_s: float = Field(default=60.0, gt=0)
    altitude_sigma_m: float | None = Field(default=None, ge=0)  # le; None: unknown
    # A drone not heard from for this long is taken off TAK's map (its link or HQ's is down).
    drone_silence_s: float = Field(default=30.0, gt=0)
    uid_prefix: str = Field(default="dunewatch", min_length=1, max_length=32,
                            pattern=r"^[A-Za-z0-9_.-]+$")  # fmt: skip

    @model_validator(mode="after")
    def _backoff_order(self) -> TakConfig:
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("backoff_max_s must not be below backoff_min_s")
        return self

    @property
    def stale_s(self) -> float:
        return self.period_s * self.stale_factor
