"""Part A: evaluation per request in process, beside the orjson floor and the naive path.

"Evaluation" is what the invoke view does between receiving the body and serialising the answer:
``parse_json_body`` (orjson and the depth check), ``parse_hook_request``, then ``answer_hook``
(prefetch resolution, rule evaluation, card rendering, response hygiene). The floor is
``orjson.loads`` of the same bytes: no service can answer faster than it reads its input. The
naive path parses the same bytes and builds a fhir.resources R4B model of every prefetched
resource; it stops there, so it is a lower bound on what validating everything would cost.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class

from benchmarks.measure import Timings, interleaved
from benchmarks.synthetic import synthetic_request
from service.cdshooks.request import parse_hook_request, parse_json_body
from service.cdshooks.services import CdsService, load_services
from service.cdshooks.sources import NoSource
from service.config import Settings
from service.engine import RuleSet, load_ruleset
from service.fhir_client import bundle_resources
from service.pipeline import answer_hook

HOOK = "patient-view"


@dataclass(frozen=True)
class Budget:
    """How long one size may be measured: rounds and seconds, whichever ends it first."""

    max_rounds: int
    max_seconds: float
    min_rounds: int = 5


@dataclass(frozen=True)
class SizeResult:
    size: int
    body_bytes: int
    cards: int
    floor: Timings
    evaluation: Timings
    naive: Timings

    @property
    def evaluation_over_floor(self) -> float:
        return self.evaluation.p50_ms / self.floor.p50_ms

    @property
    def naive_over_evaluation(self) -> float:
        return self.naive.p50_ms / self.evaluation.p50_ms


@dataclass(frozen=True)
class Engine:
    """The patient-view service and the compiled rule set, built once as the app factory does."""

    service: CdsService
    ruleset: RuleSet

    @classmethod
    def load(cls, settings: Settings | None = None) -> Engine:
        settings = settings or Settings()
        services = [s for s in load_services(settings.hooks_dir) if s.hook == HOOK]
        if not services:
            raise ValueError(f"no service in {settings.hooks_dir} answers {HOOK}")
        return cls(services[0], load_ruleset(settings.rules_dir))

    def answer(self, raw: bytes, now: datetime) -> dict[str, Any]:
        """The response body for one request body, by the invoke view's path."""
        request = parse_hook_request(parse_json_body(raw), self.service)
        return answer_hook(self.service, request, ruleset=self.ruleset, now=now,
                           source=NoSource()).body


def prefetched_resources(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for value in (body.get("prefetch") or {}).values():
        if not isinstance(value, dict):
            continue
        if value.get("resourceType") == "Bundle":
            yield from bundle_resources(value)[0]
        else:
            yield value


def validate_everything(raw: bytes) -> int:
    """The naive path: parse, then an R4B model of every prefetched resource; returns the count."""
    count = 0
    for resource in prefetched_resources(orjson.loads(raw)):
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        count += 1
    return count


def measure_size(engine: Engine, size: int, now: datetime, budget: Budget) -> SizeResult:
    """Floor, evaluation and naive path of one request, timed round-robin."""
    raw = orjson.dumps(synthetic_request(size, now).body)
    cards = len(engine.answer(raw, now)["cards"])
    if validate_everything(raw) != size:
        raise RuntimeError(f"the {size}-resource request does not hold {size} resources")
    floor, evaluation, naive = interleaved(
        [lambda: orjson.loads(raw), lambda: engine.answer(raw, now), lambda: validate_everything(raw)],
        max_rounds=budget.max_rounds, max_seconds=budget.max_seconds, min_rounds=budget.min_rounds,
    )
    return SizeResult(size, len(raw), cards, floor, evaluation, naive)
