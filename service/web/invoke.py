"""POST /cds-services/{id}: answer a hook call with cards (REQ, PRE, FHIR, RESP)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from flask import Blueprint, Response, g, jsonify

from service import metrics
from service.cdshooks.errors import CdsError, echo
from service.cdshooks.request import parse_hook_request
from service.cdshooks.services import CdsService
from service.pipeline import answer_hook
from service.security.fhir_binding import fhir_server_refusal
from service.store.audit import settle_answer
from service.web.bodies import json_body
from service.web.runtime import runtime

log = logging.getLogger(__name__)
bp = Blueprint("invoke", __name__)


def find_service(service_id: str) -> CdsService:
    service = runtime().services.get(service_id)
    if service is None:
        raise CdsError(404, f"no CDS service with id `{echo(service_id)}`", code="not-found")
    return service


@bp.post("/cds-services/<service_id>")
def invoke(service_id: str) -> Response:
    rt = runtime()
    service = find_service(service_id)
    hook_request = parse_hook_request(json_body(), service)
    client = g.get("cds_client")
    ruleset = rt.rules.current  # one rule set for the whole call, even if a reload lands meanwhile
    answer = answer_hook(
        service,
        hook_request,
        ruleset=ruleset,
        now=datetime.now(UTC),
        fhir=rt.fhir,
        demo=rt.demo,
        fhir_policy=lambda url: fhir_server_refusal(url, client, rt.settings),
    )
    body = settle_answer(
        rt.store,
        service_id=service.id,
        hook=hook_request.hook,
        hook_instance=hook_request.hook_instance,
        patient_id=hook_request.patient_id,
        body=answer.body,
        evaluation=answer.evaluation,
        evaluation_ms=answer.evaluation_ms,
        unsnoozable=ruleset.red_flag_rules,
        user_id=hook_request.user_id,
        tenant=getattr(client, "tenant", None),
    )
    metrics.observe_answer(service.id, body["cards"], answer.evaluation, answer.evaluation_ms / 1000)
    metrics.count_data_quality(answer.quality)
    log.info("hook answered", extra={"fields": {
        "event": "hook",
        "service": service.id,
        "hook_instance": hook_request.hook_instance,
        "cards": len(body["cards"]),
        "fetched": list(answer.data.fetched_keys),
        "evaluation_ms": round(answer.evaluation_ms, 2),
    }})
    return jsonify(body)
