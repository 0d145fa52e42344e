"""Replay protection for JWT ``jti`` values.

The in-memory cache suits one process; several replicas need a shared store (the database), which
only has to implement :class:`ReplayCache`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol


class ReplayCache(Protocol):
    """Remembers token ids until they can no longer be valid."""

    def first_use(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds); False if it was already recorded.

        Must be atomic: two concurrent calls with the same key may not both return True.
        """
        ...


class InMemoryReplayCache:
    """A per-process :class:`ReplayCache`; expired entries are purged as new ones arrive.

    With a ``capacity``, a new id that finds the cache full of live ids is refused: forgetting a
    spent id early would let its token be replayed.
    """

    def __init__(self, clock: Callable[[], float] = time.time, capacity: int | None = None) -> None:
        self._clock = clock
        self._capacity = capacity
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def first_use(self, key: str, expires_at: float) -> bool:
        now = self._clock()
        with self._lock:
            if now >= self._next_purge:
                self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
                self._next_purge = now + 60
            known = self._seen.get(key)
            if known is not None and known > now:
                return False
            if self._capacity is not None and len(self._seen) >= self._capacity:
                self._seen = {k: exp for k, exp in self._seen.items() if exp > now}
                if len(self._seen) >= self._capacity:
                    return False
            self._seen[key] = expires_at
            return True

    def __len__(self) -> int:
        return len(self._seen)
