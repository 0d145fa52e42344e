"""Part B: the service over loopback HTTP beside the framework floor, same gunicorn, same load.

The two take turns in short rounds rather than one long run each: other work on a shared machine
comes and goes, and alternating spreads it over both, so their ratio holds steadier.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import requests

from benchmarks.loadgen import LoadResult, combined, run_load

SERVICE_PATH = "/cds-services/spinehip-patient-view"
ROUNDS = 6  # turns each endpoint takes; its requests and seconds are shared out between them


@dataclass(frozen=True)
class HttpLoad:
    concurrency: int
    max_requests: int
    max_seconds: float
    warmup_requests: int


@dataclass(frozen=True)
class HttpResult:
    size: int
    body_bytes: int
    concurrency: int
    service: LoadResult
    floor: LoadResult

    @property
    def throughput_ratio(self) -> float:
        return self.service.throughput / self.floor.throughput


def _has_cards(response: requests.Response) -> str | None:
    try:
        cards = orjson.loads(response.content).get("cards")
    except (orjson.JSONDecodeError, AttributeError):
        return "answer is not a JSON object"
    return None if isinstance(cards, list) and cards else "answer has no cards"


def measure_http(service_url: str, floor_url: str, raw: bytes, size: int, load: HttpLoad) -> HttpResult:
    urls = {"floor": floor_url + SERVICE_PATH, "service": service_url + SERVICE_PATH}
    # Warm-up reaches every worker (first requests pay for imports and caches), then the rounds.
    for url in urls.values():
        run_load(url, raw, concurrency=load.concurrency, max_requests=load.warmup_requests,
                 max_seconds=load.max_seconds, check=_has_cards)
    rounds: dict[str, list[LoadResult]] = {name: [] for name in urls}
    for _ in range(ROUNDS):
        for name, url in urls.items():
            rounds[name].append(run_load(
                url, raw, concurrency=load.concurrency,
                max_requests=max(1, load.max_requests // ROUNDS),
                max_seconds=load.max_seconds / ROUNDS, check=_has_cards))
    return HttpResult(size, len(raw), load.concurrency, combined(rounds["service"]),
                      combined(rounds["floor"]))
