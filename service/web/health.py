"""Liveness and readiness for load balancers and Kubernetes probes."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from service import metrics
from service.web.runtime import runtime

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "alive"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when a rule set is serving and audit records have somewhere to go.

    ``degraded`` (still 200: cards are answered) while the database is away and the local journal
    takes the audit, or while the journal is replayed; 503 only when neither can take a record.
    """
    rt = runtime()
    health = rt.store.health()
    metrics.observe_store_health(degraded=health.degraded is not None, journal_depth=health.journal_depth)
    if not health.serving:
        status = "not ready"
    elif health.degraded:
        status = "degraded"
    else:
        status = "ready"
    body: dict = {"status": status}
    if health.degraded:
        body["reason"] = health.degraded
    body.update({
        "rules": rt.rules.status(),
        "services": sorted(rt.services),
        "database": health.database,
        "journal": {"depth": health.journal_depth, "writable": health.journal_writable},
    })
    response = jsonify(body)
    response.status_code = 200 if health.serving else 503
    return response
