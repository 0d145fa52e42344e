"""POST /cds-services/{id}: answer a hook call with cards (REQ, PRE, FHIR, RESP)."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial

from flask import Blueprint, Response, g

from service import metrics
from service.cdshooks.errors import CdsError, echo
from service.cdshooks.request import parse_hook_request
from service.cdshooks.response import response_bytes
from service.cdshooks.services import CdsService
from service.cdshooks.sources import bind_source
from service.logging_setup import note_request
from service.pipeline import answer_hook
from service.security.fhir_binding import fhir_server_refusal
from service.web.bodies import json_body
from service.web.runtime import runtime

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
    request = parse_hook_request(json_body(), service)
    client = g.get("cds_client")
    now = datetime.now(UTC)
    source = bind_source(
        request,
        now=now,
        fhir=rt.fhir,
        policy=partial(fhir_server_refusal, client=client, settings=rt.settings),
        demo_dir=rt.settings.fixtures_dir if rt.settings.demo_patients else None,
    )
    answer = answer_hook(
        service,
        request,
        ruleset=rt.rules.current,  # one rule set for the whole call, even if a reload lands meanwhile
        now=now,
        source=source,
        store=rt.store,
        issuer=getattr(client, "iss", None),
        tenant=getattr(client, "tenant", None),
    )
    metrics.observe_answer(
        service.id,
        card_rules=(c.decision.rule_id for c in answer.cards),
        shadow_rules=(d.rule_id for d in answer.evaluation.shadow),
        seconds=answer.evaluation_ms / 1000,
    )
    metrics.count_data_quality(answer.quality)
    note_request(
        hook_instance=request.hook_instance,
        cards=len(answer.cards),
        fetched=answer.data.fetched_keys,
        evaluation_ms=round(answer.evaluation_ms, 2),
        **({"uncertain": answer.quality["uncertain"]} if answer.quality["uncertain"] else {}),
    )
    return Response(response_bytes(answer.body), mimetype="application/json")
