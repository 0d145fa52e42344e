"""Part C: a patient-view call with no prefetch, answered from the local FHIR server.

The synthetic patient is loaded into sekmet-fhir beside the fixture patients. The call's wall time
(over HTTP to the running service) is set beside each query the service makes, timed alone with
the service's own FHIR client, pages followed. Queries run in parallel, so the call can approach
its slowest query; it cannot beat it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import requests

from benchmarks.http_bench import SERVICE_PATH
from benchmarks.integration import helper
from benchmarks.measure import Timings, interleaved
from benchmarks.synthetic import FIXTURES, SyntheticRequest
from service.cdshooks.prefetch import render_template
from service.cdshooks.request import parse_hook_request
from service.cdshooks.services import CdsService
from service.config import Settings
from service.fhir_client import FhirClient
from service.fixtures_load import load_fixtures, post_transaction, transaction_bundle


@dataclass(frozen=True)
class QueryTiming:
    key: str
    query: str
    timings: Timings
    pages: int
    resources: int


@dataclass(frozen=True)
class FallbackResult:
    size: int
    call: Timings
    parallel: Timings  # the service's fan-out of every query, without the service around it
    queries: list[QueryTiming]

    @property
    def slowest(self) -> QueryTiming:
        return max(self.queries, key=lambda q: q.timings.p50_ms)

    @property
    def one_after_another_ms(self) -> float:
        """What the queries would cost run one after another: the case parallelism avoids."""
        return sum(q.timings.p50_ms for q in self.queries)


@contextmanager
def local_fhir_server(workdir: Path) -> Iterator[Any]:
    """sekmet-fhir started as the integration tests start it; FhirServerUnavailable if it cannot."""
    process = helper("fhir_server_process")
    server = process.start_server(process.ensure_installed(process.fhir_venv()), workdir)
    try:
        yield server
    finally:
        server.stop()


def load_patients(server: Any, synthetic: SyntheticRequest, now: datetime) -> None:
    """The fixture patients (so searches have others to pass over) and the synthetic one."""
    load_fixtures(server.base_url, token=server.token, fixtures_dir=FIXTURES, now=now)
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": resource} for resource in synthetic.resources]}
    source = f"synthetic {synthetic.size}-resource patient"
    with requests.Session() as session:
        post_transaction(session, server.base_url,
                         transaction_bundle(bundle, base_url=server.base_url, source=source),
                         token=server.token, timeout_s=60.0, source=source)


def _topics(answer: dict[str, Any]) -> list[str]:
    return sorted(card["source"]["topic"]["code"] for card in answer["cards"])


def measure_fallback(service_url: str, server: Any, synthetic: SyntheticRequest, service: CdsService,
                     *, rounds: int) -> FallbackResult:
    body = helper("hook_calls").with_fhir_fallback(
        synthetic.body, fhir_server=server.base_url, token=server.token)
    raw = orjson.dumps(body)
    settings = Settings()
    client = FhirClient.from_settings(settings)
    request = parse_hook_request(body, service)
    queries = {key: render_template(template, request) for key, template in service.prefetch.items()}

    with requests.Session() as session:
        def call(payload: bytes = raw) -> dict[str, Any]:
            response = session.post(service_url + SERVICE_PATH, data=payload,
                                    headers={"Content-Type": "application/json"}, timeout=30)
            if response.status_code != 200:
                raise RuntimeError(f"the service answered {response.status_code}: {response.text[:300]}")
            return orjson.loads(response.content)

        expected = _topics(call(orjson.dumps(synthetic.body)))
        if _topics(call()) != expected:
            raise RuntimeError("the FHIR fallback answered other cards than the full prefetch")

        def fetch(query: str):
            return client.fetch(server.base_url, query, server.token)

        try:
            samples = {key: fetch(query) for key, query in queries.items()}
            timings = interleaved(
                [call, lambda: client.fetch_all(server.base_url, queries, server.token),
                 *(lambda q=q: fetch(q) for q in queries.values())],
                max_rounds=rounds)
        finally:
            client.close()
    return FallbackResult(
        synthetic.size,
        timings[0],
        timings[1],
        [QueryTiming(key, query, t, samples[key].pages, len(samples[key].resources))
         for (key, query), t in zip(queries.items(), timings[2:], strict=True)],
    )
