"""Rate limiters used by synchub's mock servers."""

import collections
import math
import time


class SlidingWindow:
    """At most `limit` accepted requests in any rolling `seconds` window."""

    def __init__(self, limit, seconds):
        self.limit = int(limit)
        self.seconds = float(seconds)
        self.accepted = collections.deque()

    def _trim(self, now):
        while self.accepted and now - self.accepted[0] >= self.seconds:
            self.accepted.popleft()

    def allow(self, now=None):
        now = time.time() if now is None else now
        self._trim(now)
        if len(self.accepted) >= self.limit:
            return False
        self.accepted.append(now)
        return True

    def remaining(self, now=None):
        now = time.time() if now is None else now
        self._trim(now)
        return max(0, self.limit - len(self.accepted))

    def reset_in(self, now=None):
        """Seconds until the oldest accepted request leaves the window."""
        now = time.time() if now is None else now
        self._trim(now)
        if not self.accepted:
            return 0.0
        return max(0.0, self.seconds - (now - self.accepted[0]))

    def retry_after(self, now=None):
        return max(1, math.ceil(self.reset_in(now)))


class TokenBucket:
    """`rate` tokens per second, burst of `rate` (at least 1)."""

    def __init__(self, rate):
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def allow(self):
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
