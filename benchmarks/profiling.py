"""Where the time goes: cProfile over repeated calls, per request.

Two views: the evaluation alone (what part A times), and the whole request path inside Flask
(what part B serves: body checks, evaluation, snooze look-up, audit write, metrics, JSON logs),
driven through Flask's test client with the served configuration and a SQLite file.
cProfile slows call-heavy Python more than C code, so shares overstate pure-Python helpers.
"""

from __future__ import annotations

import cProfile
import logging
import os
import pstats
import sysconfig
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import CodeType

import orjson
from flask import Flask

from benchmarks.http_bench import SERVICE_PATH
from benchmarks.inprocess import Engine
from benchmarks.synthetic import synthetic_request
from service.app import create_app
from service.config import PROJECT_ROOT, Settings
from service.logging_setup import configure_logging

_LIBRARY_ROOTS = tuple(
    Path(p) for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["stdlib"]}
)
SERVICE_ROOT = PROJECT_ROOT / "service"
WRAPPER_SHARE = 0.98  # functions that wrap (nearly) the whole call say nothing about hot spots


@dataclass(frozen=True)
class ProfileLine:
    """One function: calls and time per request, and its share of the whole call."""

    function: str
    calls_per_request: float
    cumulative_ms: float
    own_ms: float
    share: float


@dataclass(frozen=True)
class Profile:
    title: str
    requests: int
    total_ms: float  # per request, under the profiler (slower than unprofiled)
    by_cumulative: list[ProfileLine]
    by_own_time: list[ProfileLine]


def _where(filename: str, line: int, name: str) -> str:
    """``service/engine/facts.py:_take`` for project code, shorter paths for libraries."""
    if filename == "~":
        return name  # a built-in
    path = Path(filename)
    for root in (*_LIBRARY_ROOTS, PROJECT_ROOT):
        if path.is_relative_to(root):
            return f"{path.relative_to(root)}:{name}"
    return f"{path.name}:{name}"


def _profile(title: str, call: Callable[[], object], root: CodeType, requests: int, top: int) -> Profile:
    """Profile ``requests`` calls; ``root`` is the function whose time is the whole call."""
    call()  # imports and caches outside the profile
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(requests):
        call()
    profiler.disable()
    entries = pstats.Stats(profiler).stats  # type: ignore[attr-defined]  # key -> (cc, nc, tt, ct, callers)
    total = entries[(root.co_filename, root.co_firstlineno, root.co_name)][3]

    def line(key: tuple[str, int, str]) -> ProfileLine:
        _, calls, own, cumulative, _ = entries[key]
        return ProfileLine(_where(*key), calls / requests, cumulative / requests * 1000,
                           own / requests * 1000, cumulative / total)

    inside = [k for k in entries if entries[k][3] < total * WRAPPER_SHARE]
    # Cumulative time ranks the service's own functions: library call chains repeat one cost.
    own_code = [k for k in inside if Path(k[0]).is_relative_to(SERVICE_ROOT)]
    by_cumulative = sorted(own_code, key=lambda k: entries[k][3], reverse=True)[:top]
    by_own = sorted(inside, key=lambda k: entries[k][2], reverse=True)[:top]
    return Profile(title, requests, total / requests * 1000,
                   [line(k) for k in by_cumulative], [line(k) for k in by_own])


def profile_evaluation(engine: Engine, size: int, now: datetime, *, requests: int, top: int = 12) -> Profile:
    raw = orjson.dumps(synthetic_request(size, now).body)
    return _profile(f"evaluation, {size} resources", lambda: engine.answer(raw, now),
                    Engine.answer.__code__, requests, top)


@contextmanager
def _json_logs_to_devnull(settings: Settings) -> Iterator[None]:
    """The served logging (JSON lines at the configured level), written nowhere, then undone."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    with open(os.devnull, "w") as sink:
        configure_logging(settings.log_level, stream=sink)
        try:
            yield
        finally:
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])


def profile_request_path(size: int, now: datetime, *, requests: int, top: int = 14) -> Profile:
    raw = orjson.dumps(synthetic_request(size, now).body)
    with tempfile.TemporaryDirectory(prefix="spinehip-bench-profile-") as tmp:
        settings = Settings.from_env({"SPINEHIP_DEMO_PATIENTS": "0",
                                      "DATABASE_URL": f"sqlite:///{Path(tmp) / 'spinehip.db'}"})
        with _json_logs_to_devnull(settings):
            app = create_app(settings)
            client = app.test_client()

            def call() -> None:
                response = client.post(SERVICE_PATH, data=raw, content_type="application/json")
                if response.status_code != 200:
                    raise RuntimeError(f"the service answered {response.status_code}")

            try:
                return _profile(f"whole request path in Flask, {size} resources", call,
                                Flask.wsgi_app.__code__, requests, top)
            finally:
                app.extensions["spinehip"].store.close()
