"""A closed-loop HTTP load generator: N threads, each with a keep-alive ``requests.Session``.

Bounded in requests and in seconds, loopback only. The generator shares the machine's cores with
the server it measures, and it does so alike for every endpoint it is pointed at.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import requests

from benchmarks.measure import Timings


@dataclass(frozen=True)
class LoadResult:
    completed: int
    errors: int
    seconds: float
    latency: Timings
    first_error: str | None

    @property
    def throughput(self) -> float:
        """Successful requests per second over the whole run."""
        return self.completed / self.seconds


def combined(results: list[LoadResult]) -> LoadResult:
    """Several runs against one endpoint as one: requests and seconds added, latencies pooled."""
    return LoadResult(
        sum(r.completed for r in results), sum(r.errors for r in results),
        sum(r.seconds for r in results),
        Timings(tuple(t for r in results for t in r.latency.samples)),
        next((r.first_error for r in results if r.first_error), None),
    )


def run_load(
    url: str,
    body: bytes,
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
    headers: Mapping[str, str] | None = None,
    check: Callable[[requests.Response], str | None] | None = None,
) -> LoadResult:
    """POST ``body`` to ``url`` from ``concurrency`` threads until either bound is reached.

    ``check`` returns a problem with a response (counted as an error) or None.
    """
    if not url.startswith(("http://127.0.0.1:", "http://localhost:")):
        raise ValueError(f"the load generator only targets loopback, not {url}")
    sent_headers = {"Content-Type": "application/json", **(headers or {})}
    lock = threading.Lock()
    issued = 0
    latencies: list[float] = []
    problems: list[str] = []
    started = time.perf_counter()
    deadline = started + max_seconds

    def worker() -> None:
        nonlocal issued
        with requests.Session() as session:
            while True:
                with lock:
                    if issued >= max_requests or time.perf_counter() >= deadline:
                        return
                    issued += 1
                t0 = time.perf_counter()
                try:
                    response = session.post(url, data=body, headers=sent_headers, timeout=30)
                    problem = (f"HTTP {response.status_code}" if response.status_code != 200
                               else check(response) if check else None)
                except requests.RequestException as exc:
                    problem = type(exc).__name__
                elapsed = time.perf_counter() - t0
                with lock:
                    if problem is None:
                        latencies.append(elapsed)
                    else:
                        problems.append(problem)

    threads = [threading.Thread(target=worker, name=f"load-{i}") for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    if not latencies:
        raise RuntimeError(f"no request to {url} succeeded: {problems[0] if problems else 'none sent'}")
    return LoadResult(len(latencies), len(problems), seconds, Timings(tuple(latencies)),
                      problems[0] if problems else None)
