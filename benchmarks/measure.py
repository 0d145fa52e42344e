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


def time_calls(
    fn: Callable[[], object], *, max_count: int, max_seconds: float, min_count: int = 5, warmup: int = 2
) -> Timings:
    """Call ``fn`` until ``max_count`` samples or ``max_seconds`` (but at least ``min_count``).

    A collection runs first so garbage left by the previous measurement is not charged to this
    one; the collector stays on, as it is in the service.
    """
    for _ in range(warmup):
        fn()
    gc.collect()
    samples: list[float] = []
    deadline = time.perf_counter() + max_seconds
    while len(samples) < max_count and (len(samples) < min_count or time.perf_counter() < deadline):
        samples.append(timed(fn))
    return Timings(tuple(samples))


def interleaved(
    calls: Sequence[Callable[[], object]], *, rounds: int, warmup: int = 1
) -> list[Timings]:
    """Time several calls round-robin, so a slow moment of the machine hits all of them alike."""
    for _ in range(warmup):
        for fn in calls:
            fn()
    samples: list[list[float]] = [[] for _ in calls]
    for _ in range(rounds):
        for index, fn in enumerate(calls):
            samples[index].append(timed(fn))
    return [Timings(tuple(s)) for s in samples]
