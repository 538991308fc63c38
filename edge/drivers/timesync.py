"""Autopilot boot time to UTC.

Autopilots stamp their messages with time_boot_ms, milliseconds since their
own boot. SYSTEM_TIME pairs that boot time with UTC (time_unix_usec, from the
GPS) taken at the same instant on the vehicle, so unix - boot is the offset
between the two clocks, free of link latency. Its samples jitter (the GPS time
is interpolated between fixes), so the offset is the median of the last few.

Before the GPS knows the time (time_unix_usec 0) the offset comes from arrival
times instead: arrival - boot is the offset plus the link latency, and latency
is never negative, so the smallest value over a few seconds is the offset plus
the shortest latency; the configured latency is taken off.

Jumps: boot time going backwards is a reboot (the offset is learnt anew); an
offset that moves by more than `jump_threshold` (the GPS time appears, or the
vehicle's clock is set) is reported so that the caller can drop history
stamped with the old offset. Once `confirm` samples are in, a lone outlier
never moves the offset: a new value is taken only when `confirm` samples in a
row agree on it.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

# Boot stamps of different message types step back by up to ~0.2 s in real
# ArduPilot logs (each is stamped when it is built); a reboot steps back far more.
REBOOT_SLACK_S = 1.0
EARLIEST_UTC = 1_420_070_400.0  # 2015-01-01: an earlier "UTC" is a clock not yet set

REBOOT = "reboot"
JUMP = "jump"


class TimeSync:
    """One vehicle's boot-time to UTC mapping."""

    def __init__(self, latency: float = 0.05, window: int = 15, jump_threshold: float = 1.0,
                 confirm: int = 3, arrival_window: float = 10.0):  # fmt: skip
        self.latency = latency
        self.jump_threshold = jump_threshold
        self.confirm = confirm
        self._system: deque[float] = deque(maxlen=window)  # unix - boot samples
        self._suspects: list[float] = []
        self._median: float | None = None  # of _system, kept up to date
        self._arrival = _WindowMin(arrival_window)
        self._last_boot: float | None = None
        self.offset: float | None = None  # UTC = boot + offset
        self.source = "none"  # "system_time", "arrival" or "none"
        self.outliers = 0

    def to_utc(self, boot: float) -> float | None:
        return None if self.offset is None else boot + self.offset

    def observe_boot(self, boot: float, arrival: float) -> str | None:
        """A message of the autopilot with its boot time; REBOOT, JUMP or None."""
        before = self.offset
        rebooted = self._check_reboot(boot)
        self._arrival.add(arrival, arrival - boot)
        return self._settle(before, rebooted)

    def observe_system_time(self, boot: float, unix: float, arrival: float) -> str | None:
        """A SYSTEM_TIME (boot s, UTC s; UTC before 2015 means not known yet)."""
        before = self.offset
        rebooted = self._check_reboot(boot)
        self._arrival.add(arrival, arrival - boot)
        if unix >= EARLIEST_UTC:
            self._add_system_sample(unix - boot)
        return self._settle(before, rebooted)

    def _check_reboot(self, boot: float) -> bool:
        rebooted = self._last_boot is not None and boot < self._last_boot - REBOOT_SLACK_S
        if rebooted:
            self._system.clear()
            self._suspects.clear()
            self._median = None
            self._arrival.clear()
        if rebooted or self._last_boot is None or boot > self._last_boot:
            self._last_boot = boot
        return rebooted

    def _add_system_sample(self, sample: float) -> None:
        # The first samples are taken as they come (usually right, and far better
        # than arrival times); should one be wrong, the next ones outvote it.
        if len(self._system) < self.confirm or abs(sample - self._median) <= self.jump_threshold:
            self._suspects.clear()
            self._system.append(sample)
        else:
            self._suspect(sample)
        self._median = statistics.median(self._system)

    def _suspect(self, sample: float) -> None:
        """An offset far from the median: an outlier, or the first of a jump."""
        self.outliers += 1
        self._suspects.append(sample)
        if len(self._suspects) < self.confirm:
            return
        if max(self._suspects) - min(self._suspects) <= self.jump_threshold:
            self._system.clear()
            self._system.extend(self._suspects)
        self._suspects.clear()

    def _settle(self, before: float | None, rebooted: bool) -> str | None:
        """Recompute the offset; say whether it rebooted or jumped."""
        if self._median is not None:
            self.offset, self.source = self._median, "system_time"
        elif self._arrival.value is not None:
            self.offset, self.source = self._arrival.value - self.latency, "arrival"
        else:
            self.offset, self.source = None, "none"
        if rebooted:
            return REBOOT
        if before is not None and self.offset is not None:
            if abs(self.offset - before) > self.jump_threshold:
                return JUMP
        return None


class _WindowMin:
    """Minimum over the last one to two spans of time, in constant time per sample."""

    def __init__(self, span: float):
        self.span = span
        self.clear()

    def clear(self) -> None:
        self._start: float | None = None
        self._current = math.inf
        self._previous = math.inf

    def add(self, t: float, value: float) -> None:
        if self._start is None or t - self._start >= self.span:
            recent = self._start is not None and t - self._start < 2 * self.span
            self._previous = self._current if recent else math.inf
            self._current = math.inf
            self._start = t
        self._current = min(self._current, value)

    @property
    def value(self) -> float | None:
        smallest = min(self._current, self._previous)
        return None if smallest == math.inf else smallest
