"""Prometheus metrics and the ``/metrics`` endpoint.

Views and components call the small ``observe_*``/``count_*`` functions below rather than touching
metric objects, so label names stay consistent. Under gunicorn each worker is its own process:
when ``PROMETHEUS_MULTIPROC_DIR`` names a writable directory (set before the service starts, and
emptied at each start), prometheus_client writes samples there and ``/metrics`` aggregates every
worker.

Every label value comes from a fixed set, never from request or FHIR-server text: each value is
a new series in every scrape and a new file per worker, so a caller able to choose one could grow
both without bound. Services are the ids the hook files declare (else ``unknown``), resource types
those of FHIR R4 (else ``other``), statuses the standard HTTP codes (else their class, ``5xx``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from flask import Blueprint, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

from service import metrics_dir
from service.engine.binding import EXCLUSION_REASONS, UNREADABLE
from service.fhir_spec import R4_RESOURCE_TYPES

OPERATION_OUTCOME = "fhir-operation-outcome"

# Seconds; CDS Hooks calls are meant to answer well under a second, FHIR reads a little slower.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "spinehip_request_seconds",
    "HTTP request latency by CDS service (empty for non-service routes) and status code.",
    ["service", "status"],
    buckets=LATENCY_BUCKETS,
)
RULE_EVALUATION_SECONDS = Histogram(
    "spinehip_rule_evaluation_seconds",
    "Time the rule engine took for one hook call.",
    ["service"],
    buckets=LATENCY_BUCKETS,
)
CARDS = Counter(
    "spinehip_cards_total",
    "Cards returned, by card topic (the rule id).",
    ["topic"],
)
SHADOW_DECISIONS = Counter(
    "spinehip_shadow_decisions_total",
    "Cards a rule in shadow mode would have returned.",
    ["rule"],
)
FHIR_REQUESTS = Counter(
    "spinehip_fhir_requests_total",
    "FHIR fallback reads by resource type and outcome (ok or error).",
    ["resource", "outcome"],
)
FHIR_SECONDS = Histogram(
    "spinehip_fhir_request_seconds",
    "FHIR fallback read latency by resource type.",
    ["resource"],
    buckets=LATENCY_BUCKETS,
)
RECORDS_EXCLUDED = Counter(
    "spinehip_records_excluded_total",
    "Records the EHR sent that were not evaluated, by reason (a fixed set), and the EHR's "
    "OperationOutcomes.",
    ["reason"],
)
RULE_RELOADS = Counter(
    "spinehip_rule_reloads_total",
    "Rule set reloads by result (success or failure).",
    ["result"],
)

# Every worker sees the same database and journal directory: the latest reading is the node's view.
DEGRADED = Gauge(
    "spinehip_degraded",
    "1 while the database is away or the local journal is being replayed (see /readyz for why).",
    ["dependency"],
    multiprocess_mode="livemostrecent",
)
JOURNAL_DEPTH = Gauge(
    "spinehip_journal_depth",
    "Audit and feedback records waiting in the local journal for the database.",
    ["dependency"],
    multiprocess_mode="livemostrecent",
)


def observe_store_health(*, degraded: bool, journal_depth: int) -> None:
    DEGRADED.labels(dependency="database").set(1 if degraded else 0)
    JOURNAL_DEPTH.labels(dependency="database").set(journal_depth)


_SERVICE_IDS: set[str] = set()
_STANDARD_STATUSES = frozenset(int(s) for s in HTTPStatus)


def declare_services(service_ids: Iterable[str]) -> None:
    """Make these ids label values; any other id in a request path is counted as ``unknown``."""
    _SERVICE_IDS.update(service_ids)


def _service_label(service_id: str | None) -> str:
    if service_id is None:
        return ""
    return service_id if service_id in _SERVICE_IDS else "unknown"


def _status_label(status: int) -> str:
    return str(status) if status in _STANDARD_STATUSES else f"{status // 100}xx"


def _resource_label(resource_type: str) -> str:
    return resource_type if resource_type in R4_RESOURCE_TYPES else "other"


def observe_request(service_id: str | None, status: int, seconds: float) -> None:
    REQUEST_SECONDS.labels(service=_service_label(service_id), status=_status_label(status)).observe(seconds)


def observe_rule_evaluation(service_id: str, seconds: float) -> None:
    RULE_EVALUATION_SECONDS.labels(service=_service_label(service_id)).observe(seconds)


def count_card(topic: str) -> None:
    CARDS.labels(topic=topic).inc()


def count_shadow_decision(rule_id: str) -> None:
    SHADOW_DECISIONS.labels(rule=rule_id).inc()


def observe_fhir_request(resource_type: str, seconds: float, *, error: bool) -> None:
    label = _resource_label(resource_type)
    FHIR_REQUESTS.labels(resource=label, outcome="error" if error else "ok").inc()
    FHIR_SECONDS.labels(resource=label).observe(seconds)


def observe_answer(
    service_id: str, *, card_rules: Iterable[str], shadow_rules: Iterable[str], seconds: float
) -> None:
    """Everything one hook answer contributes: evaluation time, cards per rule, shadow decisions."""
    observe_rule_evaluation(service_id, seconds)
    for rule_id in card_rules:
        count_card(rule_id)
    for rule_id in shadow_rules:
        count_shadow_decision(rule_id)


def count_data_quality(quality: Mapping[str, Any]) -> None:
    """Excluded records by reason; any reason outside the fixed set is counted as unreadable."""
    for reason, count in quality["excluded"].items():
        label = reason if reason in EXCLUSION_REASONS else UNREADABLE
        RECORDS_EXCLUDED.labels(reason=label).inc(count)
    if quality.get("operationOutcomes"):
        RECORDS_EXCLUDED.labels(reason=OPERATION_OUTCOME).inc(quality["operationOutcomes"])


def count_rule_reload(*, success: bool) -> None:
    RULE_RELOADS.labels(result="success" if success else "failure").inc()


def exposition() -> bytes:
    """Every worker's samples when running multiprocess, this process's otherwise."""
    if os.environ.get(metrics_dir.ENV):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    service = current_app.extensions.get("spinehip")
    if service is not None:  # the store's gauges are read at each scrape, not only on probes
        health = service.store.health()
        observe_store_health(degraded=health.degraded is not None, journal_depth=health.journal_depth)
    return Response(exposition(), content_type=CONTENT_TYPE_LATEST)
