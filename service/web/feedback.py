"""POST /cds-services/{id}/feedback: what the clinician did with our cards (FB-01..07)."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from service.cdshooks.feedback import parse_feedback
from service.web.bodies import json_body
from service.web.invoke import find_service
from service.web.runtime import runtime

bp = Blueprint("feedback", __name__)


@bp.post("/cds-services/<service_id>/feedback")
def feedback(service_id: str) -> Response:
    service = find_service(service_id)
    items = parse_feedback(json_body())
    client = g.get("cds_client")
    stored = runtime().store.record_feedback(
        service.id, items, tenant=getattr(client, "tenant", None) if client else None
    )
    return jsonify({"received": len(items), "stored": stored})
