"""Timing loops bounded in count and in time, and the percentiles reported from them."""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Timings:
    """Samples of one measurement, in seconds."""

    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        if not self.samples:
            raise ValueError("a measurement needs at least one sample")

    @property
    def count(self) -> int:
        return len(self.samples)

    def percentile(self, q: float) -> float:
        """Nearest-rank percentile: with few samples p99 is the slowest, never an interpolation."""
        ordered = sorted(self.samples)
        rank = max(1, math.ceil(q / 100 * len(ordered)))
        return ordered[rank - 1]

    @property
    def p50_ms(self) -> float:
        return self.percentile(50) * 1000

    @property
    def p99_ms(self) -> float:
        return self.percentile(99) * 1000


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` took."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def interleaved(
    calls: Sequence[Callable[[], object]],
    *,
    max_rounds: int,
    max_seconds: float = float("inf"),
    min_rounds: int = 1,
    warmup: int = 1,
) -> list[Timings]:
    """Time several calls round-robin, so a busy moment of the machine hits all of them alike.

    Rounds stop at ``max_rounds`` or after ``max_seconds`` (but not before ``min_rounds``). A
    collection runs first so garbage left by earlier work is not charged here; the collector
    then stays on, as it is in the service.
    """
    for _ in range(warmup):
        for fn in calls:
            fn()
    gc.collect()
    samples: list[list[float]] = [[] for _ in calls]
    deadline = time.perf_counter() + max_seconds
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or time.perf_counter() < deadline):
        for index, fn in enumerate(calls):
            samples[index].append(timed(fn))
        rounds += 1
    return [Timings(tuple(s)) for s in samples]
