"""POST /cds-services/{id}: answer a hook call with cards (REQ, PRE, FHIR, RESP)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, g, jsonify

from service.cdshooks.errors import CdsError
from service.cdshooks.request import parse_hook_request
from service.cdshooks.services import CdsService
from service.pipeline import answer_hook
from service.security.fhir_binding import fhir_server_refusal
from service.web.bodies import json_body
from service.web.runtime import runtime

log = logging.getLogger(__name__)
bp = Blueprint("invoke", __name__)


def find_service(service_id: str) -> CdsService:
    service = runtime().services.get(service_id)
    if service is None:
        raise CdsError(404, f"no CDS service with id `{service_id}`", code="not-found")
    return service


@bp.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    rt = runtime()
    service = find_service(service_id)
    hook_request = parse_hook_request(json_body(), service)
    client = g.get("cds_client")
    answer = answer_hook(
        service,
        hook_request,
        ruleset=rt.rules.current,
        now=datetime.now(UTC),
        fhir=rt.fhir,
        demo=rt.demo,
        fhir_policy=lambda url: fhir_server_refusal(url, client, rt.settings),
    )
    log.info(
        "hook %s instance=%s cards=%d fetched=%s eval_ms=%.2f",
        service.id,
        hook_request.hook_instance,
        len(answer.body["cards"]),
        ",".join(answer.data.fetched_keys) or "-",
        answer.evaluation_ms,
    )
    return jsonify(answer.body)
