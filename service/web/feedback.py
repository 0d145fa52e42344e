"""POST /cds-services/{id}/feedback: what the clinician did with our cards (FB-01..07).

200 with what was stored and, per item, why anything was not; 202 when the database is away and
the request waits in the local journal.
"""

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
    receipt = runtime().store.record_feedback(
        service.id,
        items,
        issuer=getattr(client, "iss", None),
        tenant=getattr(client, "tenant", None),
    )
    response = jsonify(receipt.to_json())
    response.status_code = 202 if receipt.journalled else 200
    return response
