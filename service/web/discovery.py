"""GET /cds-services: the services this deployment offers (DISC-01..12)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from service.web.runtime import runtime

bp = Blueprint("discovery", __name__)


@bp.get("/cds-services")
def discovery() -> Response:
    services = runtime().services.values()
    return jsonify({"services": [s.discovery_entry() for s in services]})
