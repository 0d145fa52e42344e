"""Where the evaluation time goes: cProfile over repeated evaluations of one request size."""

from __future__ import annotations

import cProfile
import pstats
import sysconfig
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

from benchmarks.inprocess import Engine
from benchmarks.synthetic import synthetic_request
from service.config import PROJECT_ROOT

_LIBRARY_ROOTS = tuple(
    Path(p) for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"]}
)


@dataclass(frozen=True)
class ProfileLine:
    """One function: calls and time per request, and its share of the whole evaluation."""

    function: str
    calls_per_request: float
    cumulative_ms: float
    own_ms: float
    share: float


@dataclass(frozen=True)
class Profile:
    size: int
    requests: int
    total_ms: float  # per request, under the profiler (slower than unprofiled)
    by_cumulative: list[ProfileLine]
    by_own_time: list[ProfileLine]


def _where(filename: str, line: int, name: str) -> str:
    """``service/engine/facts.py:_take`` for project code, shorter paths for libraries."""
    if filename == "~":
        return name  # a built-in
    path = Path(filename)
    for root in (PROJECT_ROOT, *_LIBRARY_ROOTS):
        if path.is_relative_to(root):
            return f"{path.relative_to(root)}:{name}"
    return f"{path.name}:{name}"


def profile_size(engine: Engine, size: int, now: datetime, *, requests: int, top: int = 12) -> Profile:
    raw = orjson.dumps(synthetic_request(size, now).body)
    engine.answer(raw, now)  # imports and caches outside the profile
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        engine.answer(raw, now)
    profiler.disable()
    stats = pstats.Stats(profiler)
    entries = stats.stats  # type: ignore[attr-defined]  # (file, line, name) -> (cc, nc, tt, ct, callers)
    code = Engine.answer.__code__
    answer_key = (code.co_filename, code.co_firstlineno, code.co_name)
    total = entries[answer_key][3]

    def line(key: tuple[str, int, str]) -> ProfileLine:
        _, calls, own, cumulative, _ = entries[key]
        return ProfileLine(_where(*key), calls / requests, cumulative / requests * 1000,
                           own / requests * 1000, cumulative / total)

    inside = [k for k in entries if k != answer_key and entries[k][3] <= total]
    by_cumulative = sorted(inside, key=lambda k: entries[k][3], reverse=True)[:top]
    by_own = sorted(inside, key=lambda k: entries[k][2], reverse=True)[:top]
    return Profile(size, requests, total / requests * 1000,
                   [line(k) for k in by_cumulative], [line(k) for k in by_own])
