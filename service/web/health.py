"""Liveness and readiness for load balancers and Kubernetes probes."""

from __future__ import annotations

import logging

from flask import Blueprint, Response, jsonify

from service.web.runtime import runtime

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "alive"})


@bp.get("/readyz")
def readyz() -> Response:
    """Ready when a rule set is serving and the database answers; detail names what is wrong."""
    rt = runtime()
    detail: dict = {"rules": rt.rules.status(), "services": sorted(rt.services)}
    ready = True
    try:
        rt.store.ping()
        detail["database"] = "ok"
    except Exception as exc:
        log.warning("database not reachable: %s", type(exc).__name__)
        detail["database"] = f"unreachable ({type(exc).__name__})"
        ready = False
    response = jsonify({"status": "ready" if ready else "not ready", **detail})
    response.status_code = 200 if ready else 503
    return response
