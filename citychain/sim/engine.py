"""Event heap keyed (time, sequence): ties break first-in, first-out, as in SimPy.

Time is integer nanoseconds, so a run never depends on float rounding.
"""

from __future__ import annotations

from heapq import heappop, heappush
from itertools import count
from typing import Callable


class Engine:
    def __init__(self):
        self.heap: list = []
        self.now = 0
        self.processed = 0
        self.counter = count(1)  # the tie-breaker: events at the same time run in insertion order
        self._timers: dict[tuple[str, str], int] = {}
        self.until = float("inf")  # may be lowered while running (e.g. once the workload ends)
        self.settled = None  # optional () -> bool, asked now and then once ``until`` is set

    def at(self, time: int, fn: Callable, arg) -> None:
        """Call ``fn(arg, time)`` at virtual ``time``."""
        heappush(self.heap, (time, next(self.counter), fn, arg))

    def start_timer(self, key: tuple[str, str], time: int, fire: Callable[[str, str, int], None]) -> None:
        """Arm timer ``key`` (replacing any armed one) to call ``fire(node, name, time)``."""
        token = next(self.counter)
        self._timers[key] = token
        heappush(self.heap, (time, token, self._fire, (key, token, fire)))

    def cancel_timer(self, key: tuple[str, str]) -> None:
        self._timers.pop(key, None)

    def cancel_timers_of(self, owner: str) -> None:
        """Cancel every timer whose key starts with ``owner`` (a crashed node's)."""
        for key in [k for k in self._timers if k[0] == owner]:
            del self._timers[key]

    def _fire(self, arg, time: int) -> None:
        key, token, fire = arg
        if self._timers.get(key) == token:
            del self._timers[key]
            fire(key[0], key[1], time)

    def run(self, progress: Callable[[int], None] | None = None, every: int = 20_000) -> None:
        """Process events in order until none are left or the next is past ``until``."""
        heap = self.heap
        count = 0
        while heap:
            if heap[0][0] > self.until:
                break
            time, _, fn, arg = heappop(heap)
            self.now = time
            fn(arg, time)
            count += 1
            if not count & 1023 and self.until != float("inf") and self.settled is not None and self.settled():
                break
            if progress is not None and count % every == 0:
                progress(time)
        self.processed += count
