"""Part B: the service over loopback HTTP beside the framework floor, same gunicorn, same load."""

from __future__ import annotations

from dataclasses import dataclass

import orjson
import requests

from benchmarks.loadgen import LoadResult, run_load

SERVICE_PATH = "/cds-services/spinehip-patient-view"


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


def _load(base_url: str, raw: bytes, load: HttpLoad) -> LoadResult:
    url = base_url + SERVICE_PATH
    # Warm-up reaches every worker (first requests pay for imports and caches), then the run.
    run_load(url, raw, concurrency=load.concurrency, max_requests=load.warmup_requests,
             max_seconds=load.max_seconds, check=_has_cards)
    return run_load(url, raw, concurrency=load.concurrency, max_requests=load.max_requests,
                    max_seconds=load.max_seconds, check=_has_cards)


def measure_http(service_url: str, floor_url: str, raw: bytes, size: int, load: HttpLoad) -> HttpResult:
    floor = _load(floor_url, raw, load)
    service = _load(service_url, raw, load)
    return HttpResult(size, len(raw), load.concurrency, service, floor)
