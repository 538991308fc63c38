"""What goes wrong between a drone and the post, applied to a replay's frames.

The vehicle's own faults change what frames say: a GPS that loses its fix
(GPS_RAW_INT with fix_type 0), a clock that jumps (SYSTEM_TIME's UTC shifted
from then on). The link's faults change which frames arrive, when and how:
random loss, bursts of loss (a two-state Gilbert model: a burst starts with
some probability per frame and lasts a geometric number of frames), link cuts
of N seconds, corrupted bytes, duplicated and reordered frames, and latency
with jitter. Every fault is drawn from one seeded generator, so a run is
reproducible, and counted, so a test can check the receiver's own counts
against what was done.

Times in a `FaultConfig` are seconds from the first frame of the log.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from sim_hw.rewrite import decode, with_fields
from sim_hw.tlog import Frame

GPS_RAW_INT = 24
SYSTEM_TIME = 2
UNKNOWN_ACCURACY = 65535  # UINT16_MAX: eph/epv unknown
Window = tuple[float, float]  # (start s, duration s)


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    loss: float = Field(default=0.0, ge=0, le=1)  # each frame lost with this probability
    burst_start: float = Field(default=0.0, ge=0, le=1)  # per frame: a burst of loss begins
    burst_mean_frames: float = Field(default=20.0, ge=1)  # mean length of a burst
    cuts: list[Window] = []  # the link is down: nothing arrives
    corrupt: float = Field(default=0.0, ge=0, le=1)  # a frame arrives with one byte changed
    duplicate: float = Field(default=0.0, ge=0, le=1)  # a frame arrives twice
    reorder: float = Field(default=0.0, ge=0, le=1)  # a frame arrives after its successor
    gps_dropouts: list[Window] = []  # the GPS reports no fix
    clock_jumps: list[tuple[float, float]] = []  # (at s, jump s): UTC jumps from then on
    latency_s: float = Field(default=0.0, ge=0)
    latency_jitter_s: float = Field(default=0.0, ge=0)  # standard deviation, never negative


def load_faults(path: str | Path) -> FaultConfig:
    with open(path, "rb") as f:
        return FaultConfig.model_validate(tomllib.load(f))


@dataclass
class FaultCounters:
    lost: int = 0  # random loss
    burst_lost: int = 0
    cut: int = 0
    corrupted: int = 0
    duplicated: int = 0
    reordered: int = 0
    gps_no_fix: int = 0  # GPS_RAW_INT frames turned into no-fix reports
    clock_jumped: int = 0  # SYSTEM_TIME frames shifted
    undecodable: int = 0  # frames a content fault could not rewrite, passed unchanged


def apply_faults(frames: list[Frame], config: FaultConfig,
                 counters: FaultCounters | None = None) -> list[Frame]:  # fmt: skip
    """The frames as they arrive after the vehicle's and the link's faults, in arrival order."""
    counters = counters if counters is not None else FaultCounters()
    if not frames:
        return []
    rng = np.random.default_rng(config.seed)
    start = frames[0].time
    altered = [_vehicle_faults(f, f.time - start, config, counters) for f in frames]
    arriving = _link_faults(altered, start, config, rng, counters)
    return _delayed(arriving, config, rng)


def _vehicle_faults(frame: Frame, t: float, config: FaultConfig, counters) -> Frame:
    if frame.msgid == GPS_RAW_INT and _inside(t, config.gps_dropouts):
        return _rewritten(frame, counters, "gps_no_fix", fix_type=0, satellites_visible=0,
                          eph=UNKNOWN_ACCURACY, epv=UNKNOWN_ACCURACY)  # fmt: skip
    jump = sum(size for at, size in config.clock_jumps if t >= at)
    if frame.msgid == SYSTEM_TIME and jump:
        message = decode(frame)
        if message is None:
            counters.undecodable += 1
            return frame
        shifted = message.time_unix_usec + round(jump * 1e6)
        return _rewritten(frame, counters, "clock_jumped", time_unix_usec=shifted)
    return frame


def _rewritten(frame: Frame, counters: FaultCounters, counter: str, **fields) -> Frame:
    try:
        changed = with_fields(frame, **fields)
    except ValueError:
        counters.undecodable += 1
        return frame
    setattr(counters, counter, getattr(counters, counter) + 1)
    return changed


def _link_faults(frames, start, config, rng, counters) -> list[Frame]:
    arriving: list[Frame] = []
    burst_left = 0
    for frame in frames:
        if _inside(frame.time - start, config.cuts):
            counters.cut += 1
            continue
        if burst_left == 0 and config.burst_start and rng.random() < config.burst_start:
            burst_left = int(rng.geometric(1.0 / config.burst_mean_frames))
        if burst_left:
            burst_left -= 1
            counters.burst_lost += 1
            continue
        if config.loss and rng.random() < config.loss:
            counters.lost += 1
            continue
        if config.corrupt and rng.random() < config.corrupt:
            frame = _corrupted(frame, rng)
            counters.corrupted += 1
        arriving.append(frame)
        if config.duplicate and rng.random() < config.duplicate:
            arriving.append(frame)
            counters.duplicated += 1
    k = 0
    while config.reorder and k < len(arriving) - 1:
        if rng.random() < config.reorder:
            first, second = arriving[k], arriving[k + 1]
            # The later frame goes out first, at the earlier time; so the send times
            # stay in order and only the frames' order changes.
            arriving[k] = dataclasses.replace(second, time=first.time)
            arriving[k + 1] = dataclasses.replace(first, time=second.time)
            counters.reordered += 1
            k += 1  # a swapped frame is not swapped again
        k += 1
    return arriving


def _corrupted(frame: Frame, rng) -> Frame:
    raw = bytearray(frame.raw)
    position = int(rng.integers(1, len(raw)))  # past the start marker, so it still frames
    raw[position] ^= int(rng.integers(1, 256))
    return dataclasses.replace(frame, raw=bytes(raw))


def _delayed(frames: list[Frame], config: FaultConfig, rng) -> list[Frame]:
    if not config.latency_s and not config.latency_jitter_s:
        return frames
    jitter = np.abs(rng.normal(0.0, config.latency_jitter_s, len(frames)))
    delayed = [dataclasses.replace(f, time=f.time + config.latency_s + float(j))
               for f, j in zip(frames, jitter, strict=True)]  # fmt: skip
    # A packet delayed more than its successor arrives after it, as on a real link.
    return sorted(delayed, key=lambda f: f.time)


def _inside(t: float, windows: list[Window]) -> bool:
    return any(start <= t < start + duration for start, duration in windows)
