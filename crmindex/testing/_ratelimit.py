"""The fakes' rate limits: a rolling window of ``limit`` requests per ``seconds`` (HubSpot's ten-second and
per-second search windows, Attio's reads and writes per second)."""

from __future__ import annotations

import collections
import threading
import time


class SlidingWindow:
    """``limit`` events per ``seconds`` (rolling); thread-safe."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit = limit
        self.seconds = seconds
        self._events: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def hit(self) -> tuple[bool, int]:
        """(allowed, remaining) for one more event now."""
        now = time.monotonic()
        with self._lock:
            while self._events and self._events[0] <= now - self.seconds:
                self._events.popleft()
            if len(self._events) >= self.limit:
                return False, 0
            self._events.append(now)
            return True, self.limit - len(self._events)

    def remaining(self) -> int:
        """What was left of the window at the last :meth:`hit` (only a hit drops the events that expired)."""
        return max(0, self.limit - len(self._events))
