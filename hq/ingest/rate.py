"""A per-post rate limit at HQ ingest: no post may take more than its share of HQ's time.

One token bucket per post (its topic's site and node): `rate_per_s` tokens a
second, at most `burst` saved up, one token per message. A message that finds
its post's bucket empty is refused (ingest keeps a short dead letter of it and
counts it). A post is "limited" from its first refusal until `quiet_s` pass
without one: `limited_now` and `recovered` report those changes once each,
for the alert that tells operators which post floods HQ.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float  # UTC s


class PostRateLimit:
    def __init__(self, rate_per_s: float, burst: int, quiet_s: float = 60.0,
                 max_posts: int = 100_000):  # fmt: skip
        self.rate_per_s, self.burst, self.quiet_s = rate_per_s, float(burst), quiet_s
        self.max_posts = max_posts
        self._buckets: dict[str, _Bucket] = {}
        self._limited: dict[str, float] = {}  # post -> time of its last refusal

    def allow(self, post: str, now: float) -> bool:
        """Take one token of `post`'s bucket at `now`; False when it has none."""
        bucket = self._buckets.get(post)
        if bucket is None:
            if len(self._buckets) >= self.max_posts:  # junk topics must not grow this forever
                self._buckets.clear()
            bucket = self._buckets[post] = _Bucket(self.burst, now)
        elapsed = max(0.0, now - bucket.updated)
        bucket.tokens = min(self.burst, bucket.tokens + elapsed * self.rate_per_s)
        bucket.updated = max(bucket.updated, now)
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False

    def refused(self, post: str, now: float) -> bool:
        """Note a refusal of `post`; True if the post was not limited before (raise the alert)."""
        first = post not in self._limited
        self._limited[post] = now
        return first

    def recovered(self, now: float) -> list[str]:
        """Posts refused nothing for `quiet_s`: no longer limited (clear their alerts)."""
        quiet = [p for p, last in self._limited.items() if now - last >= self.quiet_s]
        for post in quiet:
            del self._limited[post]
        return quiet
